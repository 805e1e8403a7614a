"""Property tests: random nested data pickled by anypickle and by the stdlib.

* deterministic mode (the default) writes the very bytes ``pickle.dumps`` writes,
  for every protocol, also through ``Pickler`` objects reused across dumps;
* ``deterministic=False`` loads back to an equivalent object, keeping the
  identity of shared lists/dicts and cycles.
"""

from __future__ import annotations

import io
import math
import pickle

import anypickle
import pytest
from conftest import PROTOCOLS, assert_equivalent, assert_same_pickle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Large strings/bytes (frame boundaries) make hypothesis warn about long reprs.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

protocols = st.sampled_from(list(PROTOCOLS))

# Integers of every encoding size: small (BININT1/2), 32-bit, LONG1, LONG4 and the
# sign-byte edges around powers of 256.
_edge_ints = st.integers(min_value=0, max_value=300).flatmap(
    lambda bits: st.sampled_from([2**bits - 1, 2**bits, 2**bits + 1, -(2**bits), -(2**bits) - 1])
)
integers = st.one_of(
    st.integers(min_value=-(2**8), max_value=2**16),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**3000), max_value=2**3000),
    _edge_ints,
)

any_floats = st.floats(allow_nan=True, allow_infinity=True)
# nan never equals itself: keep it out of dict keys and set elements.
key_floats = st.floats(allow_nan=False, allow_infinity=True)

texts = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    # lone surrogates and the characters protocol 0 has to escape
    st.text(alphabet="\\\n\r\0\x1a\ud800\udfffa\xe9\u20ac\U0001f600", max_size=20),
    st.integers(min_value=250, max_value=300).map(lambda n: "s" * n),
)
binaries = st.one_of(
    st.binary(max_size=40),
    st.integers(min_value=250, max_value=70_000).map(lambda n: b"b" * n),
)

hashable_leaves = st.one_of(st.none(), st.booleans(), integers, key_floats, texts, binaries)
hashables = st.recursive(
    hashable_leaves,
    lambda children: st.one_of(
        st.tuples(children, children),
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(children, max_size=4),
    ),
    max_leaves=8,
)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    integers,
    any_floats,
    texts,
    binaries,
    st.binary(max_size=20).map(bytearray),
)


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(hashables, children, max_size=6),
        st.sets(hashables, max_size=6),
        st.frozensets(hashables, max_size=6),
    )


nested = st.recursive(leaves, _containers, max_leaves=40)

# A few sizes around the 1000-item batching boundary.
_BATCHED_KINDS = {
    "list": lambda n: list(range(n)),
    "dict": lambda n: {i: str(i) for i in range(n)},
    "set": lambda n: set(range(n)),
    "frozenset": lambda n: frozenset(range(n)),
    "listitems": lambda n: [[i] for i in range(n)],
}
batched = st.builds(
    lambda kind, n: _BATCHED_KINDS[kind](n),
    st.sampled_from(sorted(_BATCHED_KINDS)),
    st.sampled_from([998, 999, 1000, 1001, 1999, 2000, 2001]),
)


@SETTINGS
@given(obj=nested, protocol=protocols)
def test_dumps_is_byte_identical_to_stdlib(obj, protocol):
    assert_same_pickle(anypickle.dumps(obj, protocol), pickle.dumps(obj, protocol))


@SETTINGS
@given(obj=nested, protocol=protocols)
def test_pickler_is_byte_identical_to_stdlib(obj, protocol):
    ours, theirs = io.BytesIO(), io.BytesIO()
    anypickle.Pickler(ours, protocol).dump(obj)
    pickle.Pickler(theirs, protocol).dump(obj)
    assert_same_pickle(ours.getvalue(), theirs.getvalue())


@settings(max_examples=30, deadline=None)
@given(obj=batched, protocol=protocols)
def test_batched_containers_are_byte_identical(obj, protocol):
    assert_same_pickle(anypickle.dumps(obj, protocol), pickle.dumps(obj, protocol))


@SETTINGS
@given(objs=st.lists(nested, min_size=1, max_size=4), protocol=protocols, data=st.data())
def test_reused_pickler_is_byte_identical(objs, protocol, data):
    """Several dump() calls on one Pickler: the memo carries over, as in the stdlib.

    The same objects are dumped again (so the memo is hit), with clear_memo()
    between some of the calls.
    """
    sequence = objs + objs[::-1]
    clears = data.draw(st.lists(st.booleans(), min_size=len(sequence), max_size=len(sequence)))
    ours_file, theirs_file = io.BytesIO(), io.BytesIO()
    ours, theirs = anypickle.Pickler(ours_file, protocol), pickle.Pickler(theirs_file, protocol)
    for obj, clear in zip(sequence, clears, strict=True):
        if clear:
            ours.clear_memo()
            theirs.clear_memo()
        ours.dump(obj)
        theirs.dump(obj)
        assert_same_pickle(ours_file.getvalue(), theirs_file.getvalue())


@SETTINGS
@given(obj=nested, protocol=protocols)
def test_nondeterministic_roundtrips(obj, protocol):
    loaded = pickle.loads(anypickle.dumps(obj, protocol, deterministic=False))
    assert_equivalent(obj, loaded)


@st.composite
def shared_graphs(draw):
    """Lists/dicts that reference each other: shared parts and (maybe) cycles."""
    count = draw(st.integers(min_value=1, max_value=6))
    kinds = draw(st.lists(st.sampled_from([list, dict]), min_size=count, max_size=count))
    pool = [kind() for kind in kinds]
    edges = draw(
        st.lists(
            st.tuples(
                st.integers(0, count - 1),
                st.one_of(st.integers(0, count - 1), leaves.map(lambda v: ("leaf", v))),
            ),
            max_size=15,
        )
    )
    for position, (src, dst) in enumerate(edges):
        target = pool[dst] if isinstance(dst, int) else dst[1]
        if draw(st.booleans()):
            target = (target,)  # wrap in a tuple: tuples around shared/cyclic parts
        container = pool[src]
        if isinstance(container, list):
            container.append(target)
        else:
            container[position] = target
    return pool[0] if draw(st.booleans()) else pool


@SETTINGS
@given(graph=shared_graphs(), protocol=protocols)
def test_nondeterministic_keeps_sharing_and_cycles(graph, protocol):
    loaded = pickle.loads(anypickle.dumps(graph, protocol, deterministic=False))
    assert_equivalent(graph, loaded)


@SETTINGS
@given(graph=shared_graphs(), protocol=protocols)
def test_shared_graphs_are_byte_identical(graph, protocol):
    assert_same_pickle(anypickle.dumps(graph, protocol), pickle.dumps(graph, protocol))


@settings(max_examples=100, deadline=None)
@given(value=any_floats, protocol=protocols)
def test_floats_are_byte_identical(value, protocol):
    data = anypickle.dumps(value, protocol)
    assert_same_pickle(data, pickle.dumps(value, protocol))
    loaded = pickle.loads(data)
    assert (math.isnan(value) and math.isnan(loaded)) or (
        loaded == value and math.copysign(1, loaded) == math.copysign(1, value)
    )
