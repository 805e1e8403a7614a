"""The writer's own `object.__reduce_ex__` for plain instances (`plain_reduce.rs`).

The writer computes `(cls, state)` itself for instances that reduce through
`object.__reduce_ex__`, and calls `__reduce_ex__` for everything else. Each
class here sits on one side of one of the conditions that choose between the
two. The oracle is the stdlib: the same bytes, or the same exception, on
every protocol, and for objects the stdlib pickles, an equal object back.
"""

from __future__ import annotations

import copyreg
import pickle
import struct
import weakref

import anypickle
import pytest
from conftest import PROTOCOLS, assert_equivalent, assert_same_pickle, exception_matches_stdlib


class Plain:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class Slotted:
    __slots__ = ("a", "b")


class SlottedChild(Slotted):
    """Slots from the base, and a dict."""


class WeakSlots:
    __slots__ = ("a", "__weakref__")


class Weakrefable:
    """A dict and a weakref slot (both managed on 3.12+)."""


class NoSlotnamesYet:
    """A class whose `__slotnames__` copyreg has not computed."""

    __slots__ = ("a",)


class GetattrHook:
    def __getattr__(self, name):
        if name == "__getstate__":
            return lambda: {"from": "hook"}
        raise AttributeError(name)


class GetattributeHook:
    def __getattribute__(self, name):
        if name == "__reduce_ex__":
            return lambda protocol: (GetattributeHook, ())
        return object.__getattribute__(self, name)


class ClassProperty:
    """`__class__` is a data descriptor here: NEWOBJ is refused."""

    @property
    def __class__(self):
        return int


class OwnGetstate:
    def __getstate__(self):
        return {"custom": 1}


class OwnGetnewargs:
    def __getnewargs__(self):
        return (1, 2)

    def __new__(cls, *args):
        return object.__new__(cls)


class ListChild(list):
    pass


class DictChild(dict):
    pass


class StructChild(struct.Struct):
    """A C base with state of its own: the stdlib refuses it."""


class MetaWithGetattribute(type):
    def __getattribute__(cls, name):
        return type.__getattribute__(cls, name)


class WithMeta(metaclass=MetaWithGetattribute):
    def __init__(self):
        self.x = 1


class SlotBase:
    __slots__ = ("a",)


class GrowsSlotnames(SlotBase):
    """A property over an inherited slot that grows `__slotnames__` once:
    CPython fails; running the properties again would not."""

    @property
    def a(self):
        cls = type(self)
        if not cls.__dict__.get("grown"):
            cls.grown = True
            cls.__slotnames__.append("zz")
        return 1


def _grows_slotnames():
    GrowsSlotnames.grown = False
    GrowsSlotnames.__slotnames__ = ["a"]
    return GrowsSlotnames()


class SlottedGetattr:
    """A `__getattr__` that a missing slot reaches on every version."""

    __slots__ = ("a", "b")

    def __getattr__(self, name):
        if name == "b":
            return "from __getattr__"
        raise AttributeError(name)


class MetaWithReduceProperty(type):
    """`type(obj).__reduce__` is this data descriptor, not object's method."""

    @property
    def __reduce__(cls):
        return "not object's"


class WithReduceOnMeta(metaclass=MetaWithReduceProperty):
    def __init__(self):
        self.x = 1


def _reduce_to_plain(*_protocol):
    return (Plain, ())


def _state_from_instance():
    return {"from": "instance"}


def _no_newargs():
    return ()


def _no_newargs_ex():
    return ((), {})


SHADOWS = {
    "__reduce_ex__": _reduce_to_plain,
    "__reduce__": _reduce_to_plain,
    "__getstate__": _state_from_instance,
    "__getnewargs__": _no_newargs,
    "__getnewargs_ex__": _no_newargs_ex,
}


def _shadowed(name):
    """An instance whose own dict holds `name`, shadowing object's method."""
    obj = Plain(x=1)
    setattr(obj, name, SHADOWS[name])
    return obj


def _slotted(**values):
    obj = Slotted()
    for k, v in values.items():
        setattr(obj, k, v)
    return obj


def _slotted_child():
    obj = SlottedChild()
    obj.b = [1, 2]
    obj.z = "dict part"
    return obj


def _weak_slots():
    obj = WeakSlots()
    obj.a = 1.5
    return obj


def _emptied():
    obj = Plain(x=1)
    del obj.x
    return obj


