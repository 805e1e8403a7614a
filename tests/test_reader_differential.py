"""Differential tests of anypickle's reader against the stdlib's C unpickler.

Whatever the bytes (written by the stdlib's C or pure-Python pickler, by
anypickle in either mode, by cloudpickle, dill or Python 2), ``anypickle.loads``
must give what ``pickle.loads`` gives: an equivalent object (same types,
values, shared parts and cycles, see ``conftest.assert_equivalent``), or an
exception that ``reader_support.reader_exception_matches`` the stdlib's.

* the whole corpus at protocols 0-5 (entries the stdlib cannot pickle at a
  protocol are skipped there), from five writers, through ``loads``,
  ``load`` and ``Unpickler``;
* out-of-band buffers (protocol 5): every form of ``buffers=`` and the errors;
* cloudpickle and dill pickles of lambdas, closures, local classes;
* Python 2 pickles (``tests/data/py2``) with every ``encoding``/``errors``/
  ``fix_imports`` combination that matters;
* hypothesis: random nested data and object graphs, and corrupted pickles.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import pickle
import subprocess
import sys

import anypickle
import corpus
import py2_classes
import pytest
from conftest import (
    PROTOCOLS,
    TESTS_DIR,
    assert_clean_exit,
    assert_equivalent,
    run_python,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reader_support import (
    READER_ERRORS,
    assert_loads_like_stdlib,
    assert_same_outcome,
    outcome,
)
from test_writer_hypothesis import build_graph, graph_recipes, nested, protocols

try:
    import numpy
except ImportError:  # pragma: no cover - optional dependency
    numpy = None

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

ENTRIES = corpus.corpus()


def _picklable_cases():
    cases = []
    with corpus.extension_codes():
        for entry_id, obj in ENTRIES:
            if entry_id.startswith(corpus.BY_VALUE_PREFIX):
                continue  # functions rebuilt by value are new objects: checked elsewhere
            for protocol in PROTOCOLS:
                try:
                    pickle.dumps(obj, protocol)
                except Exception:
                    continue
                cases.append(pytest.param(obj, protocol, id=f"{entry_id}-p{protocol}"))
    return cases


PICKLABLE = _picklable_cases()


@pytest.fixture(autouse=True, scope="module")
def _corpus_extension_codes():
    """The EXT1/EXT2/EXT4 corpus classes need their copyreg codes registered to load too."""
    with corpus.extension_codes():
        yield


def _assert_reads_like_stdlib(data):
    """anypickle.loads(data) is equivalent to pickle.loads(data) (which must succeed)."""
    expected = pickle.loads(data)
    assert_equivalent(expected, anypickle.loads(data))


# --------------------------------------------------------------------------------------
# The corpus, from every writer
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_loads_stdlib_pickles(obj, protocol):
    _assert_reads_like_stdlib(pickle.dumps(obj, protocol))


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_loads_pure_python_pickler_pickles(obj, protocol):
    """pickle._Pickler frames, batches and memoizes a little differently from _pickle."""
    _assert_reads_like_stdlib(pickle._dumps(obj, protocol))


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_loads_anypickle_pickles(obj, protocol):
    _assert_reads_like_stdlib(anypickle.dumps(obj, protocol))


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_loads_nondeterministic_anypickle_pickles(obj, protocol):
    _assert_reads_like_stdlib(anypickle.dumps(obj, protocol, deterministic=False))


@pytest.mark.parametrize(("obj", "protocol"), PICKLABLE)
def test_load_and_unpickler_from_a_file(obj, protocol):
    """load() and Unpickler.load() read one pickle and stop right after its STOP."""
    data = pickle.dumps(obj, protocol)
    expected = pickle.loads(data)
    trailer = b"trailing bytes that are not read"

    f = io.BytesIO(data + trailer)
    assert_equivalent(expected, anypickle.load(f))
    assert f.tell() == len(data)

    f = io.BytesIO(data + trailer)
    assert_equivalent(expected, anypickle.Unpickler(f).load())
    assert f.tell() == len(data)
    assert f.read() == trailer


def test_corpus_is_exercised_at_every_protocol():
    protocols_seen = {param.values[1] for param in PICKLABLE}
    assert protocols_seen == set(PROTOCOLS)
    assert len(PICKLABLE) > 1000


# --------------------------------------------------------------------------------------
# Out-of-band buffers (protocol 5)
# --------------------------------------------------------------------------------------


class ZeroCopyBytes(bytes):
    """Rebuilt from its out-of-band buffer without a copy when that buffer is one of these."""

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return type(self)._reconstruct, (pickle.PickleBuffer(self),), None
        return type(self)._reconstruct, (bytes(self),)

    @classmethod
    def _reconstruct(cls, obj):
        with memoryview(obj) as m:
            obj = m.obj
            if type(obj) is cls:
                return obj
            return cls(obj)


class ZeroCopyBytearray(bytearray):
    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return type(self)._reconstruct, (pickle.PickleBuffer(self),), None
        return type(self)._reconstruct, (bytes(self),)

    @classmethod
    def _reconstruct(cls, obj):
        with memoryview(obj) as m:
            obj = m.obj
            if type(obj) is cls:
                return obj
            return cls(obj)


def _oob_objects():
    shared = pickle.PickleBuffer(b"shared readonly")
    shared_w = pickle.PickleBuffer(bytearray(b"shared writable"))
    objs = [
        ("picklebuffer-bytes", pickle.PickleBuffer(b"readonly payload")),
        ("picklebuffer-bytearray", pickle.PickleBuffer(bytearray(b"writable payload"))),
        ("picklebuffer-empty", pickle.PickleBuffer(b"")),
        ("picklebuffer-large", pickle.PickleBuffer(b"L" * 70000)),
        ("shared", [shared, shared, shared_w, shared_w]),
        ("nested", {"a": [pickle.PickleBuffer(b"one"), 1], "b": (pickle.PickleBuffer(b"2"),)}),
        ("zero-copy-bytes", ZeroCopyBytes(b"zero copy")),
        ("zero-copy-bytearray", ZeroCopyBytearray(b"zero copy w")),
    ]
    if numpy is not None:
        objs += [
            ("numpy-int64", numpy.arange(10, dtype=numpy.int64)),
            ("numpy-fortran", numpy.asfortranarray(numpy.arange(6.0).reshape(2, 3))),
            ("numpy-two-arrays", [numpy.arange(3), numpy.ones(4, dtype=numpy.uint8)]),
        ]
    return objs


# How the out-of-band buffers are handed to loads(buffers=...).
BUFFER_FORMS = {
    "picklebuffers": lambda bufs: list(bufs),
    "bytes": lambda bufs: [bytes(b.raw()) for b in bufs],
    "bytearray": lambda bufs: [bytearray(b.raw()) for b in bufs],
    "memoryview": lambda bufs: [b.raw() for b in bufs],
    "readonly-memoryview-of-bytearray": lambda bufs: [
        memoryview(bytearray(b.raw())).toreadonly() for b in bufs
    ],
    "iterator": lambda bufs: iter(list(bufs)),
    "generator": lambda bufs: (b for b in list(bufs)),
    "tuple": lambda bufs: tuple(bufs),
}


def _describe_loaded(obj, buffers):
    """Leaves of a loaded structure: type, contents, readonly-ness, which buffer it *is*."""
    ids = {id(b): i for i, b in enumerate(buffers)}
    out = []
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)) and not isinstance(x, (bytes, bytearray)):
            stack.extend(reversed(x))
            continue
        if isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
            continue
        if numpy is not None and isinstance(x, numpy.ndarray):
            shares = [i for i, b in enumerate(buffers) if numpy.shares_memory(x, numpy.asarray(b))]
            out.append(("ndarray", x.dtype.str, x.shape, x.tobytes(), x.flags.writeable, shares))
            continue
        try:
            m = memoryview(x)
        except TypeError:
            out.append(("value", repr(x)))
            continue
        with m:
            out.append((type(x).__name__, m.tobytes(), m.readonly, ids.get(id(x))))
    return out


@pytest.mark.parametrize("form", sorted(BUFFER_FORMS))
@pytest.mark.parametrize(("name", "obj"), _oob_objects(), ids=[n for n, _ in _oob_objects()])
def test_out_of_band_buffers_like_stdlib(name, obj, form):
    collected = []
    data = pickle.dumps(obj, 5, buffer_callback=collected.append)
    assert collected, "nothing went out of band"

    # One fresh set of buffers per reader; the same objects must be handed back.
    theirs_in = list(BUFFER_FORMS[form](collected))
    ours_in = list(BUFFER_FORMS[form](collected))
    theirs = pickle.loads(data, buffers=theirs_in)
    ours = anypickle.loads(data, buffers=ours_in)
    assert _describe_loaded(ours, ours_in) == _describe_loaded(theirs, theirs_in)

    # The same through Unpickler(buffers=...) and load(buffers=...).
    ours_in = list(BUFFER_FORMS[form](collected))
    ours = anypickle.Unpickler(io.BytesIO(data), buffers=iter(ours_in)).load()
    assert _describe_loaded(ours, ours_in) == _describe_loaded(theirs, theirs_in)
    ours_in = list(BUFFER_FORMS[form](collected))
    ours = anypickle.load(io.BytesIO(data), buffers=ours_in)
    assert _describe_loaded(ours, ours_in) == _describe_loaded(theirs, theirs_in)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_buffers_argument_without_out_of_band_data(protocol):
    data = pickle.dumps([b"in band", bytearray(b"x")], protocol)
    assert_loads_like_stdlib(data, buffers=None)
    assert_loads_like_stdlib(data, buffers=[])
    assert_loads_like_stdlib(data, buffers=[b"unused"])


def _two_buffer_pickle():
    collected = []
    data = pickle.dumps(
        [pickle.PickleBuffer(b"ro"), pickle.PickleBuffer(bytearray(b"rw"))],
        5,
        buffer_callback=collected.append,
    )
    assert len(collected) == 2
    return data


def _raising_buffers():
    yield b"first"
    raise LookupError("buffer source failed")


@pytest.mark.parametrize(
    "make_buffers",
    [
        pytest.param(lambda: None, id="none"),
        pytest.param(lambda: [], id="empty"),
        pytest.param(lambda: [b"only one"], id="too-few"),
        pytest.param(lambda: iter([b"only one"]), id="too-few-iterator"),
        pytest.param(lambda: object(), id="not-iterable"),
        pytest.param(lambda: 42, id="int"),
        pytest.param(lambda: [42, b"x"], id="readonly-buffer-not-a-buffer"),
        pytest.param(lambda: [b"x", 42], id="writable-buffer-not-a-buffer"),
        pytest.param(lambda: [b"x", "str"], id="str-buffer"),
        pytest.param(_raising_buffers, id="iterator-raises"),
    ],
)
def test_missing_or_bad_buffers_like_stdlib(make_buffers):
    """Errors as in the stdlib: UnpicklingError when buffers run out, TypeError when bad."""
    data = _two_buffer_pickle()
    expected = outcome(lambda: pickle.loads(data, buffers=make_buffers()))
    got = outcome(lambda: anypickle.loads(data, buffers=make_buffers()))
    if expected[0] == "ok":
        # e.g. a non-buffer object where the pickle does not ask for a readonly view
        assert got[0] == "ok"
        assert got[1][1] == expected[1][1]
    else:
        assert_same_outcome(expected, got)
    got = outcome(lambda: anypickle.Unpickler(io.BytesIO(data), buffers=make_buffers()).load())
    if expected[0] == "raised":
        assert_same_outcome(expected, got, "anypickle.Unpickler")


def test_missing_buffers_is_unpickling_error():
    data = _two_buffer_pickle()
    with pytest.raises(pickle.UnpicklingError):
        anypickle.loads(data)
    with pytest.raises(pickle.UnpicklingError):
        anypickle.loads(data, buffers=[b"one"])
    with pytest.raises(TypeError):
        anypickle.loads(data, buffers=object())


@pytest.mark.skipif(numpy is None, reason="numpy is not installed")
def test_numpy_out_of_band_zero_copy():
    """Arrays rebuilt from writable buffers share their memory; readonly sources give readonly."""
    arr = numpy.arange(1000, dtype=numpy.float64)
    collected = []
    data = pickle.dumps(arr, 5, buffer_callback=collected.append)
    writable = bytearray(collected[0].raw())
    loaded = anypickle.loads(data, buffers=[writable])
    assert numpy.shares_memory(loaded, numpy.frombuffer(writable, dtype=numpy.uint8))
    assert loaded.flags.writeable
    numpy.testing.assert_array_equal(loaded, arr)

    readonly = bytes(collected[0].raw())
    loaded = anypickle.loads(data, buffers=[readonly])
    assert not loaded.flags.writeable
    numpy.testing.assert_array_equal(loaded, arr)


# --------------------------------------------------------------------------------------
# cloudpickle and dill
# --------------------------------------------------------------------------------------


def _by_value_objects():
    """Local functions and classes: pickled by value by cloudpickle and dill."""

    def outer(k):
        def inner(x):
            return x + k

        return inner

    class Local:
        def __init__(self, v):
            self.v = v

        def double(self):
            return self.v * 2

    def recursive(n):
        return 1 if n <= 1 else n * recursive(n - 1)

    return {
        "lambda": lambda x: x * 3,
        "closure": outer(5),
        "class": Local,
        "instance": Local(4),
        "recursive": recursive,
        "data": {"list": [1, 2.5, "s", b"b"], "nested": (None, True, {"k": {1, 2}})},
    }


def _check_by_value_objects(loaded):
    assert loaded["lambda"](2) == 6
    assert loaded["closure"](1) == 6
    assert loaded["class"](3).double() == 6
    assert loaded["instance"].double() == 8
    assert type(loaded["instance"]) is loaded["class"]
    assert loaded["recursive"](5) == 120
    assert loaded["data"] == {"list": [1, 2.5, "s", b"b"], "nested": (None, True, {"k": {1, 2}})}


@pytest.fixture(scope="module")
def by_value_libraries():
    """cloudpickle and dill (whichever is installed).

    Importing dill extends the stdlib's pure-Python ``pickle._Pickler`` dispatch
    table with dill's reducers (``dill.extend(True)``), which changes what
    ``pickle._dumps`` writes for every later test in the session: undone here.
    """
    libraries = {}
    for name in ("cloudpickle", "dill"):
        try:
            libraries[name] = __import__(name)
        except ImportError:  # pragma: no cover - optional dependency
            pass
    yield libraries
    if "dill" in libraries:
        libraries["dill"].extend(False)


@pytest.mark.parametrize("library", ["cloudpickle", "dill"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_by_value_pickles_load_and_work(library, protocol, by_value_libraries):
    if library not in by_value_libraries:
        pytest.skip(f"{library} is not installed")
    lib = by_value_libraries[library]
    data = lib.dumps(_by_value_objects(), protocol=protocol)
    _check_by_value_objects(anypickle.loads(data))
    _check_by_value_objects(anypickle.load(io.BytesIO(data)))
    _check_by_value_objects(anypickle.Unpickler(io.BytesIO(data)).load())
    # Plain data written by the library loads like the stdlib reads it.
    plain = lib.dumps(corpus.Plain(a=[1, 2], b={"x": (1,)}), protocol=protocol)
    assert_loads_like_stdlib(plain)


def test_cloudpickle_pickles_load_in_a_fresh_interpreter(tmp_path):
    """Functions and classes pickled by value load where their defining module is unknown."""
    cloudpickle = pytest.importorskip("cloudpickle")
    for protocol in PROTOCOLS:
        (tmp_path / f"p{protocol}.pkl").write_bytes(
            cloudpickle.dumps(_by_value_objects(), protocol=protocol)
        )
    rc, out, err = run_python(
        f"""
        import pathlib, sys
        import anypickle
        for path in sorted(pathlib.Path({str(tmp_path)!r}).glob("*.pkl")):
            loaded = anypickle.loads(path.read_bytes())
            assert loaded["lambda"](2) == 6
            assert loaded["closure"](1) == 6
            assert loaded["class"](3).double() == 6
            assert loaded["instance"].double() == 8
            assert type(loaded["instance"]) is loaded["class"]
            assert loaded["recursive"](5) == 120
        assert "test_reader_differential" not in sys.modules
        print("ok")
        """
    )
    assert_clean_exit(rc, out, err)
    assert out.strip() == "ok"


# --------------------------------------------------------------------------------------
# Python 2 pickles
# --------------------------------------------------------------------------------------

PY2_DIR = os.path.join(TESTS_DIR, "data", "py2")
with open(os.path.join(PY2_DIR, "manifest.json"), encoding="utf-8") as _manifest:
    PY2_MANIFEST = json.load(_manifest)
PY2_FILES = [entry["file"] for entry in PY2_MANIFEST["pickles"]]
PY2_NAME = {entry["file"]: entry["name"] for entry in PY2_MANIFEST["pickles"]}
PY2_PROTOCOL = {entry["file"]: entry["protocol"] for entry in PY2_MANIFEST["pickles"]}


def _py2_data(filename):
    with open(os.path.join(PY2_DIR, filename), "rb") as f:
        return f.read()


def _py2_expected_latin1():
    """What each Python 2 value loads as with encoding="latin1" (keyed by manifest name)."""
    m = py2_classes
    shared = [1, 2]
    cycle = []
    cycle.append(cycle)
    slots = m.NewStyleSlots(1, "two")
    return {
        "none_bools": [None, True, False],
        "int": 42,
        "negative_int": -123456,
        "int_64bit": 2**40,
        "long_small": 5,
        "long": 2**100,
        "negative_long": -(2**70),
        "float": 1.5,
        "str_ascii": "hello",
        "str_nonascii": "caf\xe9 \xff\x00",
        "str_long_nonascii": "\xe9" * 300,
        "unicode": "caf\xe9 \u20ac \U0001f600 \\ \n",
        "unicode_ascii": "plain",
        "datetime": datetime.datetime(2001, 2, 3, 4, 5, 6, 7),
        "date": datetime.date(2024, 2, 29),
        "time": datetime.time(12, 30, 45, 123456),
        "timedelta": datetime.timedelta(days=3, seconds=7, microseconds=9),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "dict": {"a": 1, "b": [1, 2], "c": None, "k\xe9y": "v\xe9"},
        "nested": {"list": [1, "x", "y", (2, 3)], "shared": [shared, shared], "t": (None, 1.5)},
        "cycle": cycle,
        "old_style": m.OldStyle(a=1, b="x", c=[1, 2]),
        "old_style_initargs": m.OldStyleInitArgs(1, "two"),
        "new_style": m.NewStyle(a=1, b="x"),
        "new_style_state": m.NewStyleState(1, "x"),
        "new_style_slots": slots,
        "reduced": m.Reduced(5),
        "classes": [m.OldStyle, m.NewStyle, set, m.make_reduced],
        "exception": ValueError("bad", 3),
    }


def _canonical(obj):
    """An order-independent, comparable form of an acyclic value (Python 2 dicts are unordered)."""
    if isinstance(obj, dict):
        items = sorted(((_canonical(k), _canonical(v)) for k, v in obj.items()), key=repr)
        return (type(obj).__name__, items)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_canonical(x) for x in obj])
    if isinstance(obj, (set, frozenset)):
        return (type(obj).__name__, sorted((_canonical(x) for x in obj), key=repr))
    if isinstance(obj, BaseException):
        return (type(obj).__name__, _canonical(obj.args))
    if type(obj).__module__ == "py2_classes":
        if hasattr(obj, "__dict__"):
            return (type(obj).__qualname__, _canonical(vars(obj)))
        return (type(obj).__qualname__, [getattr(obj, s, None) for s in type(obj).__slots__])
    return (type(obj).__name__, obj)


# Keyword arguments of loads for Python 2 pickles; the stdlib decides what each gives.
PY2_OPTIONS = {
    "default": {},
    "latin1": {"encoding": "latin1"},
    "bytes": {"encoding": "bytes"},
    "ascii-replace": {"encoding": "ASCII", "errors": "replace"},
    "utf8-surrogateescape": {"encoding": "utf-8", "errors": "surrogateescape"},
    "koi8-r": {"encoding": "koi8-r"},
    "latin1-no-fix-imports": {"encoding": "latin1", "fix_imports": False},
    "bytes-no-fix-imports": {"encoding": "bytes", "fix_imports": False},
}


@pytest.mark.parametrize("options", sorted(PY2_OPTIONS))
@pytest.mark.parametrize("filename", PY2_FILES)
def test_python2_pickles_like_stdlib(filename, options):
    data = _py2_data(filename)
    kwargs = PY2_OPTIONS[options]
    assert_loads_like_stdlib(data, **kwargs)
    expected = outcome(lambda: pickle.loads(data, **kwargs))
    got = outcome(lambda: anypickle.Unpickler(io.BytesIO(data), **kwargs).load())
    assert_same_outcome(expected, got, "anypickle.Unpickler")


_CYCLIC_PY2 = {"cycle", "new_style_cycle"}


@pytest.mark.parametrize("filename", PY2_FILES)
def test_python2_pickles_latin1_values(filename):
    name = PY2_NAME[filename]
    loaded = anypickle.loads(_py2_data(filename), encoding="latin1")
    if name == "cycle":
        assert type(loaded) is list and loaded[0] is loaded
    elif name == "new_style_cycle":
        assert type(loaded) is py2_classes.NewStyle
        assert loaded.me is loaded and loaded.tag == "me"
    else:
        expected = _py2_expected_latin1()[name]
        assert _canonical(loaded) == _canonical(expected)
    if name == "nested":
        assert loaded["shared"][0] is loaded["shared"][1]
    if name == "classes":
        assert loaded[0] is py2_classes.OldStyle and loaded[2] is set


def test_python2_manifest_covers_every_value_and_protocol():
    names = {PY2_NAME[f] for f in PY2_FILES}
    assert names == set(_py2_expected_latin1()) | _CYCLIC_PY2
    assert {PY2_PROTOCOL[f] for f in PY2_FILES} == {0, 1, 2}
    assert all(os.path.exists(os.path.join(PY2_DIR, f)) for f in PY2_FILES)


def _py2_files(name):
    return [f for f in PY2_FILES if PY2_NAME[f] == name]


@pytest.mark.parametrize("filename", _py2_files("str_nonascii") + _py2_files("dict"))
def test_python2_str_with_encoding_bytes(filename):
    loaded = anypickle.loads(_py2_data(filename), encoding="bytes")
    if PY2_NAME[filename] == "str_nonascii":
        assert loaded == b"caf\xe9 \xff\x00"
    else:
        # Python 2 str keys load as bytes, unicode keys as str.
        assert loaded == {b"a": 1, b"b": [1, 2], "c": None, "k\xe9y": b"v\xe9"}


@pytest.mark.parametrize("filename", _py2_files("old_style") + _py2_files("new_style"))
def test_python2_instances_with_encoding_bytes(filename):
    loaded = anypickle.loads(_py2_data(filename), encoding="bytes")
    if PY2_NAME[filename] == "old_style":
        assert vars(loaded) == {b"a": 1, b"b": b"x", b"c": [1, 2]}
    else:
        assert vars(loaded) == {b"a": 1, b"b": b"x"}


@pytest.mark.parametrize(
    "filename", _py2_files("datetime") + _py2_files("date") + _py2_files("time")
)
def test_python2_datetime_needs_latin1_or_bytes(filename):
    expected = _py2_expected_latin1()[PY2_NAME[filename]]
    data = _py2_data(filename)
    assert anypickle.loads(data, encoding="latin1") == expected
    assert anypickle.loads(data, encoding="bytes") == expected
    with pytest.raises(UnicodeDecodeError):
        anypickle.loads(data)


@pytest.mark.parametrize("filename", _py2_files("str_nonascii"))
def test_python2_str_ascii_errors(filename):
    data = _py2_data(filename)
    assert anypickle.loads(data, errors="replace") == "caf\ufffd \ufffd\x00"
    assert anypickle.loads(data, encoding="ASCII", errors="ignore") == "caf \x00"
    with pytest.raises(UnicodeDecodeError) as info:
        anypickle.loads(data, encoding="ASCII", errors="strict")
    # anypickle-only: the decode error is also an UnpicklingError, and says where.
    assert isinstance(info.value, READER_ERRORS["PickleUnicodeDecodeError"])
    assert isinstance(info.value, pickle.UnpicklingError)
    assert "offset" in str(info.value)


@pytest.mark.parametrize(
    "filename",
    [
        f
        for f in PY2_FILES
        if PY2_NAME[f] in {"set", "frozenset", "exception", "classes"}
        or (PY2_NAME[f] in {"new_style", "new_style_state"} and PY2_PROTOCOL[f] < 2)
    ],
)
def test_python2_module_names_need_fix_imports(filename):
    """__builtin__, exceptions, copy_reg exist only through fix_imports' renaming."""
    data = _py2_data(filename)
    assert anypickle.loads(data, encoding="latin1") is not None
    with pytest.raises(ModuleNotFoundError) as info:
        anypickle.loads(data, encoding="latin1", fix_imports=False)
    # The import error of find_class propagates unchanged (not wrapped).
    assert type(info.value) is ModuleNotFoundError
    assert info.value.name in {"__builtin__", "exceptions", "copy_reg"}


