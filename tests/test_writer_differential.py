"""Differential tests: anypickle's writer against the stdlib's C pickler.

For every corpus entry and every protocol 0-5:

* where the stdlib can pickle the entry, ``anypickle.dumps`` (and ``dump``,
  ``Pickler.dump``, ``fix_imports=False``, the default protocol) must produce
  the very same bytes, and the pickle must load back to an equivalent object;
* where the stdlib raises, anypickle must raise the same exception class;
* ``deterministic=False`` may write different bytes but must load back to an
  equivalent object, with shared mutable parts and cycles preserved.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import weakref

import anypickle
import corpus
import pytest
from conftest import (
    PROTOCOLS,
    assert_equivalent,
    assert_same_pickle,
    exception_matches_stdlib,
    roundtrip_reference,
)

ENTRIES = corpus.corpus()

#: Structures with cycles through immutables, built fresh per call.
EACH_CYCLE_BUILDER = pytest.mark.parametrize(
    "build",
    list(corpus.CYCLE_BUILDERS.values()),
    ids=list(corpus.CYCLE_BUILDERS),
)


def _stdlib_outcome(obj, protocol):
    try:
        pickle.dumps(obj, protocol)
    except Exception as exc:
        return exc
    return None


def _split_cases():
    """(picklable, refused) cases: the stdlib decides which is which, per protocol."""
    ok, refused = [], []
    with corpus.extension_codes():
        for entry_id, obj in ENTRIES:
            if entry_id.startswith(corpus.BY_VALUE_PREFIX):
                continue
            for protocol in PROTOCOLS:
                param = pytest.param(obj, protocol, id=f"{entry_id}-p{protocol}")
                if _stdlib_outcome(obj, protocol) is None:
                    assert not entry_id.startswith("unpicklable:"), entry_id
                    ok.append(param)
                else:
                    refused.append(param)
    return ok, refused


PICKLABLE, REFUSED = _split_cases()
PICKLABLE_AT_5 = [
    pytest.param(obj, id=entry_id)
    for entry_id, obj in ENTRIES
    if not entry_id.startswith(("unpicklable:", corpus.BY_VALUE_PREFIX))
]
BY_VALUE = [
    pytest.param(obj, protocol, id=f"{entry_id}-p{protocol}")
    for entry_id, obj in ENTRIES
    if entry_id.startswith(corpus.BY_VALUE_PREFIX)
    for protocol in PROTOCOLS
]


@pytest.fixture(autouse=True, scope="module")
def _corpus_extension_codes():
    """The EXT1/EXT2/EXT4 corpus classes need their copyreg codes registered."""
    with corpus.extension_codes():
        yield


def _stdlib_pickler_bytes(obj, protocol, **kwargs):
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol, **kwargs).dump(obj)
    return buf.getvalue()


def _anypickle_pickler_bytes(obj, protocol, **kwargs):
    buf = io.BytesIO()
    pickler = anypickle.Pickler(buf, protocol, **kwargs)
    assert pickler.dump(obj) is None
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# Byte identity with the stdlib (deterministic mode, the default)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_dumps_matches_stdlib(obj, protocol):
    assert_same_pickle(anypickle.dumps(obj, protocol), pickle.dumps(obj, protocol))


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_explicit_deterministic_true_matches_stdlib(obj, protocol):
    assert_same_pickle(
        anypickle.dumps(obj, protocol=protocol, deterministic=True),
        pickle.dumps(obj, protocol=protocol),
    )


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_pickler_dump_matches_stdlib_pickler(obj, protocol):
    assert_same_pickle(
        _anypickle_pickler_bytes(obj, protocol),
        _stdlib_pickler_bytes(obj, protocol),
        "anypickle.Pickler output",
    )


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_dump_to_file_matches_stdlib(obj, protocol):
    buf = io.BytesIO()
    assert anypickle.dump(obj, buf, protocol) is None
    expected = io.BytesIO()
    pickle.dump(obj, expected, protocol)
    assert_same_pickle(buf.getvalue(), expected.getvalue(), "anypickle.dump output")


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_fix_imports_false_matches_stdlib(obj, protocol):
    assert_same_pickle(
        anypickle.dumps(obj, protocol, fix_imports=False),
        pickle.dumps(obj, protocol, fix_imports=False),
        "anypickle.dumps(fix_imports=False) output",
    )
    assert_same_pickle(
        _anypickle_pickler_bytes(obj, protocol, fix_imports=False),
        _stdlib_pickler_bytes(obj, protocol, fix_imports=False),
        "anypickle.Pickler(fix_imports=False) output",
    )


@pytest.mark.parametrize("obj", PICKLABLE_AT_5)
def test_default_protocol_is_5(obj):
    expected = pickle.dumps(obj, 5)
    assert_same_pickle(anypickle.dumps(obj), expected, "dumps(obj)")
    assert_same_pickle(anypickle.dumps(obj, None), expected, "dumps(obj, None)")
    assert_same_pickle(anypickle.dumps(obj, protocol=-1), expected, "dumps(obj, -1)")
    assert_same_pickle(anypickle.dumps(obj, -3), expected, "dumps(obj, -3)")
    buf = io.BytesIO()
    anypickle.Pickler(buf).dump(obj)
    assert_same_pickle(buf.getvalue(), expected, "Pickler(file).dump(obj)")
    buf = io.BytesIO()
    anypickle.dump(obj, buf)
    assert_same_pickle(buf.getvalue(), expected, "dump(obj, file)")


# --------------------------------------------------------------------------------------
# Loading back
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_roundtrip_is_equivalent(obj, protocol):
    loaded = pickle.loads(anypickle.dumps(obj, protocol))
    assert_equivalent(roundtrip_reference(obj, protocol), loaded)


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_nondeterministic_roundtrip_is_equivalent(obj, protocol):
    data = anypickle.dumps(obj, protocol, deterministic=False)
    assert isinstance(data, bytes)
    reference = roundtrip_reference(obj, protocol)
    # The identity of shared mutable parts and cycles must survive too.
    assert_equivalent(reference, pickle.loads(data))

    buf = io.BytesIO()
    anypickle.Pickler(buf, protocol, deterministic=False).dump(obj)
    assert_equivalent(reference, pickle.loads(buf.getvalue()))


@pytest.mark.parametrize(("obj", "protocol"), BY_VALUE)
@pytest.mark.parametrize("deterministic", [True, False])
def test_by_value_entries_load_back(obj, protocol, deterministic):
    """What the stdlib refuses by name, anypickle writes by value; the stdlib reads it."""
    data = anypickle.dumps(obj, protocol, deterministic=deterministic)
    corpus.by_value_equivalent(obj, pickle.loads(data))


# --------------------------------------------------------------------------------------
# Refusals: same exception class as the stdlib
# --------------------------------------------------------------------------------------


def _assert_raises_like_stdlib(call, obj, protocol):
    expected = _stdlib_outcome(obj, protocol)
    assert expected is not None
    with pytest.raises(Exception) as info:  # noqa: B017 - the class is compared below
        call()
    assert exception_matches_stdlib(info.value, expected), (
        f"anypickle raised {type(info.value).__name__}: {info.value!r}; "
        f"the stdlib raises {type(expected).__name__}: {expected!r}"
    )


@pytest.mark.parametrize(("obj", "protocol"), REFUSED)
def test_refused_like_stdlib_by_dumps(obj, protocol):
    _assert_raises_like_stdlib(lambda: anypickle.dumps(obj, protocol), obj, protocol)


@pytest.mark.parametrize(("obj", "protocol"), REFUSED)
def test_refused_like_stdlib_by_pickler(obj, protocol):
    _assert_raises_like_stdlib(
        lambda: anypickle.Pickler(io.BytesIO(), protocol).dump(obj), obj, protocol
    )


@pytest.mark.parametrize(("obj", "protocol"), REFUSED)
def test_refused_like_stdlib_when_nondeterministic(obj, protocol):
    _assert_raises_like_stdlib(
        lambda: anypickle.dumps(obj, protocol, deterministic=False), obj, protocol
    )


@pytest.mark.parametrize(("obj", "protocol"), REFUSED)
def test_pickler_still_works_after_refusal(obj, protocol):
    """A failed dump leaves the Pickler usable, like the stdlib's."""
    buf, expected = io.BytesIO(), io.BytesIO()
    ours, theirs = anypickle.Pickler(buf, protocol), pickle.Pickler(expected, protocol)
    for pickler in (ours, theirs):
        with pytest.raises(Exception):  # noqa: B017 - classes compared in other tests
            pickler.dump(obj)
    buf.seek(0)
    buf.truncate()
    expected.seek(0)
    expected.truncate()
    follow_up = ["after", "the", "error", ("t", 1), {"d": [2]}]
    ours.clear_memo()
    theirs.clear_memo()
    ours.dump(follow_up)
    theirs.dump(follow_up)
    assert_same_pickle(buf.getvalue(), expected.getvalue(), "dump after a failed dump")