def _with_dict_created():
    obj = Plain()
    obj.__dict__  # noqa: B018 - materializes an empty dict
    return obj


def _shared():
    inner = Plain(v=[1])
    return [inner, Plain(a=inner, b=inner), inner]


CASES = {
    "plain": lambda: Plain(x=1, y=2.5, label="p", items=[1, 2]),
    "no attributes": Plain,
    "attributes deleted": _emptied,
    "empty dict materialized": _with_dict_created,
    "shared instances": _shared,
    "slots, none set": Slotted,
    "slots, one set": lambda: _slotted(b="only b"),
    "slots, both set": lambda: _slotted(a=1, b=2),
    "inherited slots and a dict": _slotted_child,
    "weakref slot": _weak_slots,
    "dict and weakref": lambda: Plain.__new__(Weakrefable),
    "slotnames not cached": lambda: _uncached(Plain, x=1),
    "non-str slot name": lambda: _with_slotnames(NoSlotnamesYet, ["a", 1]),
    "instance __reduce_ex__": lambda: _shadowed("__reduce_ex__"),
    "instance __reduce__": lambda: _shadowed("__reduce__"),
    "instance __getstate__": lambda: _shadowed("__getstate__"),
    "instance __getnewargs__": lambda: _shadowed("__getnewargs__"),
    "instance __getnewargs_ex__": lambda: _shadowed("__getnewargs_ex__"),
    "__getattr__ hook": GetattrHook,
    "__getattribute__ hook": GetattributeHook,
    "__class__ property": ClassProperty,
    "own __getstate__": OwnGetstate,
    "own __getnewargs__": OwnGetnewargs,
    "list subclass": lambda: ListChild([1, 2]),
    "dict subclass": lambda: DictChild(a=1),
    "C base with state": lambda: StructChild("i"),
    "metaclass __getattribute__": WithMeta,
    "slotnames change while read": _grows_slotnames,
    "slots and __getattr__": lambda: _slotted_getattr(),
    "metaclass __reduce__ property": WithReduceOnMeta,
}


def _uncached(cls, **attrs):
    """An instance of `cls` with copyreg's `__slotnames__` cache removed, so
    each library meets the class as its first instance (the cache is made by
    whichever pickles first)."""
    if "__slotnames__" in cls.__dict__:
        delattr(cls, "__slotnames__")
    return cls(**attrs)


def _with_slotnames(cls, names):
    """An instance of `cls` whose cached `__slotnames__` is `names`."""
    cls.__slotnames__ = names
    obj = cls()
    obj.a = 1
    return obj


def _slotted_getattr():
    obj = SlottedGetattr()
    obj.a = 1
    return obj


# What the writer computes itself; every other case must call __reduce_ex__.
FAST = {
    "plain",
    "no attributes",
    "attributes deleted",
    "empty dict materialized",
    "shared instances",
    "slots, none set",
    "slots, one set",
    "slots, both set",
    "inherited slots and a dict",
    "weakref slot",
    "dict and weakref",
    # The writer asks copyreg for the slot names, as CPython's reduction does.
    "slotnames not cached",
}


# The instance's own `__reduce_ex__` rebuilds a bare Plain: equal bytes are
# the whole check.
REPLACED_BY_THEIR_REDUCER = {"instance __reduce_ex__"}


def _outcome(dumps, make, protocol):
    # A fresh object per library: some cases change the class as they are
    # pickled, and the stdlib's side effects must not decide anypickle's run.
    obj = make()
    try:
        return dumps(obj, protocol), obj
    except Exception as exc:  # noqa: BLE001 - compared with the stdlib's
        return exc, obj


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_or_same_error_as_the_stdlib(case, protocol):
    make = CASES[case]
    expected, _ = _outcome(pickle.dumps, make, protocol)
    got, obj = _outcome(anypickle.dumps, make, protocol)
    if isinstance(expected, Exception):
        assert isinstance(got, Exception), (
            f"anypickle pickled what the stdlib refused: {expected!r}"
        )
        assert exception_matches_stdlib(got, expected), (got, expected)
        assert str(expected) in str(got)
        return
    if isinstance(got, Exception):
        raise got
    assert_same_pickle(got, expected)
    if case in REPLACED_BY_THEIR_REDUCER:
        assert type(pickle.loads(got)) is Plain
    else:
        assert_equivalent(obj, pickle.loads(got))


