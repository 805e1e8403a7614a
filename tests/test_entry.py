"""The module's ``loads`` and ``dumps`` entry points.

A call with positional arguments only (``loads(data)``, ``dumps(obj)``,
``dumps(obj, protocol)``) takes a short way in that skips keyword handling;
every other call is handed to the full-signature function. These tests check
that both ways give the same results, errors and reference counts, and that
the functions still look like the documented ones.
"""

from __future__ import annotations

import functools
import inspect
import io
import pickle
import sys
import threading

import anypickle
import corpus
import pytest
from conftest import assert_clean_exit, run_python

SAMPLES = [
    None,
    42,
    "text",
    {"op": "put", "key": "k1", "value": 3},
    [1, 2.5, b"x", ("t", {"s"})],
    corpus.Plain(a=1, b=[2]),
]
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


@pytest.mark.parametrize("obj", SAMPLES, ids=repr)
def test_every_call_shape_writes_the_same_bytes(obj):
    for protocol in PROTOCOLS:
        expected = pickle.dumps(obj, protocol)
        assert anypickle.dumps(obj, protocol) == expected
        assert anypickle.dumps(obj, protocol=protocol) == expected
        assert anypickle.dumps(obj, protocol, fix_imports=True) == expected
        assert anypickle.dumps(obj=obj, protocol=protocol) == expected
    default = anypickle.dumps(obj, protocol=None)
    assert anypickle.dumps(obj) == default == anypickle.dumps(obj, None)
    assert anypickle.dumps(obj, -1) == anypickle.dumps(obj, protocol=-1) == default


@pytest.mark.parametrize("obj", SAMPLES, ids=repr)
@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("fix_imports", [True, False])
def test_the_short_way_keywords_match_the_full_way(obj, deterministic, fix_imports):
    # `by_value=None` is not a keyword the short way takes: it forces the full way.
    shared = [obj, obj]
    for protocol in [*PROTOCOLS, None, -1]:
        flags = {"deterministic": deterministic, "fix_imports": fix_imports}
        full = anypickle.dumps(shared, protocol, by_value=None, **flags)
        assert anypickle.dumps(shared, protocol, **flags) == full
        assert anypickle.dumps(shared, protocol=protocol, **flags) == full
        assert anypickle.dumps(obj=shared, protocol=protocol, **flags) == full
        assert anypickle.dumps(shared, **flags, protocol=protocol) == full
        loaded = pickle.loads(full)
        assert loaded[0] is loaded[1]


@pytest.mark.parametrize("obj", SAMPLES, ids=repr)
def test_every_call_shape_reads_the_same_object(obj):
    for protocol in PROTOCOLS:
        data = pickle.dumps(obj, protocol)
        short = anypickle.loads(data)
        full = anypickle.loads(data, fix_imports=True, encoding="ASCII", errors="strict")
        others = [full, anypickle.loads(bytearray(data)), anypickle.loads(memoryview(data))]
        # (Compared through their pickles: instances of corpus.Plain have no __eq__.)
        assert all(pickle.dumps(o, 5) == pickle.dumps(obj, 5) for o in [short, *others])


