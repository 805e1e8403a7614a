"""The Python half of pickling by value: the registry and class descriptions.

The Rust writer decides *whether* an object goes by value
(``src/pickler/by_value/``), and writes functions, code objects and cells
itself. For the rarer, richer kinds it calls in here:

* :func:`describe_class` turns a class into the arguments of
  :func:`anypickle._reconstruct.make_class` plus the state applied after it;
* :func:`reduce_unfindable` rebuilds objects that pickle by a name that does
  not lead back to them (TypeVar, NewType, type aliases, ``lru_cache``
  wrappers of local functions);
* :func:`reduce_failed` rebuilds objects whose own reduction raised
  (``property``, ``staticmethod``, ``classmethod``, ``cached_property``;
  ``mappingproxy`` is written by the Rust writer before its reduction runs);
* :func:`stable_constants` orders sets inside code constants, so that output
  bytes do not depend on ``PYTHONHASHSEED``.

Example:
    >>> import anypickle, json
    >>> anypickle.register_pickle_by_value(json)
    >>> "json" in anypickle.list_registry_pickle_by_value()
    True
    >>> anypickle.unregister_pickle_by_value(json)
"""

from __future__ import annotations

import abc
import functools
import hashlib
import sys
import types
import typing
from typing import Any

from anypickle import _reconstruct

# Names of the modules (and packages) whose functions and classes are pickled
# by value. The Rust writer reads this set directly: keep it a set of str.
_registry: set[str] = set()

# Class descriptions remembered by the Rust writer (see ``describe_class`` in
# src/pickler/by_value/mod.rs): class address -> (version tag, abc token, args, state).
_describe_cache: dict[int, tuple[Any, ...]] = {}


def _module_name(module: types.ModuleType | str) -> str:
    if isinstance(module, types.ModuleType):
        return module.__name__
    if isinstance(module, str):
        return module
    raise TypeError(f"expected a module or a module name, got {type(module).__name__}")


def register_pickle_by_value(module: types.ModuleType) -> None:
    """Pickle the functions and classes of ``module`` (and its submodules) by value.

    Use it for code that the loading side does not have installed, such as a
    package in a notebook's working directory.

    Example:
        >>> import anypickle, colorsys
        >>> f = colorsys.rgb_to_hsv
        >>> anypickle.loads(anypickle.dumps(f)) is f  # by reference
        True
        >>> anypickle.register_pickle_by_value(colorsys)
        >>> g = anypickle.loads(anypickle.dumps(f))  # a copy rebuilt from its code
        >>> g is f, g(1.0, 0.0, 0.0) == f(1.0, 0.0, 0.0)
        (False, True)
        >>> anypickle.unregister_pickle_by_value(colorsys)
    """
    if not isinstance(module, types.ModuleType):
        raise ValueError(f"input should be a module, not {module!r}")
    if module.__name__ not in sys.modules:
        raise ValueError(
            f"{module!r} is not in sys.modules: import it with an import statement first"
        )
    _registry.add(module.__name__)


def unregister_pickle_by_value(module: types.ModuleType) -> None:
    """Undo :func:`register_pickle_by_value`.

    Example:
        >>> import anypickle, json
        >>> anypickle.register_pickle_by_value(json)
        >>> anypickle.unregister_pickle_by_value(json)
        >>> "json" in anypickle.list_registry_pickle_by_value()
        False
    """
    if not isinstance(module, types.ModuleType):
        raise ValueError(f"input should be a module, not {module!r}")
    if module.__name__ not in _registry:
        raise ValueError(f"{module!r} is not registered for pickle by value")
    _registry.discard(module.__name__)


def list_registry_pickle_by_value() -> set[str]:
    """The names of the modules registered with :func:`register_pickle_by_value`.

    Example:
        >>> import anypickle
        >>> isinstance(anypickle.list_registry_pickle_by_value(), set)
        True
    """
    return set(_registry)


def module_names(modules: typing.Iterable[types.ModuleType | str]) -> tuple[str, ...]:
    """The ``by_value=`` argument of ``dumps`` as module names."""
    if isinstance(modules, (str, types.ModuleType)):
        modules = [modules]
    return tuple(_module_name(m) for m in modules)


# ----------------------------------------------------------------------------------
# Deterministic ordering
# ----------------------------------------------------------------------------------


def _order_key(value: Any) -> tuple[str, str]:
    return (type(value).__qualname__, repr(value))