# --------------------------------------------------------------------------------------
# Sharing and cycles with deterministic=False
# --------------------------------------------------------------------------------------


def _memo_ops(data):
    puts = sum(
        op.name in {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
        for op, _, _ in pickletools.genops(data)
    )
    gets = sum(op.name in {"GET", "BINGET", "LONG_BINGET"} for op, _, _ in pickletools.genops(data))
    return puts, gets


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_shared_list_keeps_identity(protocol):
    shared = [1, 2, 3]
    loaded = pickle.loads(anypickle.dumps([shared, shared], protocol, deterministic=False))
    assert loaded == [[1, 2, 3], [1, 2, 3]]
    assert loaded[0] is loaded[1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_distinct_lists_stay_distinct(protocol):
    loaded = pickle.loads(anypickle.dumps([[1], [1]], protocol, deterministic=False))
    assert loaded == [[1], [1]]
    assert loaded[0] is not loaded[1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_cycles_are_preserved(protocol):
    cyclic = []
    cyclic.append(cyclic)
    loaded = pickle.loads(anypickle.dumps(cyclic, protocol, deterministic=False))
    assert loaded[0] is loaded

    d = {}
    d["me"] = d
    loaded = pickle.loads(anypickle.dumps(d, protocol, deterministic=False))
    assert loaded["me"] is loaded

    t = ([],)
    t[0].append(t)
    loaded = pickle.loads(anypickle.dumps(t, protocol, deterministic=False))
    assert loaded[0][0] is loaded

    inst = corpus.Plain()
    inst.me = inst
    inst.items = [inst, {"back": inst}]
    loaded = pickle.loads(anypickle.dumps(inst, protocol, deterministic=False))
    assert loaded.me is loaded
    assert loaded.items[0] is loaded
    assert loaded.items[1]["back"] is loaded


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_shared_instance_and_dict(protocol):
    inst = corpus.Plain(v=[1])
    table = {"k": inst}
    data = anypickle.dumps(
        {"a": inst, "b": table, "c": [table, inst]}, protocol, deterministic=False
    )
    loaded = pickle.loads(data)
    assert loaded["a"] is loaded["b"]["k"] is loaded["c"][1]
    assert loaded["b"] is loaded["c"][0]
    assert loaded["a"].v == [1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_memoizes_only_shared_objects(protocol):
    """Unshared containers get no memo entry; a shared one gets one put and a get.

    The top-level object may or may not be memoized (it is referenced by the
    caller), so one put is tolerated for the unshared structure.
    """
    # Built at run time so that no code object holds a reference to a part of it.
    # Below protocol 3 bytes reduce to codecs.encode(text, "latin1"), whose
    # function and "latin1" string are shared objects (rightly memoized).
    parts = [[1], [2], (3, [4]), {6: [5]}, "".join(["x"] * 40)]
    if protocol >= 3:
        parts.append(bytes(40))
    unshared = anypickle.dumps(parts, protocol, deterministic=False)
    del parts
    puts, gets = _memo_ops(unshared)
    assert puts <= 1, f"{puts} memo puts for an unshared structure"
    assert gets == 0

    shared = anypickle.dumps([[7, 8]] * 3, protocol, deterministic=False)
    puts, gets = _memo_ops(shared)
    assert 1 <= puts <= 2
    assert gets == 2
    loaded = pickle.loads(shared)
    assert loaded[0] is loaded[1] is loaded[2]


@EACH_CYCLE_BUILDER
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_cycles_through_immutables_without_outside_references(build, protocol):
    """Cycles through tuples/frozensets whose parts have no reference from outside the graph.

    Each structure is built fresh inside a function, so the reference counts
    are exactly those of the graph: a writer that guesses sharing from
    reference counts sees 1 for parts that are nevertheless reached twice.
    """
    expected = pickle.loads(pickle.dumps(build(), protocol))
    loaded = pickle.loads(anypickle.dumps(build(), protocol, deterministic=False))
    assert_equivalent(expected, loaded)
    # Deterministic mode, on one object (two sets of identity-hashed items differ in order).
    obj = build()
    assert_same_pickle(anypickle.dumps(obj, protocol), pickle.dumps(obj, protocol))


# ---------------------------------------------------------------------------
# dumps() and dump() keep no memo entry for an object nothing else refers to
# (its put is still written); these must not change a byte of the output.


def _fresh_records(n):
    """Built inside a call, so every part's reference count is exactly its holders'."""
    tags = ["a", "b", "c"]
    return [
        {"id": i, "name": f"n{i}", "tags": [tags[i % 3], f"t{i}"], "pair": (f"p{i}", [i])}
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [3, 300])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unshared_parts_write_the_stdlib_bytes(n, protocol):
    """Unshared dicts, lists, tuples and strings, past 256 memo indices, the root unreferenced."""
    expected = pickle.dumps(_fresh_records(n), protocol)
    assert_same_pickle(anypickle.dumps(_fresh_records(n), protocol), expected)
    buf = io.BytesIO()
    anypickle.dump(_fresh_records(n), buf, protocol)
    assert_same_pickle(buf.getvalue(), expected)


@EACH_CYCLE_BUILDER
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cycles_without_outside_references_write_the_stdlib_bytes(build, protocol):
    """Parts reached twice through a cycle although only the graph refers to them
    (the root too: popped from its holder, it is referenced by the call alone)."""
    holder = [build()]
    expected = pickle.dumps(holder[0], protocol)
    assert_same_pickle(anypickle.dumps(holder.pop(), protocol), expected)


class _Clearer:
    """Empties a list while it is pickled (runs after the list was written)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        self.target.clear()
        return (list, ())


class _Replacer:
    """As a dict key: replaces its own value in the dict while it is pickled."""

    def __init__(self, name):
        self.name = name
        self.table = None

    def __reduce__(self):
        self.table[self] = None
        return (_Replacer, (self.name,))


def _memoized_value_dropped_by_its_key():
    value = ["shared"]
    holder = [value]
    key = _Replacer("k")
    table = {key: value, "other": 1}  # two items: the batched SETITEMS path
    key.table = table
    return [holder, _Clearer(holder), table], value


@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p >= 1])
def test_value_dropped_by_its_key_is_still_found_in_the_memo(protocol):
    """When a dict value is fetched, the dict and the memo hold it; writing the
    key drops the dict's reference. The writer must still find the value in the
    memo (a memo get, as pickle writes), not judge it unshared at that point."""
    root, value = _memoized_value_dropped_by_its_key()
    del value
    expected = pickle.dumps(root, protocol)
    root, value = _memoized_value_dropped_by_its_key()
    del value
    got = anypickle.dumps(root, protocol)
    assert_same_pickle(got, expected)
    loaded = pickle.loads(got)
    assert loaded[2][next(iter(loaded[2]))] is loaded[0][0] is not None


# Python code run during the dump (a reducer) reaching an object that was
# unshared when it was written: pickle writes a memo get, and so must we.
_HOLDER: dict = {}
_WEAK_CACHE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _FromHolder:
    def __reduce__(self):
        return (_identity, (_HOLDER["x"],))


class _Tracked:
    """Weakref-able; equal by attributes."""

    def __init__(self, tag=None):
        self.tag = tag

    def __eq__(self, other):
        return type(other) is _Tracked and other.tag == self.tag


class _MakesTemporary:
    """Its reduction holds a fresh object only the reduce value refers to."""

    def __reduce__(self):
        tmp = _Tracked("tmp")
        _WEAK_CACHE["tmp"] = tmp
        return (_identity, (tmp,))


class _FromWeakCache:
    def __reduce__(self):
        return (_identity, (_WEAK_CACHE["tmp"],))


def _identity(x):
    return x


class _KeyReachingItsValue:
    """As a dict key: its reduction refers to its own value in the dict."""

    def __init__(self, table=None):
        self.table = table

    def __reduce__(self):
        return (
            (_KeyReachingItsValue, (), None, None, None)
            if self.table is None
            else (
                _identity,
                (self.table[self],),
            )
        )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reducer_reaching_an_unshared_object_through_a_global(protocol):
    _HOLDER["x"] = [1, 2]  # only the holder dict refers to the list
    root = [_HOLDER, _FromHolder()]
    got = anypickle.dumps(root, protocol)
    assert_same_pickle(got, pickle.dumps(root, protocol))
    loaded = pickle.loads(got)
    assert loaded[1] is loaded[0]["x"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reducer_reaching_a_temporary_through_a_weak_cache(protocol):
    """pickle's memo keeps the first reducer's temporary alive, so the weak
    cache still has it for the second reducer, which then gets a memo get."""
    _WEAK_CACHE.clear()
    expected = pickle.dumps([_MakesTemporary(), _FromWeakCache()], protocol)
    _WEAK_CACHE.clear()
    got = anypickle.dumps([_MakesTemporary(), _FromWeakCache()], protocol)
    assert_same_pickle(got, expected)
    first, second = pickle.loads(got)
    assert first is second


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_key_whose_reducer_writes_its_value_first(protocol):
    """The value is unshared when it is fetched, but the key's reducer writes
    (and memoizes) it before the value's turn comes: that must be a memo get."""

    def build():
        key = _KeyReachingItsValue()
        table = {key: ["value"], "other": 1}
        key.table = table
        return table

    holder = [build()]
    expected = pickle.dumps(holder[0], protocol)
    got = anypickle.dumps(holder.pop(), protocol)
    assert_same_pickle(got, expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pickler_memo_keeps_unshared_objects(protocol):
    """A Pickler's memo outlives dump(): it holds every memoized object, as pickle's does."""
    ours = anypickle.Pickler(io.BytesIO(), protocol)
    ours.dump(_fresh_records(5))
    theirs = pickle.Pickler(io.BytesIO(), protocol)
    theirs.dump(_fresh_records(5))
    ours_memo, theirs_memo = ours.memo.copy(), theirs.memo.copy()
    assert len(ours_memo) == len(theirs_memo) > 20
    assert sorted(i for i, _ in ours_memo.values()) == sorted(i for i, _ in theirs_memo.values())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_many_shared_objects(protocol):
    """More than 256 shared objects (4-byte memo indices) and cycles through them."""
    nodes = [[i] for i in range(700)]
    for i, node in enumerate(nodes):
        node.append(nodes[(i * 7) % len(nodes)])
    top = {"nodes": nodes, "again": nodes[::-1], "strs": [f"s{i % 50}" for i in range(400)]}
    loaded = pickle.loads(anypickle.dumps(top, protocol, deterministic=False))
    assert_equivalent(top, loaded)
    assert loaded["again"][0] is loaded["nodes"][-1]
    assert loaded["nodes"][1][1] is loaded["nodes"][7]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_pickler_reused_across_dumps(protocol):
    """Several dumps on one deterministic=False Pickler load back in sequence.

    The memo may carry over between dumps (as the stdlib's does); a single
    Unpickler reading the stream keeps its memo too, so this must load.
    """
    shared = ["shared", [1]]
    sequence = [[shared, shared], {"k": shared}, shared, (shared, [shared])]
    buf = io.BytesIO()
    pickler = anypickle.Pickler(buf, protocol, deterministic=False)
    for obj in sequence:
        pickler.dump(obj)
    buf.seek(0)
    unpickler = pickle.Unpickler(buf)
    loaded = [unpickler.load() for _ in sequence]
    with pytest.raises(EOFError):
        unpickler.load()
    for expected, got in zip(sequence, loaded, strict=True):
        assert_equivalent(expected, got, check_identity=False)
    assert loaded[0][0] is loaded[0][1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nondeterministic_fast_mode(protocol):
    """fast=True (no memo at all) combined with deterministic=False: still a valid pickle."""
    shared = [1, "s"]
    obj = [shared, shared, {"a": shared}]
    buf = io.BytesIO()
    pickler = anypickle.Pickler(buf, protocol, deterministic=False)
    pickler.fast = True
    pickler.dump(obj)
    assert pickle.loads(buf.getvalue()) == obj


@pytest.mark.parametrize("protocol", [5])
def test_nondeterministic_out_of_band_buffers(protocol):
    payload = pickle.PickleBuffer(bytearray(b"oob" * 100))
    obj = {"a": payload, "b": [payload, pickle.PickleBuffer(b"readonly")]}
    buffers = []
    data = anypickle.dumps(obj, protocol, deterministic=False, buffer_callback=buffers.append)
    assert b"oob" * 100 not in data
    loaded = pickle.loads(data, buffers=buffers)
    assert bytes(loaded["a"]) == b"oob" * 100
    assert loaded["b"][0] is loaded["a"]
    assert bytes(loaded["b"][1]) == b"readonly"


# --------------------------------------------------------------------------------------
# Out-of-band buffers (protocol 5)
# --------------------------------------------------------------------------------------


def _buffer_owners():
    owners = [
        ("picklebuffer-bytes", pickle.PickleBuffer(b"out of band")),
        ("picklebuffer-bytearray", pickle.PickleBuffer(bytearray(b"writable"))),
        ("picklebuffer-large", pickle.PickleBuffer(b"B" * 70000)),
        (
            "picklebuffers-in-structure",
            {"a": [pickle.PickleBuffer(b"one"), 1], "b": (pickle.PickleBuffer(bytearray(b"2")),)},
        ),
    ]
    shared = pickle.PickleBuffer(b"shared buffer")
    shared_writable = pickle.PickleBuffer(bytearray(b"shared writable"))
    owners.append(("picklebuffers-shared", [shared, shared, shared_writable, shared_writable]))
    owners += [(entry_id, obj) for entry_id, obj in corpus.numpy_entries()]
    return [pytest.param(obj, id=entry_id) for entry_id, obj in owners]


def _describe_buffers(buffers):
    described = []
    for buf in buffers:
        assert isinstance(buf, pickle.PickleBuffer), type(buf)
        raw = buf.raw()
        described.append((bytes(raw), raw.readonly))
    return described


@pytest.mark.parametrize("obj", _buffer_owners())
def test_out_of_band_buffers_match_stdlib(obj):
    ours, theirs = [], []
    data = anypickle.dumps(obj, 5, buffer_callback=ours.append)
    expected = pickle.dumps(obj, 5, buffer_callback=theirs.append)
    assert_same_pickle(data, expected)
    assert _describe_buffers(ours) == _describe_buffers(theirs)
    loaded = pickle.loads(data, buffers=ours)
    assert_equivalent(roundtrip_reference(obj, 5), loaded, check_identity=False)


@pytest.mark.parametrize("obj", _buffer_owners())
def test_out_of_band_buffers_through_pickler_match_stdlib(obj):
    ours, theirs = [], []
    buf, expected = io.BytesIO(), io.BytesIO()
    anypickle.Pickler(buf, 5, buffer_callback=ours.append).dump(obj)
    pickle.Pickler(expected, 5, buffer_callback=theirs.append).dump(obj)
    assert_same_pickle(buf.getvalue(), expected.getvalue())
    assert _describe_buffers(ours) == _describe_buffers(theirs)

    ours.clear()
    theirs.clear()
    buf = io.BytesIO()
    anypickle.dump(obj, buf, 5, buffer_callback=ours.append)
    assert_same_pickle(buf.getvalue(), pickle.dumps(obj, 5, buffer_callback=theirs.append))
    assert _describe_buffers(ours) == _describe_buffers(theirs)


@pytest.mark.parametrize("obj", _buffer_owners())
def test_buffer_callback_returning_true_keeps_buffers_in_band(obj):
    seen_ours, seen_theirs = [], []

    def ours(buf):
        seen_ours.append(bytes(buf.raw()))
        return True

    def theirs(buf):
        seen_theirs.append(bytes(buf.raw()))
        return True

    data = anypickle.dumps(obj, 5, buffer_callback=ours)
    assert_same_pickle(data, pickle.dumps(obj, 5, buffer_callback=theirs))
    assert seen_ours == seen_theirs
    assert_equivalent(roundtrip_reference(obj, 5), pickle.loads(data), check_identity=False)


@pytest.mark.parametrize("obj", _buffer_owners())
def test_buffer_callback_mixed_in_and_out_of_band(obj):
    """Alternate truthy/falsy callback results: same bytes, same out-of-band list."""

    def alternating(store):
        count = [0]

        def callback(buf):
            count[0] += 1
            if count[0] % 2:
                store.append(buf)
                return None
            return 1

        return callback

    ours, theirs = [], []
    data = anypickle.dumps(obj, 5, buffer_callback=alternating(ours))
    assert_same_pickle(data, pickle.dumps(obj, 5, buffer_callback=alternating(theirs)))
    assert _describe_buffers(ours) == _describe_buffers(theirs)


def test_numpy_corpus_is_exercised():
    pytest.importorskip("numpy")
    assert corpus.numpy_entries(), "numpy is importable but the corpus has no numpy entries"


# --------------------------------------------------------------------------------------
# Extension codes and chunked writes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "opcode"),
    [(corpus.ExtOne, "EXT1"), (corpus.ExtTwo, "EXT2"), (corpus.ExtFour, "EXT4")],
)
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_extension_codes_are_written(cls, opcode, protocol):
    data = anypickle.dumps([cls, cls()], protocol)
    names = [op.name for op, _, _ in pickletools.genops(data)]
    assert opcode in names
    assert_same_pickle(data, pickle.dumps([cls, cls()], protocol))
    loaded = pickle.loads(data)
    assert loaded[0] is cls
    assert type(loaded[1]) is cls


class ChunkRecorder:
    """A file that records every write() call separately."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)


def _large_objects():
    return [
        pytest.param([b"x" * 100_000, "small", b"y" * 70_000], id="large-bytes"),
        pytest.param(["s" * 200_000, [1, 2, 3]], id="large-str"),
        pytest.param([bytearray(b"z" * 150_000)], id="large-bytearray"),
        pytest.param([(i, str(i), {"i": i}) for i in range(20_000)], id="many-small-objects"),
        pytest.param([b"q" * 65_536, b"r" * 65_535, b"s" * 65_537], id="frame-threshold"),
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("obj", _large_objects())
def test_pickler_writes_the_same_chunks_as_stdlib(obj, protocol):
    """Beyond equal concatenated output: the same write() calls, chunk by chunk."""
    ours, theirs = ChunkRecorder(), ChunkRecorder()
    anypickle.Pickler(ours, protocol).dump(obj)
    pickle.Pickler(theirs, protocol).dump(obj)
    assert_same_pickle(b"".join(ours.chunks), b"".join(theirs.chunks), "concatenated chunks")
    assert [len(c) for c in ours.chunks] == [len(c) for c in theirs.chunks]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("obj", _large_objects())
def test_dump_writes_the_same_bytes_as_stdlib(obj, protocol):
    ours, theirs = ChunkRecorder(), ChunkRecorder()
    anypickle.dump(obj, ours, protocol)
    pickle.dump(obj, theirs, protocol)
    assert_same_pickle(b"".join(ours.chunks), b"".join(theirs.chunks), "concatenated chunks")