def test_the_short_way_reads_python2_strings_with_the_default_encoding():
    data = b"U\x03abcq\x00."  # SHORT_BINSTRING 'abc', protocol 1
    assert anypickle.loads(data) == pickle.loads(data) == "abc"
    with pytest.raises(UnicodeDecodeError):
        anypickle.loads(b"U\x01\xffq\x00.")
    assert anypickle.loads(b"U\x01\xffq\x00.", encoding="latin1") == "\xff"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: anypickle.dumps(), TypeError, "dumps()"),
        (lambda: anypickle.dumps(1, 2, 3), TypeError, "dumps()"),
        (lambda: anypickle.dumps(1, "2"), TypeError, ""),
        (lambda: anypickle.dumps(1, 6), ValueError, "protocol must be <= 5"),
        (lambda: anypickle.dumps(1, 2.0), TypeError, ""),
        (lambda: anypickle.dumps(1, protocol=6), ValueError, "protocol must be <= 5"),
        (lambda: anypickle.dumps(1, nope=1), TypeError, "unexpected keyword argument 'nope'"),
        (lambda: anypickle.dumps(1, 2, protocol=2), TypeError, "protocol"),
        (lambda: anypickle.dumps(1, deterministic=1), TypeError, "bool"),
        (lambda: anypickle.dumps(1, fix_imports=None), TypeError, "bool"),
        (lambda: anypickle.dumps(1, protocol="2"), TypeError, ""),
        (lambda: anypickle.dumps(1, **{"deterministic": True, "x": 1}), TypeError, "'x'"),
        (lambda: anypickle.loads(), TypeError, "loads()"),
        (lambda: anypickle.loads(b"N.", b"N."), TypeError, "loads()"),
        (lambda: anypickle.loads(data=b"N."), TypeError, "loads()"),
        (lambda: anypickle.loads(b"N.", protocol=2), TypeError, "'protocol'"),
        (lambda: anypickle.loads(3), TypeError, ""),
        (lambda: anypickle.loads(b""), EOFError, ""),
        (lambda: anypickle.loads(b"\x80\x05\xff."), pickle.UnpicklingError, "offset 2"),
    ],
)
def test_bad_calls_raise_as_documented(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_unpicklable_objects_fail_the_same_way_both_ways():
    lock = threading.Lock()
    short = full = None
    try:
        anypickle.dumps([lock])
    except TypeError as exc:
        short = str(exc)
    try:
        # (`by_value=None` is not a keyword the short way takes: the full way.)
        anypickle.dumps([lock], protocol=None, deterministic=True, by_value=None)
    except TypeError as exc:
        full = str(exc)
    assert short is not None and short == full


def test_arguments_keep_their_reference_counts():
    obj = {"k": ["v", 1.5]}
    data = pickle.dumps(obj, 5)
    protocol = 4
    bad = data[:-1] + b"\xff"
    tracked = [obj, data, bad]  # (not `protocol`: small ints are shared)
    before = [sys.getrefcount(o) for o in tracked]
    for _ in range(1000):
        anypickle.dumps(obj)
        anypickle.dumps(obj, protocol)
        anypickle.dumps(obj, protocol=protocol)
        anypickle.dumps(obj, protocol, by_value=None)
        anypickle.loads(data)
        anypickle.loads(data, encoding="ASCII")
        with pytest.raises(pickle.UnpicklingError):
            anypickle.loads(bad)
        with pytest.raises(TypeError):
            anypickle.dumps(obj, protocol, 3)
    assert [sys.getrefcount(o) for o in tracked] == before


def test_the_functions_look_like_the_documented_ones():
    for func, name in [(anypickle.loads, "loads"), (anypickle.dumps, "dumps")]:
        assert func.__name__ == func.__qualname__ == name
        assert func.__module__ == "anypickle._core"
        assert func.__doc__ and not func.__doc__.startswith(name + "(")
        assert "Example:" in func.__doc__
        # Pickled by reference, and found again as the same object.
        assert pickle.loads(pickle.dumps(func)) is func
        assert anypickle.loads(anypickle.dumps(func)) is func
    loads_params = inspect.signature(anypickle.loads).parameters
    assert list(loads_params) == "data fix_imports encoding errors buffers pause_gc".split()
    assert loads_params["encoding"].default == "ASCII"
    dumps_params = inspect.signature(anypickle.dumps).parameters
    expected = "obj protocol fix_imports buffer_callback deterministic by_value".split()
    assert list(dumps_params) == expected
    assert dumps_params["deterministic"].default is True


def test_partial_and_keyword_forwarding():
    dumps2 = functools.partial(anypickle.dumps, protocol=2)
    assert dumps2([1]) == pickle.dumps([1], 2)
    buffers = []
    data = anypickle.dumps(pickle.PickleBuffer(b"abc"), 5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert bytes(anypickle.loads(data, buffers=buffers)) == b"abc"


class DumpsWhileDumped:
    def __reduce__(self):
        inner = anypickle.loads(anypickle.dumps(["inner"]))
        return (list, (inner,))


class LoadsWhileLoaded:
    """Loading it calls anypickle.loads (a load inside a load)."""

    def __reduce__(self):
        return (anypickle.loads, (anypickle.dumps(["inner", 2]),))


class LoadsWhenFreed:
    """Its finalizer loads: run while a failed load drops its stack."""

    loaded: list = []

    def __reduce__(self):
        return (LoadsWhenFreed, ())

    def __del__(self):
        LoadsWhenFreed.loaded.append(anypickle.loads(anypickle.dumps([1, (2, 3)])))


def test_a_dump_inside_a_dump():
    data = anypickle.dumps([DumpsWhileDumped(), DumpsWhileDumped()])
    assert pickle.loads(data) == [["inner"], ["inner"]]
    assert anypickle.loads(data) == [["inner"], ["inner"]]


def test_a_load_inside_a_load():
    data = anypickle.dumps([LoadsWhileLoaded(), {"k": LoadsWhileLoaded()}, "after"])
    expected = [["inner", 2], {"k": ["inner", 2]}, "after"]
    assert pickle.loads(data) == expected
    for _ in range(3):  # the spare stacks are taken and given back each time
        assert anypickle.loads(data) == expected


def test_finalizers_that_load_while_a_failed_load_drops_its_stack():
    good = anypickle.dumps([LoadsWhenFreed() for _ in range(5)])
    LoadsWhenFreed.loaded.clear()  # (the five pickled instances are gone too)
    # Same objects, then a byte no pickle opcode has: the load fails with the
    # five instances on its stack, and dropping them runs their finalizers.
    bad = good[: good.rindex(b".")] + b"\xff"
    for _ in range(3):
        with pytest.raises(pickle.UnpicklingError):
            anypickle.loads(bad)
    assert LoadsWhenFreed.loaded == [[1, (2, 3)]] * 15
    assert anypickle.loads(anypickle.dumps({"after": [1, 2]})) == {"after": [1, 2]}


def test_results_of_the_full_way_are_not_leaked():
    import weakref

    data = anypickle.dumps(corpus.Plain(a=1))
    for call in [
        lambda: anypickle.loads(data, encoding="ASCII"),
        lambda: anypickle.loads(data),
    ]:
        obj = call()
        assert sys.getrefcount(obj) == 2
        ref = weakref.ref(obj)
        del obj
        assert ref() is None
    out = anypickle.dumps([1], by_value=None)
    assert sys.getrefcount(out) == 2


def test_the_short_way_does_not_grow_memory():
    code = """
import os, anypickle
def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
obj = {"op": "put", "key": "k1", "value": [1, 2.5]}
data = anypickle.dumps(obj)
bad = data[:-1] + b"\\xff"
def op():
    anypickle.loads(anypickle.dumps(obj))
    anypickle.dumps(obj, 2)
    anypickle.loads(anypickle.dumps(obj, by_value=None), encoding="ASCII")
    try:
        anypickle.loads(bad)
    except Exception:
        pass
for _ in range(20_000):
    op()
before = rss_kb()
for _ in range(300_000):
    op()
print("GROWTH_KB", rss_kb() - before)
"""
    rc, out, err = run_python(code)
    assert_clean_exit(rc, out, err)
    growth = int(out.split()[-1])
    assert growth <= 2048, f"RSS grew by {growth} KB"


def test_file_functions_are_unchanged():
    f = io.BytesIO()
    anypickle.dump({"k": 1}, f, 2)
    f.seek(0)
    assert anypickle.load(f) == {"k": 1}