class _OrderedSet:
    """Stands in for a set or frozenset and pickles its items in a fixed order."""

    __slots__ = ("items", "kind")

    def __init__(self, kind: type, items: typing.Iterable[Any]) -> None:
        self.kind = kind
        self.items = tuple(sorted(items, key=_order_key))

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.kind, (self.items,))


def _stable(value: Any) -> Any:
    if type(value) in (frozenset, set):
        return _OrderedSet(type(value), (_stable(v) for v in value))
    if type(value) is tuple and any(type(v) in (tuple, frozenset, set) for v in value):
        return tuple(_stable(v) for v in value)
    return value


def stable_constants(consts: tuple[Any, ...]) -> tuple[Any, ...]:
    """``co_consts`` with every frozenset written in sorted order.

    Only called by the writer when a constant is a frozenset (``x in {...}``).
    """
    return tuple(_stable(c) for c in consts)


# ----------------------------------------------------------------------------------
# Classes
# ----------------------------------------------------------------------------------

# Entries of a class ``__dict__`` that the metaclass creates by itself.
_CREATED_BY_TYPE = frozenset({"__dict__", "__weakref__", "_abc_impl"})

# Entries Enum's metaclass derives from the members (3.10-3.13).
_ENUM_DERIVED = frozenset(
    {
        "_member_names_",
        "_member_map_",
        "_value2member_map_",
        "_unhashable_values_",
        "_unhashable_values_map_",
        "_member_type_",
        "_value_repr_",
        "_new_member_",
        "_use_args_",
        "_boundary_",
        "_flag_mask_",
        "_singles_mask_",
        "_all_bits_",
        "_inverted_",
        "__new__",
    }
)

# TypedDict's metaclass recomputes these from the bases and ``total``; the
# originals are set again after creation.
_TYPEDDICT_DERIVED = ("__required_keys__", "__optional_keys__", "__total__")

# Set with setattr once the class exists: ``__abstractmethods__`` only takes
# effect through type's setter (ABCMeta computes it from the functions'
# ``__isabstractmethod__``, which arrives with their deferred state).
_SET_AFTER_CREATION = frozenset({"__abstractmethods__"})

_PLAIN_DATA = (str, int, float, bool, type(None), bytes, tuple)

_NO_VALUE = object()


def class_id(cls: type) -> str:
    """A stable id for a class pickled by value (the class cache key when loading).

    The same class gets the same id in every process that defines it the same
    way (module, qualified name, bases, attribute names, plain attribute values
    and method code), so output is deterministic, and classes that differ in
    any of these stay distinct when loaded into one process; a different class
    that happens to share all of that in one process gets a numbered variant.
    """
    known = _reconstruct._ids_by_class.get(cls)
    if known is not None:
        return known
    digest = hashlib.sha256()
    digest.update(f"{cls.__module__}\0{cls.__qualname__}\0".encode("utf-8", "surrogatepass"))
    for base in cls.__bases__:
        digest.update(
            f"{getattr(base, '__module__', '')}.{base.__qualname__}\0".encode(
                "utf-8", "surrogatepass"
            )
        )
    for key in sorted(vars(cls)):
        digest.update(key.encode("utf-8", "surrogatepass") + b"\0")
        _fingerprint(digest, _underlying_function(vars(cls)[key]), 0)
    base_id = digest.hexdigest()[:32]
    candidate, n = base_id, 0
    while True:
        holder = _reconstruct._classes_by_id.get(candidate)
        if holder is None or holder is cls:
            break
        n += 1
        candidate = f"{base_id}-{n}"
    _reconstruct._classes_by_id[candidate] = cls
    _reconstruct._ids_by_class[cls] = candidate
    return candidate


def _fingerprint(digest: Any, value: Any, depth: int) -> None:
    """Feed what defines ``value`` into ``digest``: a function's code (bytecode,
    names, constants, nested code), a plain value's repr, or else its type."""
    code = getattr(value, "__code__", None) if not isinstance(value, type) else None
    if isinstance(value, types.CodeType):
        code = value
    if isinstance(code, types.CodeType) and depth < 8:
        digest.update(code.co_code)
        digest.update(repr((code.co_names, code.co_varnames, code.co_firstlineno)).encode())
        for const in code.co_consts:
            _fingerprint(digest, const, depth + 1)
    elif type(value) in (str, int, float, bool, bytes, type(None)) or (
        type(value) is tuple and all(type(v) in (str, int, float, bool, bytes) for v in value)
    ):
        digest.update(repr(value).encode("utf-8", "surrogatepass"))
    else:
        digest.update(f"<{type(value).__qualname__}>".encode("utf-8", "surrogatepass"))
    digest.update(b"\0")


