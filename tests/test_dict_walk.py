"""The writer's dict walk: every kind of dict table gives pickle's exact bytes.

On CPython 3.11+ the writer reads a combined dict table itself instead of
calling ``PyDict_Next`` (``src/dict_walk.rs``). These tests build the tables
whose layout differs: deleted entries (holes), non-str keys (entries with a
hash), 1-, 2- and 4-byte index arrays, split tables (instance dicts) and
their conversion to combined ones, and tables replaced or mutated while they
are being written. The oracle is ``pickle.dumps``, byte for byte, at every
protocol, in deterministic and non-deterministic mode.
"""

from __future__ import annotations

import pickle
from typing import Any

import anypickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def assert_same_bytes(obj: Any) -> None:
    """anypickle writes exactly pickle's bytes for ``obj``, which load back equal."""
    for proto in PROTOCOLS:
        expected = pickle.dumps(obj, proto)
        assert anypickle.dumps(obj, proto) == expected, proto
        nd = anypickle.dumps(obj, proto, deterministic=False)
        assert pickle.loads(nd) == obj, proto


def with_holes(n: int, keep: int, key: Any = str) -> dict[Any, int]:
    """A dict of ``n`` entries from which all but every ``keep``-th were deleted."""
    d = {key(i): i for i in range(n)}
    for i in range(n):
        if i % keep:
            del d[key(i)]
    return d


@pytest.mark.parametrize("keep", [1, 2, 3, 7])
@pytest.mark.parametrize("key", [str, int, lambda i: (i, str(i))], ids=["str", "int", "tuple"])
def test_deleted_entries_are_skipped(keep: int, key: Any) -> None:
    assert_same_bytes(with_holes(40, keep, key))


def test_only_the_last_entry_left() -> None:
    d = {f"k{i}": i for i in range(10)}
    for i in range(9):
        del d[f"k{i}"]
    assert_same_bytes(d)


def test_every_entry_deleted() -> None:
    d = {f"k{i}": i for i in range(10)}
    d.clear()
    assert_same_bytes(d)
    d = {f"k{i}": i for i in range(10)}
    for i in range(10):
        del d[f"k{i}"]
    assert_same_bytes(d)


def test_entries_appended_after_deletions() -> None:
    d = with_holes(30, 3)
    d.update({f"new{i}": -i for i in range(8)})
    d["0"] = "replaced in place"
    assert_same_bytes(d)


def test_str_keys_then_other_keys() -> None:
    # A unicode table turns into a general one when a non-str key arrives.
    d: dict[Any, Any] = {f"s{i}": i for i in range(5)}
    d[7] = "seven"
    d[b"b"] = "bytes"
    assert_same_bytes(d)


@pytest.mark.parametrize("n", [255, 256, 1000, 70_000])
def test_wide_index_arrays(n: int) -> None:
    # More than 255 slots need 2-byte indices, more than 65,535 4-byte ones.
    d = {f"key{i}": i for i in range(n)}
    for i in range(0, n, 5):
        del d[f"key{i}"]
    expected = pickle.dumps(d, 5)
    assert anypickle.dumps(d, 5) == expected
    assert anypickle.dumps(d, 2) == pickle.dumps(d, 2)
    assert pickle.loads(anypickle.dumps(d, 5, deterministic=False)) == d


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y


def test_split_table_instance_dicts() -> None:
    a, b = Point(1, 2), Point(3, 4)
    # Instance dicts sharing their class's keys (split tables), written as
    # plain dicts, alone and together.
    assert_same_bytes(a.__dict__)
    assert_same_bytes([a.__dict__, b.__dict__])
    del a.__dict__["x"]
    assert_same_bytes(a.__dict__)
    b.z = [5]  # may leave the shared keys
    assert_same_bytes(b.__dict__)
    assert_same_bytes(vars(Point(5, 6)) | {"extra": 1})


def test_dict_subclass() -> None:
    class D(dict):
        pass

    d = D(with_holes(12, 2))
    for proto in PROTOCOLS:
        assert pickle.loads(anypickle.dumps(d, proto)) == d


class Mutator:
    """Mutates the dict it is a value of while it is being written."""

    def __init__(self, target: dict[str, Any], how: str) -> None:
        self.target = target
        self.how = how

    def __reduce__(self) -> Any:
        t = self.target
        if self.how == "replace_later_value":
            t["z"] = "replaced"
        elif self.how == "regrow":
            # Same size, but a new table: the walk must follow it as CPython does.
            for i in range(100):
                t[f"tmp{i}"] = i
            for i in range(100):
                del t[f"tmp{i}"]
        elif self.how == "grow":
            t["late"] = 1
        elif self.how == "shrink":
            t.pop("z", None)
        return (str, ("mutator",))


@pytest.mark.parametrize("how", ["replace_later_value", "regrow", "grow", "shrink"])
@pytest.mark.parametrize("proto", PROTOCOLS)
def test_dict_mutated_while_written(how: str, proto: int) -> None:
    def build() -> dict[str, Any]:
        d: dict[str, Any] = {"a": 1}
        d["m"] = Mutator(d, how)
        d["y"] = 2
        d["z"] = 3
        return d

    try:
        expected: bytes | BaseException = pickle.dumps(build(), proto)
    except Exception as e:  # noqa: BLE001 - the stdlib's outcome is the oracle
        expected = e
    try:
        got: bytes | BaseException = anypickle.dumps(build(), proto)
    except Exception as e:  # noqa: BLE001
        got = e
    if isinstance(expected, BaseException):
        assert isinstance(got, type(expected)), (got, expected)
        assert str(got) == str(expected)
    else:
        assert got == expected


keys = st.one_of(st.text(max_size=6), st.integers(-5, 50), st.tuples(st.integers(0, 3)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(keys, st.integers()), max_size=60),
    st.lists(keys, max_size=40),
    st.lists(st.tuples(keys, st.integers()), max_size=20),
)
def test_random_tables(
    first: list[tuple[Any, int]], deleted: list[Any], then: list[tuple[Any, int]]
) -> None:
    d = dict(first)
    for k in deleted:
        d.pop(k, None)
    d.update(then)
    for proto in (0, 2, 4, 5):
        assert anypickle.dumps(d, proto) == pickle.dumps(d, proto)
    assert pickle.loads(anypickle.dumps(d, 5, deterministic=False)) == d