# --------------------------------------------------------------------------------------
# Hypothesis: random data, graphs, corrupted pickles
# --------------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(obj=nested, protocol=protocols)
def test_hypothesis_stdlib_pickles_load_like_stdlib(obj, protocol):
    data = pickle.dumps(obj, protocol)
    loaded = anypickle.loads(data)
    assert_equivalent(pickle.loads(data), loaded)
    assert_equivalent(obj, loaded)


@SETTINGS
@given(obj=nested, protocol=protocols, deterministic=st.booleans())
def test_hypothesis_anypickle_roundtrip(obj, protocol, deterministic):
    data = anypickle.dumps(obj, protocol, deterministic=deterministic)
    assert_equivalent(obj, anypickle.loads(data))
    assert_equivalent(obj, anypickle.Unpickler(io.BytesIO(data)).load())


@SETTINGS
@given(recipe=graph_recipes(), protocol=protocols, deterministic=st.booleans())
def test_hypothesis_graphs_keep_sharing_and_cycles(recipe, protocol, deterministic):
    root, _external = build_graph(recipe)
    data = anypickle.dumps(root, protocol, deterministic=deterministic)
    expected_root, _expected_external = build_graph(recipe)
    assert_equivalent(expected_root, anypickle.loads(data))
    data = pickle.dumps(root, protocol)
    assert_equivalent(pickle.loads(data), anypickle.loads(data))