def _underlying_function(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    return value


def _refers_to(value: Any, cls: type) -> bool:
    """Whether ``value`` is, or directly holds, ``cls`` or one of its instances.

    Such attributes cannot be in the namespace the class is created from.
    """

    def is_it(v: Any) -> bool:
        if v is cls:
            return True
        try:
            return isinstance(v, cls)
        except TypeError:  # classes that refuse isinstance (TypedDict)
            return False

    if is_it(value):
        return True
    if type(value) in (list, tuple, set, frozenset):
        return any(is_it(v) for v in value)
    if type(value) is dict:
        return any(is_it(v) or is_it(k) for k, v in value.items())
    return False


def _is_created_descriptor(cls: type, value: Any) -> bool:
    """Slot members and ``__dict__``/``__weakref__`` getsets that ``type()`` makes."""
    return (
        isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType))
        and getattr(value, "__objclass__", None) is cls
    )


def _is_sunder(key: str) -> bool:
    return len(key) > 2 and key[0] == key[-1] == "_" and key[1] != "_" and key[-2] != "_"


def _inherited(cls: type, key: str) -> Any:
    for base in cls.__mro__[1:]:
        if key in vars(base):
            return vars(base)[key]
    return _NO_VALUE


def describe_class(cls: type) -> tuple[tuple[Any, ...], dict[str, Any] | None, bool]:
    """The ``make_class`` arguments for ``cls`` and the state applied after it.

    Returns ``((class_id, metaclass, name, bases, namespace, kwds), state,
    cacheable)``; ``state`` is None when nothing is left to set after creation;
    ``cacheable`` is false when the description holds a snapshot (of a set)
    that could go stale without the class being modified.
    """
    metaclass = type(cls)
    bases = cls.__bases__
    own = dict(vars(cls))
    namespace: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    kwds: dict[str, Any] = {}
    state: dict[str, Any] = {}

    is_enum = isinstance(cls, type) and _is_enum_class(cls)
    if is_enum:
        members = cls.__members__  # type: ignore[attr-defined]
        new_member = own.get("_new_member_")
        if isinstance(new_member, types.FunctionType):
            namespace["__new__"] = new_member
        for key in list(own):
            if key in members or key in _ENUM_DERIVED:
                del own[key]
            elif _is_sunder(key) and (
                not isinstance(own[key], (types.FunctionType, staticmethod, classmethod))
                or own[key] is _inherited(cls, key)
            ):
                # Enum's own bookkeeping (e.g. 3.12's bound `_iter_member_`)
                # is made again by the metaclass; keep only user-defined hooks.
                del own[key]
        if "_boundary_" in vars(cls) and sys.version_info >= (3, 11):
            boundary = vars(cls)["_boundary_"]
            if boundary is not _inherited(cls, "_boundary_") and boundary is not None:
                kwds["boundary"] = boundary
    typeddict_meta = getattr(typing, "_TypedDictMeta", None)
    if typeddict_meta is not None and metaclass is typeddict_meta:
        # ``make_class`` resolves ``typing.TypedDict`` through its
        # ``__mro_entries__``, as a class statement does.
        orig = own.pop("__orig_bases__", None)
        if orig and all(type(b) is typeddict_meta for b in orig):
            bases = tuple(orig)
        else:
            bases = (typing.TypedDict,)  # type: ignore[assignment]
        kwds["total"] = cls.__total__  # type: ignore[attr-defined]
        for key in _TYPEDDICT_DERIVED:
            if key in own:
                attrs[key] = own.pop(key)

    # Not in ``vars(cls)``: kept by the type itself.
    namespace["__qualname__"] = cls.__qualname__
    for key, value in own.items():
        if key in _CREATED_BY_TYPE or _is_created_descriptor(cls, value):
            continue
        refers = _refers_to(value, cls)
        if type(value) in (set, frozenset):
            value = _OrderedSet(type(value), value)
        if refers or key in _SET_AFTER_CREATION:
            attrs[key] = value
            continue
        if type(value) in _PLAIN_DATA and not key.startswith("__"):
            # Also set again after creation: a metaclass or __init_subclass__
            # may assign it from class keywords, which a class does not keep.
            attrs[key] = value
        namespace[key] = value
    if is_enum:
        # Members last, in definition order, from their values: the metaclass
        # makes them again (aliases included).
        for name, member in cls.__members__.items():  # type: ignore[attr-defined]
            namespace[name] = member._value_

    if isinstance(cls, abc.ABCMeta):
        registry = _abc_registry(cls)
        if registry:
            state["abc_registry"] = registry
    if attrs:
        state["attrs"] = attrs
    args = (class_id(cls), metaclass, cls.__name__, bases, namespace, kwds)
    cacheable = not any(type(v) is _OrderedSet for v in (*namespace.values(), *attrs.values()))
    return args, (state or None), cacheable


