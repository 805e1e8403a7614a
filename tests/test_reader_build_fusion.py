"""SETITEMS (or SETITEM) directly followed by BUILD, into a state dict nothing
else holds: the reader hands the pairs to BUILD without filling the dict.

The oracle is ``pickle.loads`` on the same bytes: the same attributes in the
same order, the same calls to ``__getattr__``/``__setstate__``, the same
exception class. The streams are written by hand (to control memo puts,
marks and duplicate keys) or by anypickle, whose ``deterministic=False``
output and by-value instances leave such state dicts unmemoized.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct

import anypickle
import pytest
from byvalue_support import load_in_fresh_process
from reader_support import MinimalIO, outcome, reader_exception_matches

MODULE = __name__


class Plain:
    pass


class WithSetstate:
    def __setstate__(self, state):
        self.got = (type(state).__name__, list(state.items()))


class WithProperty:
    """BUILD stores into ``__dict__``: the property's setter is never called."""

    @property
    def p(self):
        return "property"

    @p.setter
    def p(self, value):
        raise AssertionError("BUILD must not call a property setter")


class CountingGetattr:
    calls: list[str] = []

    def __getattr__(self, name):
        type(self).calls.append(name)
        raise AttributeError(name)


class CustomSetattr:
    """BUILD bypasses ``__setattr__`` too (it writes the instance dict)."""

    def __setattr__(self, name, value):
        raise AssertionError("BUILD must not call __setattr__")


class SlotsOnly:
    __slots__ = ("a",)


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _instance(cls_name: str) -> bytes:
    """Protocol 2: the class by name, then ``cls.__new__(cls)`` (NEWOBJ)."""
    return b"c" + MODULE.encode() + b"\n" + cls_name.encode() + b"\n)\x81"


def _pairs(pairs) -> bytes:
    return b"".join(_str(k) + _int(v) for k, v in pairs)


def _stream(cls_name, pairs, *, single=False, memoize_state=False, tail=b"") -> bytes:
    state = b"}" + (b"q\x07" if memoize_state else b"")
    if single:
        (pair,) = pairs
        body = state + _pairs([pair]) + b"s"
    else:
        body = state + b"(" + _pairs(pairs) + b"u"
    return b"\x80\x02" + _instance(cls_name) + body + b"b" + tail + b"."


PAIRS = [("x", 1), ("y", 2), ("z", 3)]
DUPLICATES = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]

STREAMS = {
    "plain": _stream("Plain", PAIRS),
    "plain-single": _stream("Plain", [("x", 1)], single=True),
    "plain-duplicate-keys": _stream("Plain", DUPLICATES),
    "plain-memoized-state": _stream("Plain", PAIRS, memoize_state=True),
    "setstate": _stream("WithSetstate", DUPLICATES),
    "setstate-single": _stream("WithSetstate", [("k", 9)], single=True),
    "property-key": _stream("WithProperty", [("p", 1), ("q", 2)]),
    "getattr-hook": _stream("CountingGetattr", PAIRS),
    "custom-setattr": _stream("CustomSetattr", PAIRS),
    "slots-only": _stream("SlotsOnly", [("a", 1), ("b", 2)]),
    # BUILD on a list (no __dict__): fails like the stdlib.
    "build-on-list": b"\x80\x02]}(" + _pairs(PAIRS) + b"ub.",
    # Non-str keys: the ordinary path.
    "int-keys": b"\x80\x02" + _instance("Plain") + b"}(K\x01K\x02K\x03K\x04ub.",
    # The state dict sits right on a mark: BUILD has no instance under it.
    "state-on-mark": b"\x80\x02(}(" + _pairs(PAIRS) + b"ub.",
    # The instance is under an open mark: BUILD may not reach it.
    "instance-under-mark": b"\x80\x02" + _instance("Plain") + b"(}(" + _pairs(PAIRS) + b"ub.",
    # Empty SETITEMS before BUILD.
    "no-items": b"\x80\x02" + _instance("Plain") + b"}(ub.",
    # A second BUILD on the same instance, the state given twice.
    "two-builds": b"\x80\x02"
    + _instance("Plain")
    + b"}("
    + _pairs(PAIRS)
    + b"ub}("
    + _pairs([("x", 7), ("w", 8)])
    + b"ub.",
}


def _snapshot(obj):
    """What a loaded object looks like: its type and attributes in order."""
    if isinstance(obj, list):
        return ("list", obj)
    attrs = list(vars(obj).items()) if hasattr(obj, "__dict__") else None
    return (type(obj).__name__, attrs)