def _replaced_newobj(cls, *args):
    """Stands in for `copyreg.__newobj__`: its name shows in a pickle
    written by a call to `object.__reduce_ex__`."""
    return cls.__new__(cls, *args)


@pytest.mark.parametrize("protocol", PROTOCOLS[2:])
@pytest.mark.parametrize("case", list(CASES))
def test_which_instances_the_writer_reduces_itself(case, protocol, monkeypatch):
    # The one documented difference makes the path visible: with
    # `copyreg.__newobj__` replaced, CPython's reduction names the
    # replacement, and the writer's own does not.
    monkeypatch.setattr(copyreg, "__newobj__", _replaced_newobj)
    expected, _ = _outcome(pickle.dumps, CASES[case], protocol)
    got, _ = _outcome(anypickle.dumps, CASES[case], protocol)
    if isinstance(expected, Exception) or b"_replaced_newobj" not in expected:
        pytest.skip("the stdlib does not reduce this through object.__reduce_ex__")
    if case in FAST:
        assert b"_replaced_newobj" not in got
        assert pickle.loads(got) is not None
    else:
        assert_same_pickle(got, expected)


class _SlotnamesProbe:
    __slots__ = ("a", "__dict__")

    def __init__(self):
        self.a = 1
        self.b = 2


def _probe_outcome(dumps, monkeypatch, slotnames):
    """Pickle a fresh _SlotnamesProbe with copyreg._slotnames replaced."""
    calls = []

    def replaced(cls):
        calls.append(cls)
        names = slotnames(cls)
        cls.__slotnames__ = names  # cached, as copyreg does
        return names

    if "__slotnames__" in _SlotnamesProbe.__dict__:
        delattr(_SlotnamesProbe, "__slotnames__")
    monkeypatch.setattr(copyreg, "_slotnames", replaced)
    result, _ = _outcome(dumps, _SlotnamesProbe, 5)
    return result, calls, _SlotnamesProbe.__dict__.get("__slotnames__", "missing")


@pytest.mark.parametrize(
    "slotnames",
    [
        pytest.param(lambda cls: ["a"], id="list"),
        pytest.param(lambda cls: None, id="none"),
        pytest.param(lambda cls: ("a",), id="tuple"),
        pytest.param(lambda cls: 1 / 0, id="raises"),
    ],
)
def test_uncached_slotnames_come_from_copyreg_like_the_stdlib(slotnames, monkeypatch):
    """The first instance of a class: copyreg._slotnames is called once, at
    the same point, and what it returns (or raises) decides as in CPython."""
    expected, expected_calls, expected_cache = _probe_outcome(pickle.dumps, monkeypatch, slotnames)
    got, calls, cache = _probe_outcome(anypickle.dumps, monkeypatch, slotnames)
    assert len(calls) == len(expected_calls) == 1
    assert cache == expected_cache
    if isinstance(expected, Exception):
        assert exception_matches_stdlib(got, expected), (got, expected)
        assert str(expected) in str(got)
    else:
        assert_same_pickle(got, expected)


def test_first_instance_caches_slotnames_then_later_ones_match():
    class Fresh:
        __slots__ = ("a",)

    Fresh.__module__ = __name__
    Fresh.__qualname__ = "Fresh"
    globals()["Fresh"] = Fresh
    try:
        first, second = Fresh(), Fresh()
        first.a = second.a = 1
        assert "__slotnames__" not in Fresh.__dict__
        assert anypickle.dumps(first, 5) == pickle.dumps(first, 5)
        assert Fresh.__dict__["__slotnames__"] == ["a"]
        assert anypickle.dumps(second, 5) == pickle.dumps(second, 5)
    finally:
        del globals()["Fresh"]


def test_deterministic_false_keeps_shared_instances_shared():
    data = _shared()
    loaded = pickle.loads(anypickle.dumps(data, deterministic=False))
    assert loaded[0] is loaded[2] is loaded[1].a is loaded[1].b
    assert loaded[0].v == [1]


def test_weakrefable_instance_keeps_no_weakref_state():
    obj = Plain.__new__(Weakrefable)
    obj.n = 3
    ref = weakref.ref(obj)
    loaded = pickle.loads(anypickle.dumps(obj))
    assert ref() is obj
    assert loaded.__dict__ == {"n": 3}


def test_state_error_names_the_attribute():
    import threading

    obj = Plain(ok=1, lock=threading.Lock())
    with pytest.raises(TypeError, match=r"\(at obj\[0\]\.lock\)"):
        anypickle.dumps([obj])