def _is_enum_class(cls: type) -> bool:
    import enum

    return isinstance(cls, enum.EnumMeta) and cls.__members__ is not None  # type: ignore[attr-defined]


def _abc_registry(cls: type) -> list[type]:
    """The classes registered with ``cls.register`` (sorted: stable output)."""
    try:
        registry = abc._get_dump(cls)[0]  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        registry = getattr(cls, "_abc_registry", ())
    classes = [ref() for ref in registry]
    return sorted(
        (c for c in classes if c is not None), key=lambda c: (c.__module__, c.__qualname__)
    )


# ----------------------------------------------------------------------------------
# Objects pickled by a name that does not lead back to them
# ----------------------------------------------------------------------------------


def _typevar_like(obj: Any) -> tuple[Any, ...] | None:
    kind = type(obj)
    kwargs: dict[str, Any] = {}
    if kind is typing.TypeVar:
        args = (obj.__name__, *obj.__constraints__)
        if obj.__bound__ is not None:
            kwargs["bound"] = obj.__bound__
        kwargs["covariant"] = obj.__covariant__
        kwargs["contravariant"] = obj.__contravariant__
        if getattr(obj, "__infer_variance__", False):
            kwargs["infer_variance"] = True
    elif kind is typing.ParamSpec:
        args = (obj.__name__,)
        if obj.__bound__ is not None:
            kwargs["bound"] = obj.__bound__
        kwargs["covariant"] = obj.__covariant__
        kwargs["contravariant"] = obj.__contravariant__
    elif getattr(typing, "TypeVarTuple", None) is not None and kind is typing.TypeVarTuple:
        args = (obj.__name__,)
    else:
        return None
    if getattr(obj, "has_default", lambda: False)():
        kwargs["default"] = obj.__default__
    return (_reconstruct.with_module, (obj.__module__, kind, args, kwargs))


def reduce_unfindable(obj: Any) -> tuple[Any, ...] | None:
    """A by-value reduction for ``obj`` whose ``__reduce__`` gave a name that cannot be found.

    Returns None when anypickle does not know how to rebuild ``obj``; the
    writer then raises the stdlib's error.
    """
    found = _typevar_like(obj)
    if found is not None:
        return found
    if isinstance(obj, typing.NewType):
        return (
            _reconstruct.with_module,
            (obj.__module__, typing.NewType, (obj.__name__, obj.__supertype__), {}),
        )
    alias_type = getattr(typing, "TypeAliasType", None)
    if alias_type is not None and type(obj) is alias_type:
        kwargs = {"type_params": obj.__type_params__} if obj.__type_params__ else {}
        return (
            _reconstruct.with_module,
            (obj.__module__, alias_type, (obj.__name__, obj.__value__), kwargs),
        )
    if isinstance(obj, functools._lru_cache_wrapper):  # type: ignore[attr-defined]
        params = obj.cache_parameters()
        return (_reconstruct.lru_cache, (obj.__wrapped__, params["maxsize"], params["typed"]))
    return None


def reduce_failed(obj: Any) -> tuple[Any, ...] | None:
    """A reduction for ``obj`` whose own ``__reduce_ex__`` raised, or None."""
    kind = type(obj)
    if isinstance(obj, (staticmethod, classmethod)):
        extra = {k: v for k, v in vars(obj).items() if k not in _WRAPPER_COPIED}
        return (kind, (obj.__func__,), extra or None)
    if isinstance(obj, property):
        extra = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
        return (kind, (obj.fget, obj.fset, obj.fdel, obj.__doc__), extra or None)
    if isinstance(obj, functools.cached_property):
        # ``attrname`` comes back through ``__set_name__`` when the class is made.
        return (kind, (obj.func,))
    return None


_WRAPPER_COPIED = frozenset(functools.WRAPPER_ASSIGNMENTS) | {"__wrapped__"}
