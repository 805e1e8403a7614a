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

import sys
import types
import weakref
from typing import Any

from anypickle import _core

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


# The five reconstructors that run once per function, code object or cell are
# written in Rust (``src/reconstruct.rs``); bound here under their wire names,
# and told that this module is theirs, so they pickle by reference to it.
function = _core.function
function_state = _core.function_state
cell = _core.cell
cell_state = _core.cell_state
code = _core.code
for _reconstructor in (function, function_state, cell, cell_state, code):
    _reconstructor.__module__ = __name__
del _reconstructor


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
