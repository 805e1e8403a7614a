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
import corpus
import pytest
from conftest import PROTOCOLS, assert_equivalent, assert_same_pickle
from hypothesis import HealthCheck, example, given, settings
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


def _hashable(obj):
    try:
        hash(obj)
    except TypeError:
        return False
    return True


_NODE_KINDS = {"list": list, "dict": dict, "set": set, "instance": corpus.Plain}


@st.composite
def graph_recipes(draw):
    """A description (plain data) of lists, dicts, sets and instances referencing each other.

    The graph itself is built inside the test by ``build_graph``: hypothesis
    keeps references to the objects it generates, which would change their
    reference counts, and a writer that guesses sharing from reference counts
    must be tested on objects whose counts are exactly those of the graph.
    """
    count = draw(st.integers(min_value=1, max_value=7))
    kinds = draw(st.lists(st.sampled_from(sorted(_NODE_KINDS)), min_size=count, max_size=count))
    wrappers = draw(
        st.lists(
            st.one_of(st.sampled_from(["tuple", "frozenset"]), leaves.map(lambda v: ("pair", v))),
            min_size=count,
            max_size=count,
        )
    )
    edges = draw(
        st.lists(
            st.tuples(
                st.integers(0, count - 1),
                st.one_of(st.integers(0, count - 1), leaves.map(lambda v: ("leaf", v))),
                st.booleans(),
            ),
            max_size=18,
        )
    )
    external = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    root = draw(st.sampled_from(["node", "wrapper", "pool"]))
    return count, kinds, wrappers, edges, external, root


def build_graph(recipe):
    """Build a recipe: returns ``(root, external)``.

    Every node may be reached directly or through its one immutable wrapper (a
    tuple, a frozenset when the node is hashable, or a (node, leaf) pair), so
    cycles also run through immutable containers (the POP/POP_MARK paths).
    Nodes marked external are also kept in a list outside the graph: that
    changes their reference counts, not the graph.
    """
    count, kinds, wrapper_kinds, edges, external_mask, root_kind = recipe
    pool = [_NODE_KINDS[kind]() for kind in kinds]
    wrappers = []
    for node, kind in zip(pool, wrapper_kinds, strict=True):
        if kind == "frozenset" and _hashable(node):
            wrappers.append(frozenset([node]))
        elif isinstance(kind, tuple):
            wrappers.append((node, kind[1]))
        else:
            wrappers.append((node,))
    for position, (src, dst, wrapped) in enumerate(edges):
        if isinstance(dst, int):
            target = wrappers[dst] if wrapped else pool[dst]
        else:
            target = dst[1]
        container = pool[src]
        if isinstance(container, list):
            container.append(target)
        elif isinstance(container, dict):
            container[position] = target
        elif isinstance(container, set):
            if _hashable(target):
                container.add(target)
        else:
            setattr(container, f"a{position}", target)
    external = [node for node, keep in zip(pool, external_mask, strict=True) if keep]
    root = {"node": pool[0], "wrapper": wrappers[0], "pool": pool}[root_kind]
    return root, external


# Known-hard shapes: a cycle through an immutable container whose other part has a
# reference count of 1 (an instance in a frozenset or a tuple, a list in a tuple).
_HARD_RECIPES = [
    (1, ["instance"], ["frozenset"], [(0, 0, True)], [False], "wrapper"),
    (1, ["instance"], [("pair", 1)], [(0, 0, True)], [False], "wrapper"),
    (1, ["list"], ["tuple"], [(0, 0, True)], [False], "wrapper"),
    (1, ["dict"], ["tuple"], [(0, 0, True)], [False], "wrapper"),
    (
        2,
        ["instance", "list"],
        ["tuple", "tuple"],
        [(0, 1, True), (1, 0, True)],
        [False, False],
        "wrapper",
    ),
]


def _with_hard_recipes(test):
    for recipe in _HARD_RECIPES:
        for protocol in (0, 1, 2, 4, 5):
            test = example(recipe=recipe, protocol=protocol)(test)
    return test


@SETTINGS
@given(recipe=graph_recipes(), protocol=protocols)
@_with_hard_recipes
def test_nondeterministic_keeps_sharing_and_cycles(recipe, protocol):
    root, _external = build_graph(recipe)
    loaded = pickle.loads(anypickle.dumps(root, protocol, deterministic=False))
    expected_root, _expected_external = build_graph(recipe)
    assert_equivalent(expected_root, loaded)


@SETTINGS
@given(recipe=graph_recipes(), protocol=protocols)
def test_shared_graphs_are_byte_identical(recipe, protocol):
    root, _external = build_graph(recipe)
    assert_same_pickle(anypickle.dumps(root, protocol), pickle.dumps(root, protocol))


@settings(max_examples=100, deadline=None)
@given(value=any_floats, protocol=protocols)
def test_floats_are_byte_identical(value, protocol):
    data = anypickle.dumps(value, protocol)
    assert_same_pickle(data, pickle.dumps(value, protocol))
    loaded = pickle.loads(data)
    assert (math.isnan(value) and math.isnan(loaded)) or (
        loaded == value and math.copysign(1, loaded) == math.copysign(1, value)
    )


_FRAME_TARGET = 64 * 1024


@st.composite
def around_frame_boundaries(draw):
    """Small items interleaved with strings/bytes whose sizes straddle the 64 KiB frame target."""
    items = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        size = draw(st.integers(min_value=_FRAME_TARGET - 300, max_value=_FRAME_TARGET + 300))
        kind = draw(st.sampled_from(["bytes", "str", "bytearray", "small"]))
        if kind == "bytes":
            items.append(b"b" * size)
        elif kind == "str":
            items.append("s" * size)
        elif kind == "bytearray":
            items.append(bytearray(b"a" * size))
        else:
            items.append([draw(st.integers()), draw(st.text(max_size=5))] * (size // 4096))
        items.append(draw(st.integers(min_value=0, max_value=1000)))
    return items


@settings(max_examples=60, deadline=None)
@given(obj=around_frame_boundaries(), protocol=st.sampled_from([4, 5]))
def test_frame_boundaries_are_byte_identical(obj, protocol):
    assert_same_pickle(anypickle.dumps(obj, protocol), pickle.dumps(obj, protocol))
    ours, theirs = io.BytesIO(), io.BytesIO()
    anypickle.Pickler(ours, protocol).dump(obj)
    pickle.Pickler(theirs, protocol).dump(obj)
    assert_same_pickle(ours.getvalue(), theirs.getvalue())
