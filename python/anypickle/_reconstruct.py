"""Reconstructors named by anypickle's by-value pickles: part of the wire format.

A pickle written by anypickle refers to the callables in this module by name
(``anypickle._reconstruct.<name>``), so plain :func:`pickle.loads` can rebuild
functions, classes, code objects, cells and dynamic modules in any process
where anypickle is installed. **Never rename or remove a public name here, and
never change the meaning of its arguments**: pickles written by earlier
releases must keep loading. New behaviour gets a new name.

The writer emits, for each by-value object, ``constructor(*args)`` (an object
that is complete enough to be referred to, e.g. a function whose globals are
still being filled) and, later in the stream, ``<...>_state(obj, state)``,
once every object the state refers to exists. This split is what lets a
function refer to itself, and a method to its class.

Example:
    >>> import anypickle, pickle
    >>> square = pickle.loads(anypickle.dumps(lambda x: x * x))
    >>> square(7)
    49
"""

from __future__ import annotations

import importlib
import sys
import types
import weakref
from typing import Any

#: The Python minor version whose bytecode this interpreter runs, as written
#: into every pickled code object ("3.11").
PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"

# Classes rebuilt (or pickled by value) in this process, by their class id.
# Loading the same class id again returns the live class, unchanged.
_classes_by_id: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()
# The reverse mapping, so that re-pickling a loaded class writes the same id.
_ids_by_class: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
# Classes created by ``make_class`` in this process whose post-creation state
# has not been applied yet. A class found in the cache is not in here, so a
# second load never overwrites the attributes of the live class.
_fresh_classes: weakref.WeakSet[type] = weakref.WeakSet()


class VersionMismatchError(ValueError):
    """Bytecode pickled by one Python minor version cannot run on another."""


# ----------------------------------------------------------------------------------
# Functions, cells and code objects
# ----------------------------------------------------------------------------------


def function(
    code: types.CodeType,
    base_globals: dict[str, Any],
    name: str,
    closure: tuple[types.CellType, ...] | None,
) -> types.FunctionType:
    """Create a function from its code, its (still partial) globals and its cells.

    ``base_globals`` is shared by every function of one pickle that shared a
    globals dict when pickled. Everything else arrives in :func:`function_state`.
    """
    return types.FunctionType(code, base_globals, name, None, closure)


def function_state(func: types.FunctionType, state: dict[str, Any]) -> None:
    """Fill in a function made by :func:`function` (keys absent mean "default")."""
    get = state.get
    imports = get("imports")
    if imports:
        for module_name in imports:
            importlib.import_module(module_name)
    func_globals = get("globals")
    if func_globals:
        func.__globals__.update(func_globals)
    if "defaults" in state:
        func.__defaults__ = state["defaults"]
    if "kwdefaults" in state:
        func.__kwdefaults__ = state["kwdefaults"]
    if "annotations" in state:
        func.__annotations__ = state["annotations"]
    if "doc" in state:
        func.__doc__ = state["doc"]
    if "module" in state:
        func.__module__ = state["module"]
    if "qualname" in state:
        func.__qualname__ = state["qualname"]
    if "type_params" in state:
        func.__type_params__ = state["type_params"]  # type: ignore[attr-defined]
    attrs = get("dict")
    if attrs:
        func.__dict__.update(attrs)


def cell() -> types.CellType:
    """An empty closure cell; its contents, if any, come from :func:`cell_state`."""
    return types.CellType()


def cell_state(target: types.CellType, contents: Any) -> None:
    """Fill a cell made by :func:`cell`."""
    target.cell_contents = contents


def code(python_version: str, *fields: Any) -> types.CodeType:
    """Rebuild a code object from ``types.CodeType``'s positional arguments.

    Bytecode is specific to one Python minor version, so a code object pickled
    by another version is refused rather than run.
    """
    if python_version != PYTHON_VERSION:
        raise VersionMismatchError(
            f"this pickle holds bytecode compiled by Python {python_version}, which "
            f"Python {PYTHON_VERSION} cannot run; load it with Python {python_version}"
        )
    return types.CodeType(*fields)


# ----------------------------------------------------------------------------------
# Classes
# ----------------------------------------------------------------------------------


def make_class(
    class_id: str,
    metaclass: type,
    name: str,
    bases: tuple[type, ...],
    namespace: dict[str, Any],
    kwds: dict[str, Any],
) -> type:
    """Create a class as its ``class`` statement did, or return the live one.

    The namespace goes through ``metaclass.__prepare__`` and the metaclass is
    called with it in full, so ``__init_subclass__``, ``__set_name__`` and
    metaclass ``__new__`` see the definition, not an empty skeleton. Attributes
    that refer back to the class arrive later, through :func:`class_state`.
    """
    cls = _classes_by_id.get(class_id)
    if cls is not None:
        return cls
    resolved = types.resolve_bases(bases)
    prepared = metaclass.__prepare__(name, resolved, **kwds)
    for key, value in namespace.items():
        prepared[key] = value
    if resolved is not bases and "__orig_bases__" not in prepared:
        prepared["__orig_bases__"] = bases
    cls = metaclass(name, resolved, prepared, **kwds)
    _classes_by_id[class_id] = cls
    _ids_by_class[cls] = class_id
    _fresh_classes.add(cls)
    return cls


def class_state(cls: type, state: dict[str, Any]) -> None:
    """Set the attributes of a freshly made class that could not be in its namespace.

    Does nothing to a class that :func:`make_class` found already loaded.
    """
    if cls not in _fresh_classes:
        return
    _fresh_classes.discard(cls)
    attrs = state.get("attrs")
    if attrs:
        for key, value in attrs.items():
            setattr(cls, key, value)
    for subclass in state.get("abc_registry", ()):
        cls.register(subclass)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------
# Modules and other objects
# ----------------------------------------------------------------------------------


def module(name: str) -> types.ModuleType:
    """An empty module object (not entered in ``sys.modules``)."""
    return types.ModuleType(name)


def module_state(target: types.ModuleType, attrs: dict[str, Any]) -> None:
    """Fill a module made by :func:`module`."""
    vars(target).update(attrs)


def with_module(module_name: str | None, factory: Any, args: tuple, kwargs: dict) -> Any:
    """Call ``factory(*args, **kwargs)`` as if from module ``module_name``.

    TypeVar, ParamSpec, TypeVarTuple, NewType and TypeAliasType take their
    ``__module__`` from the caller's globals; this makes it the original one.
    """
    caller_globals = {"__name__": module_name, "f": factory, "a": args, "k": kwargs}
    obj = eval("f(*a, **k)", caller_globals)  # noqa: S307 - fixed expression
    if module_name is not None and getattr(obj, "__module__", module_name) != module_name:
        try:
            obj.__module__ = module_name
        except (AttributeError, TypeError):
            pass
    return obj


def lru_cache(func: Any, maxsize: int | None, typed: bool) -> Any:
    """``functools.lru_cache(maxsize, typed)(func)`` (an empty cache)."""
    import functools

    return functools.lru_cache(maxsize=maxsize, typed=typed)(func)


def mappingproxy(mapping: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    """A read-only view of ``mapping`` (``types.MappingProxyType``)."""
    return types.MappingProxyType(mapping)