@SETTINGS
@given(objs=st.lists(nested, min_size=1, max_size=4), protocol=protocols)
def test_hypothesis_concatenated_pickles_from_one_file(objs, protocol):
    """Pickles written one after the other by one Pickler (shared memo) load one by one."""
    f = io.BytesIO()
    pickler = pickle.Pickler(f, protocol)
    ends = []
    for obj in objs + objs:
        pickler.dump(obj)
        ends.append(f.tell())
    f.seek(0)
    unpickler = anypickle.Unpickler(f)
    for obj, end in zip(objs + objs, ends, strict=True):
        assert_equivalent(obj, unpickler.load(), check_identity=False)
        assert f.tell() == end
    with pytest.raises(EOFError):
        unpickler.load()


# --------------------------------------------------------------------------------------
# Corrupted pickles (in a child interpreter: a crash must fail one test, not the session)
# --------------------------------------------------------------------------------------

_CORRUPTION_CHILD = r"""
import io, os, pickle, pickletools, random, resource, sys
import anypickle
from conftest import is_equivalent
from reader_support import outcome, reader_exception_matches

# A hostile length must give MemoryError here, not exhaust the machine.
with open("/proc/self/status", encoding="ascii") as f:
    vm_size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
limit = vm_size + (2 << 30)
if hard != resource.RLIM_INFINITY:
    limit = min(limit, hard)
resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

rng = random.Random(SEED)
OPCODES = sorted({op.code.encode("latin-1") for op in pickletools.opcodes})
GLOBAL_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"}
MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def value(depth=0):
    kind = rng.randrange(13 if depth < 4 else 7)
    n = rng.randrange(6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([rng.randint(-300, 70000), rng.randint(-(2**70), 2**70)])
    if kind == 2:
        return rng.choice([0.0, -0.0, 1.5, float("inf"), rng.random()])
    if kind == 3:
        return "".join(rng.choice("ab\xe9\u20ac\U0001f600\n\\\0 ") for _ in range(n))
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(n))
    if kind == 5:
        return bytearray(b"xy" * n)
    if kind == 6:
        return "s" * rng.choice([0, 255, 256, 300])
    if kind == 7:
        return [value(depth + 1) for _ in range(n)]
    if kind == 8:
        return tuple(value(depth + 1) for _ in range(n))
    if kind == 9:
        return {rng.choice(["a", "b", 1, 2.5, (1,), b"k"]): value(depth + 1) for _ in range(n)}
    if kind == 10:
        return {rng.choice(["a", "b", 1, 2.5, (1,), None]) for _ in range(n)}
    if kind == 11:
        return frozenset(rng.choice(["a", 1, (2, 3)]) for _ in range(n))
    shared = value(depth + 1)
    return [shared, [shared], (shared,)]


def corrupt(data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["flip", "opcode", "truncate", "delete", "insert"])
        pos = rng.randrange(max(1, len(data)))
        if kind == "flip" and data:
            data[pos] = rng.randrange(256)
        elif kind == "opcode" and data:
            data[pos : pos + 1] = rng.choice(OPCODES)
        elif kind == "truncate":
            del data[pos:]
        elif kind == "delete":
            del data[pos : pos + rng.randint(1, 4)]
        else:
            data[pos:pos] = rng.choice(OPCODES)
    return bytes(data)


def safe(data):
    # No global lookups (nothing is imported or called), no huge memo indices.
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name in GLOBAL_OPCODES:
                return False
            if op.name in MEMO_PUTS and arg > 100_000:
                return False
    except Exception:
        pass  # the readers stop where (or before) the disassembler did
    return True


# What the stdlib raises for corrupt data (no globals run in these cases).
DATA_ERRORS = (
    pickle.UnpicklingError, ValueError, OverflowError, KeyError, IndexError, EOFError, TypeError
)


def strict_frame_error(exc):
    # anypickle's framing is strict (like pickle.py): where the C reader ignores a
    # lying FRAME length, anypickle refuses the pickle.
    return isinstance(exc, pickle.UnpicklingError) and "frame" in str(exc)


def same(expected, got):
    if expected[0] == "raised":
        if isinstance(expected[1], MemoryError):
            return True
        if got[0] != "raised":
            return False
        if reader_exception_matches(got[1], expected[1]):
            return True
        # Corrupt data: the two readers may notice different problems first
        # (anypickle checks lengths, frames and text before building anything).
        # Any UnpicklingError (or EOFError) is then the documented outcome.
        return isinstance(expected[1], DATA_ERRORS) and isinstance(
            got[1], (pickle.UnpicklingError, EOFError)
        )
    if got[0] != "ok":
        return strict_frame_error(got[1])
    try:
        return is_equivalent(expected[1], got[1])
    except Exception:
        return repr(expected[1]) == repr(got[1])


def describe(result):
    kind, value = result
    if kind == "raised":
        return f"{type(value).__name__}: {value}"
    return f"returned {value!r:.100}"


last_case = open(sys.argv[1], "wb")
checked = 0
mismatches = []
for i in range(CASES):
    data = corrupt(pickle.dumps(value(), rng.randrange(6)))
    if not safe(data):
        continue
    last_case.seek(0)
    last_case.write(data)
    last_case.truncate()
    last_case.flush()
    checked += 1
    # The stdlib's in-memory and file paths differ on some truncations (EOFError vs
    # UnpicklingError): each anypickle path is compared with the same stdlib path.
    for how, stdlib_load, anypickle_load in (
        ("loads", lambda: pickle.loads(data), lambda: anypickle.loads(data)),
        (
            "Unpickler",
            lambda: pickle.Unpickler(io.BytesIO(data)).load(),
            lambda: anypickle.Unpickler(io.BytesIO(data)).load(),
        ),
    ):
        expected = outcome(stdlib_load)
        got = outcome(anypickle_load)
        if not same(expected, got):
            mismatches.append(
                f"{how}({data!r}): stdlib {describe(expected)}; anypickle {describe(got)}"
            )
print("checked", checked)
print("\n".join(mismatches[:15]))
sys.exit(1 if mismatches else 0)
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_corrupted_pickles_fail_like_stdlib(seed, tmp_path):
    """Randomly corrupted pickles of random data: the same value or a compatible exception.

    Runs in a child interpreter under an address-space limit; the bytes being
    loaded when the child died are shown if it crashes.
    """
    last_case = tmp_path / "last_case.bin"
    code = _CORRUPTION_CHILD.replace("SEED", str(seed)).replace("CASES", "2500")
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code, str(last_case)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([TESTS_DIR, *sys.path])},
        check=False,
    )
    crashed = f"; last input: {last_case.read_bytes()!r}" if proc.returncode < 0 else ""
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}{crashed}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    )
    assert int(proc.stdout.split()[1]) > 1500