@pytest.mark.parametrize("name", list(STREAMS))
def test_loads_like_stdlib(name):
    data = STREAMS[name]
    CountingGetattr.calls.clear()
    expected = outcome(lambda: pickle.loads(data))
    expected_calls = list(CountingGetattr.calls)
    CountingGetattr.calls.clear()
    got = outcome(lambda: anypickle.loads(data))
    assert CountingGetattr.calls == expected_calls
    assert got[0] == expected[0], (got, expected)
    if expected[0] == "raised":
        assert reader_exception_matches(got[1], expected[1]), (got[1], expected[1])
    else:
        assert _snapshot(got[1]) == _snapshot(expected[1])
        if isinstance(expected[1], WithSetstate):
            assert got[1].got == expected[1].got


def test_duplicate_keys_keep_first_place_and_last_value():
    loaded = anypickle.loads(STREAMS["plain-duplicate-keys"])
    assert list(vars(loaded).items()) == [("a", 3), ("b", 5), ("c", 4)]


def test_state_keys_are_interned():
    import sys

    loaded = anypickle.loads(_stream("Plain", [("dynamic_" + "key", 1)]))
    (key,) = vars(loaded)
    assert key is sys.intern("dynamic_key")


def _fused_builds(data: bytes) -> int:
    """How many BUILDs follow SETITEM(S) into an unmemoized EMPTY_DICT."""
    ops = [op.name for op, _arg, _pos in pickletools.genops(data)]
    count = 0
    for i, name in enumerate(ops):
        if name != "BUILD" or ops[i - 1] not in ("SETITEMS", "SETITEM"):
            continue
        j = i - 1
        depth = 0
        # Walk back to the EMPTY_DICT the items went into.
        while j > 0:
            j -= 1
            if ops[j] in ("SETITEMS", "SETITEM"):
                depth += 1  # a nested dict's items
            elif ops[j] == "EMPTY_DICT":
                if depth == 0:
                    break
                depth -= 1
        if j + 1 < len(ops) and ops[j + 1] not in ("MEMOIZE", "BINPUT", "LONG_BINPUT"):
            count += 1
    return count


class Point:
    def __init__(self, x, y, label):
        self.x, self.y, self.label = x, y, label


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_nondeterministic_instances_take_the_fused_path(protocol):
    points = [Point(i, i / 2, f"p{i}") for i in range(50)]
    data = anypickle.dumps(points, protocol, deterministic=False)
    assert _fused_builds(data) == 50
    loads = [
        anypickle.loads(data),
        pickle.loads(data),
        anypickle.load(io.BytesIO(data + b"trailing")),  # peeks a buffered file
        anypickle.Unpickler(MinimalIO(data)).load(),  # a file without peek
    ]
    for loaded in loads:
        assert [list(vars(p).items()) for p in loaded] == [list(vars(p).items()) for p in points]


def test_deterministic_module_level_instances_keep_the_stdlib_bytes():
    points = [Point(i, i / 2, f"p{i}") for i in range(5)]
    assert anypickle.dumps(points) == pickle.dumps(points, 5)
    assert _fused_builds(anypickle.dumps(points)) == 0


def _local_points(n):
    class LocalPoint:
        def __init__(self, x):
            self.x, self.double = x, 2 * x

    return [LocalPoint(i) for i in range(n)]


def test_instances_of_a_by_value_class_leave_their_state_unmemoized():
    points = _local_points(20)
    data = anypickle.dumps(points)
    assert _fused_builds(data) == 20
    # The same bytes the second time (the first dump cached __slotnames__
    # on the class, which must not change how its first instance is written).
    assert anypickle.dumps(points) == data
    loaded = pickle.loads(data)
    assert [vars(p) for p in loaded] == [{"x": i, "double": 2 * i} for i in range(20)]


def test_a_shared_state_dict_of_a_by_value_instance_stays_memoized():
    (point,) = _local_points(1)
    data = anypickle.dumps([vars(point), point, vars(point)])
    assert _fused_builds(data) == 0
    state, loaded, again = anypickle.loads(data)
    assert state is again
    assert state == vars(loaded) == {"x": 0, "double": 0}


def test_by_value_instances_load_in_a_fresh_interpreter():
    data = anypickle.dumps(_local_points(3))
    load_in_fresh_process(
        data,
        """
        assert [type(p).__qualname__ for p in obj] == ["_local_points.<locals>.LocalPoint"] * 3
        assert [vars(p) for p in obj] == [{"x": i, "double": 2 * i} for i in range(3)]
        """,
    )
