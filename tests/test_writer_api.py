"""Pickler semantics of anypickle's writer, compared with the stdlib's C pickler.

Covers the module-level API (protocols, arguments, errors), the Pickler hooks
(``persistent_id``, ``reducer_override``, ``dispatch_table``), the memo
(``clear_memo``, ``memo`` proxy, reuse across dumps), ``fast`` mode, and the
robustness requirements: 100,000-deep nesting, the ``MAX_DEPTH`` limit,
reducers that mutate what is being pickled, and leaks.  Everything that could
crash the interpreter runs in a child interpreter (``run_python``).
"""

from __future__ import annotations

import collections
import copyreg
import decimal
import gc
import io
import marshal
import pickle
import sys
import threading
import types
import weakref

import anypickle
import anypickle._core
import corpus
import pytest
from conftest import (
    PROTOCOLS,
    assert_clean_exit,
    assert_same_pickle,
    run_python,
)

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def describe(obj):
    """A comparable description of an object handed to a hook."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return (type(obj).__name__, repr(obj)[:60])
    if isinstance(obj, type):
        return ("class", obj.__qualname__)
    return type(obj).__name__


def outcome(make_pickler, obj):
    """("ok", bytes) or ("error", exception class) of dumping ``obj`` to a BytesIO."""
    buf = io.BytesIO()
    try:
        make_pickler(buf).dump(obj)
    except anypickle.PicklingTypeError:
        return ("error", TypeError)  # the stdlib's TypeError, with a path added
    except Exception as exc:
        return ("error", type(exc))
    return ("ok", buf.getvalue())


def assert_same_outcome(ours, theirs):
    if ours[0] == theirs[0] == "ok":
        assert_same_pickle(ours[1], theirs[1])
    else:
        assert ours == theirs


def subclass_pair(name, namespace):
    """The same Pickler subclass, once over anypickle.Pickler, once over pickle.Pickler."""
    ours = type(f"Any{name}", (anypickle.Pickler,), dict(namespace))
    theirs = type(f"Std{name}", (pickle.Pickler,), dict(namespace))
    return ours, theirs


def hook_sample():
    """Objects of many kinds, with sharing, for the hook tests."""
    shared = [1, "two"]
    return [
        None,
        True,
        False,
        0,
        7,
        -(2**70),
        1.5,
        "text",
        b"bytes",
        bytearray(b"ba"),
        (1, (2,)),
        shared,
        shared,
        {"k": shared, 3: 4},
        {5, 6},
        frozenset({7}),
        corpus.Plain(a=8),
        corpus.Reduce3("r"),
        corpus.GetSetState(1, 2),
        len,
        corpus.Plain,
        int,
        1j,
        corpus.Color.RED,
        decimal.Decimal("1.5"),
        Ellipsis,
        NotImplemented,
        type(None),
    ]


# --------------------------------------------------------------------------------------
# Module-level API
# --------------------------------------------------------------------------------------


def test_protocol_constants():
    assert anypickle.DEFAULT_PROTOCOL == 5
    assert anypickle.HIGHEST_PROTOCOL == 5
    assert anypickle.HIGHEST_PROTOCOL == pickle.HIGHEST_PROTOCOL


def test_exception_classes_are_the_stdlib_ones():
    assert anypickle.PicklingError is pickle.PicklingError
    assert anypickle.PickleError is pickle.PickleError
    assert anypickle.UnpicklingError is pickle.UnpicklingError
    assert anypickle.PickleBuffer is pickle.PickleBuffer


def test_max_depth_allows_100k_levels():
    assert isinstance(anypickle._core.MAX_DEPTH, int)
    assert anypickle._core.MAX_DEPTH >= 100_000


def test_core_exports_the_writer():
    assert anypickle.dumps is anypickle._core.dumps
    assert anypickle.dump is anypickle._core.dump
    # A thin Python subclass gives Pickler a pickle-like __init__.
    assert issubclass(anypickle.Pickler, anypickle._core.Pickler)


def test_dumps_returns_bytes():
    for protocol in PROTOCOLS:
        assert type(anypickle.dumps([1, "a"], protocol)) is bytes


@pytest.mark.parametrize("protocol", [6, 7, 100, 2**31 - 1])
def test_protocol_above_highest_is_value_error(protocol):
    with pytest.raises(ValueError):
        pickle.dumps(1, protocol)  # the stdlib agrees
    with pytest.raises(ValueError):
        anypickle.dumps(1, protocol)
    with pytest.raises(ValueError):
        anypickle.dump(1, io.BytesIO(), protocol)
    with pytest.raises(ValueError):
        anypickle.Pickler(io.BytesIO(), protocol)
    with pytest.raises(ValueError):
        anypickle.dumps(1, protocol, deterministic=False)


@pytest.mark.parametrize("protocol", [-1, -2, -5, -6, -1000])
def test_negative_protocol_means_highest(protocol):
    obj = {"a": [1, 2.5], "b": (None, b"x")}
    expected = pickle.dumps(obj, 5)
    assert_same_pickle(anypickle.dumps(obj, protocol), expected)
    buf = io.BytesIO()
    anypickle.Pickler(buf, protocol).dump(obj)
    assert_same_pickle(buf.getvalue(), expected)


@pytest.mark.parametrize("protocol", [True, False])
def test_bool_protocol_is_an_int(protocol):
    assert_same_pickle(anypickle.dumps([1], protocol), pickle.dumps([1], protocol))


@pytest.mark.parametrize("protocol", ["2", 2.0, [], 2**100, -(2**100)], ids=repr)
def test_bad_protocol_type_raises_like_stdlib(protocol):
    with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
        pickle.dumps(1, protocol)
    for call in (
        lambda: anypickle.dumps(1, protocol),
        lambda: anypickle.dump(1, io.BytesIO(), protocol),
        lambda: anypickle.Pickler(io.BytesIO(), protocol),
    ):
        with pytest.raises(theirs.type):
            call()


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        pickle.dumps(1, 2, True)
    with pytest.raises(TypeError):
        anypickle.dumps(1, 2, True)
    with pytest.raises(TypeError):
        anypickle.dump(1, io.BytesIO(), 2, True)
    with pytest.raises(TypeError):
        anypickle.Pickler(io.BytesIO(), 2, True)


def test_keyword_arguments():
    obj = [1, (2, "three")]
    expected = pickle.dumps(obj, 2)
    assert_same_pickle(anypickle.dumps(obj, protocol=2), expected)
    buf = io.BytesIO()
    anypickle.dump(obj, file=buf, protocol=2)
    assert_same_pickle(buf.getvalue(), expected)
    buf = io.BytesIO()
    anypickle.Pickler(file=buf, protocol=2, fix_imports=True, deterministic=True).dump(obj)
    assert_same_pickle(buf.getvalue(), expected)


def test_unknown_keyword_is_type_error():
    with pytest.raises(TypeError):
        anypickle.dumps(1, 5, no_such_option=True)
    with pytest.raises(TypeError):
        anypickle.Pickler(io.BytesIO(), 5, no_such_option=True)


class NoWrite:
    pass


class WriteProperty:
    @property
    def write(self):
        raise LookupError("no write for you")


class FailingWriter:
    def write(self, data):
        raise OSError("disk full")


def test_file_without_write_is_type_error():
    with pytest.raises(TypeError):
        pickle.Pickler(NoWrite())
    with pytest.raises(TypeError):
        anypickle.Pickler(NoWrite())
    with pytest.raises(TypeError):
        anypickle.dump(1, NoWrite())
    with pytest.raises(TypeError):
        anypickle.dump(1, "not a file")


def test_file_write_property_error_propagates():
    with pytest.raises(LookupError):
        pickle.Pickler(WriteProperty())
    with pytest.raises(LookupError):
        anypickle.Pickler(WriteProperty())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_write_errors_propagate(protocol):
    for obj in ([1, 2], b"x" * 200_000):
        with pytest.raises(OSError):
            pickle.dump(obj, FailingWriter(), protocol)
        with pytest.raises(OSError):
            anypickle.dump(obj, FailingWriter(), protocol)
        with pytest.raises(OSError):
            anypickle.Pickler(FailingWriter(), protocol).dump(obj)


def test_dump_to_text_file_is_type_error(tmp_path):
    with open(tmp_path / "f.txt", "w") as text_file:
        with pytest.raises(TypeError):
            anypickle.dump(1, text_file)


def test_dump_to_real_file(tmp_path):
    obj = {"x": list(range(3000)), "y": b"z" * 100_000}
    path = tmp_path / "data.pkl"
    with open(path, "wb") as f:
        anypickle.dump(obj, f, 4)
    assert_same_pickle(path.read_bytes(), pickle.dumps(obj, 4))
    with open(path, "rb") as f:
        assert pickle.load(f) == obj


@pytest.mark.parametrize("protocol", range(0, 5))
def test_buffer_callback_needs_protocol_5(protocol):
    with pytest.raises(ValueError):
        pickle.dumps(1, protocol, buffer_callback=list().append)
    with pytest.raises(ValueError):
        anypickle.dumps(1, protocol, buffer_callback=list().append)
    with pytest.raises(ValueError):
        anypickle.dump(1, io.BytesIO(), protocol, buffer_callback=list().append)
    with pytest.raises(ValueError):
        anypickle.Pickler(io.BytesIO(), protocol, buffer_callback=list().append)


@pytest.mark.parametrize("protocol", range(0, 5))
def test_picklebuffer_needs_protocol_5(protocol):
    for obj in (pickle.PickleBuffer(b"abc"), [1, pickle.PickleBuffer(bytearray(b"x"))]):
        with pytest.raises(pickle.PicklingError):
            anypickle.dumps(obj, protocol)
        with pytest.raises(pickle.PicklingError):
            anypickle.Pickler(io.BytesIO(), protocol).dump(obj)


def test_non_contiguous_picklebuffer_raises_like_stdlib():
    view = memoryview(b"abcdefgh")[::2]
    buf = pickle.PickleBuffer(view)
    try:
        with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
            pickle.dumps(buf, 5)
        with pytest.raises(theirs.type):
            anypickle.dumps(buf, 5)
        with pytest.raises(theirs.type):
            anypickle.dumps(buf, 5, buffer_callback=list().append)
    finally:
        theirs = None
        buf.release()
        view.release()


def test_buffer_callback_errors_propagate():
    def callback(buf):
        raise corpus.CustomError(1, "callback failed")

    with pytest.raises(corpus.CustomError):
        anypickle.dumps(pickle.PickleBuffer(b"abc"), 5, buffer_callback=callback)
    with pytest.raises(corpus.CustomError):
        anypickle.Pickler(io.BytesIO(), 5, buffer_callback=callback).dump(
            [pickle.PickleBuffer(b"abc")]
        )


def test_non_callable_buffer_callback_raises_like_stdlib():
    with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
        pickle.dumps(pickle.PickleBuffer(b"x"), 5, buffer_callback=42)
    with pytest.raises(theirs.type):
        anypickle.dumps(pickle.PickleBuffer(b"x"), 5, buffer_callback=42)
    # Not called at all when there is no buffer to hand out.
    assert_same_pickle(anypickle.dumps([1], 5, buffer_callback=42), pickle.dumps([1], 5))


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(threading.Lock, id="lock"),
        pytest.param(threading.RLock, id="rlock"),
        pytest.param(lambda: (i for i in range(3)), id="generator"),
        pytest.param(lambda: iter(corpus.module_generator()), id="module-generator"),
        pytest.param(lambda: [1, {"deep": [threading.Lock()]}], id="nested-lock"),
    ],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unpicklable_objects_raise_like_stdlib(make, protocol):
    obj = make()
    with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
        pickle.dumps(obj, protocol)
    with pytest.raises(theirs.type):
        anypickle.dumps(obj, protocol)
    with pytest.raises(theirs.type):
        anypickle.dumps(obj, protocol, deterministic=False)
    with pytest.raises(theirs.type):
        anypickle.Pickler(io.BytesIO(), protocol).dump(obj)


@pytest.mark.parametrize(
    "cls",
    [
        corpus.BadReduceNotTuple,
        corpus.BadReduceList,
        corpus.BadReduceTooShort,
        corpus.BadReduceTooLong,
        corpus.BadReduceNotCallable,
        corpus.BadReduceArgsNotTuple,
        corpus.ReduceToMissingGlobal,
    ],
    ids=lambda cls: cls.__name__,
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_reduce_results_are_pickling_errors(cls, protocol):
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(cls(), protocol)
    with pytest.raises(pickle.PicklingError):
        anypickle.dumps(cls(), protocol)
    with pytest.raises(pickle.PicklingError):
        anypickle.dumps([1, cls()], protocol, deterministic=False)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exceptions_from_reduce_and_getstate_propagate(protocol):
    with pytest.raises(ValueError, match="refusing to be pickled"):
        anypickle.dumps([corpus.ReduceRaises()], protocol)
    with pytest.raises(LookupError, match="no state for you"):
        anypickle.dumps({"k": corpus.GetStateRaises()}, protocol)


class ReduceExNone:
    def __reduce_ex__(self, protocol):
        return None


class ReduceNone:
    def __reduce__(self):
        return None


@pytest.mark.parametrize("cls", [ReduceExNone, ReduceNone], ids=lambda c: c.__name__)
def test_reduce_returning_none_raises_like_stdlib(cls):
    for protocol in PROTOCOLS:
        with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
            pickle.dumps(cls(), protocol)
        with pytest.raises(theirs.type):
            anypickle.dumps(cls(), protocol)


# --------------------------------------------------------------------------------------
# persistent_id
# --------------------------------------------------------------------------------------


_FILES = {}  # id(pickler) -> (pickler, file): the stdlib's Pickler has no __dict__


def make_pickler(cls, protocol, **kwargs):
    """A pickler of class ``cls`` on a fresh BytesIO; subclass instances get a ``.calls`` list."""
    buf = io.BytesIO()
    pickler = cls(buf, protocol, **kwargs)
    _FILES[id(pickler)] = (pickler, buf)
    try:
        pickler.calls = []
    except AttributeError:
        pass
    return pickler


def written(pickler):
    return _FILES[id(pickler)][1].getvalue()


@pytest.fixture(autouse=True)
def _forget_files():
    yield
    _FILES.clear()


def _even_ints_are_persistent(self, obj):
    self.calls.append(describe(obj))
    if type(obj) is int and obj % 2 == 0:
        return f"even:{obj}"
    return None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_persistent_id_on_subclass(protocol):
    ours_cls, theirs_cls = subclass_pair("Pid", {"persistent_id": _even_ints_are_persistent})
    obj = hook_sample()
    ours, theirs = make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)
    ours.dump(obj)
    theirs.dump(obj)
    assert_same_pickle(written(ours), written(theirs))
    # Called for the same objects in the same order, atoms included.
    assert ours.calls == theirs.calls
    assert ("int", "0") in ours.calls
    assert ("NoneType", "None") in ours.calls


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_persistent_id_returning_none_falls_through(protocol):
    def never(self, obj):
        self.calls.append(describe(obj))
        return None

    ours_cls, _ = subclass_pair("PidNone", {"persistent_id": never})
    obj = hook_sample()
    ours = make_pickler(ours_cls, protocol)
    ours.dump(obj)
    assert ours.calls, "persistent_id was never called"
    assert_same_pickle(written(ours), pickle.dumps(obj, protocol))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_persistent_id_falsy_but_not_none_is_persistent(protocol):
    def falsy(self, obj):
        if obj == "empty-pid":
            return ""
        if obj == "zero-pid" and protocol > 0:
            return 0
        return None

    ours_cls, theirs_cls = subclass_pair("PidFalsy", {"persistent_id": falsy})
    obj = ["empty-pid", "zero-pid", "plain"]
    assert_same_outcome(
        outcome(lambda f: ours_cls(f, protocol), obj),
        outcome(lambda f: theirs_cls(f, protocol), obj),
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "pid",
    [("tuple", 1), 42, b"bytes-pid", "non-ascii-\xe9", "line\nbreak", corpus.Plain(p=1)],
    ids=["tuple", "int", "bytes", "non-ascii-str", "newline-str", "instance"],
)
def test_persistent_id_values_like_stdlib(protocol, pid):
    """Non-string or non-ASCII ids: refused at protocol 0, pickled as objects from 1 on."""

    def persistent_id(self, obj):
        return pid if obj == "persist-me" else None

    ours_cls, theirs_cls = subclass_pair("PidValues", {"persistent_id": persistent_id})
    obj = ["persist-me", 1, "other"]
    assert_same_outcome(
        outcome(lambda f: ours_cls(f, protocol), obj),
        outcome(lambda f: theirs_cls(f, protocol), obj),
    )


def test_persistent_id_errors_propagate():
    def failing(self, obj):
        if obj == "boom":
            raise corpus.CustomError(3, "persistent_id failed")
        return None

    ours_cls, _ = subclass_pair("PidFail", {"persistent_id": failing})
    for protocol in PROTOCOLS:
        with pytest.raises(corpus.CustomError):
            ours_cls(io.BytesIO(), protocol).dump([1, ["boom"]])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_persistent_id_as_instance_attribute_of_subclass(protocol):
    ours_cls, theirs_cls = subclass_pair("PidInstance", {})
    obj = hook_sample()
    picklers = [make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)]
    for pickler in picklers:
        calls = pickler.calls

        def persistent_id(obj, calls=calls):
            calls.append(describe(obj))
            return "pid-for-str" if isinstance(obj, str) else None

        pickler.persistent_id = persistent_id
        pickler.dump(obj)
    ours, theirs = picklers
    assert_same_pickle(written(ours), written(theirs))
    assert ours.calls == theirs.calls


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_persistent_id_set_after_a_dump(protocol):
    ours_cls, theirs_cls = subclass_pair("PidLater", {})
    picklers = [make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)]
    for pickler in picklers:
        pickler.dump([1, 2, "x"])
        pickler.persistent_id = lambda obj: "two" if obj == 2 else None
        pickler.dump([1, 2, "x"])
        pickler.persistent_id = lambda obj: "x" if obj == "x" else None
        pickler.clear_memo()
        pickler.dump([1, 2, "x"])
    assert_same_pickle(written(picklers[0]), written(picklers[1]))


def test_persistent_id_as_instance_attribute_of_base_class():
    """3.10-3.12 accept it on a plain Pickler (3.13 made it a read-only method).

    Where the stdlib accepts it, anypickle must honour it the same way; where
    the stdlib refuses, anypickle may refuse (AttributeError) or honour it,
    but never accept and ignore it.
    """
    obj = [1, 2, "three"]

    def pid(o):
        return "p" if o == 2 else None

    expected = io.BytesIO()
    theirs = pickle.Pickler(expected, 2)
    try:
        theirs.persistent_id = pid
    except AttributeError:
        stdlib_accepts = False
        reference = type("StdPid", (pickle.Pickler,), {"persistent_id": staticmethod(pid)})
        reference(expected, 2).dump(obj)
    else:
        stdlib_accepts = True
        theirs.dump(obj)

    buf = io.BytesIO()
    ours = anypickle.Pickler(buf, 2)
    try:
        ours.persistent_id = pid
    except AttributeError:
        assert not stdlib_accepts, "the stdlib accepts persistent_id as an instance attribute"
        return
    ours.dump(obj)
    assert_same_pickle(buf.getvalue(), expected.getvalue())


@pytest.mark.parametrize("kind", ["classmethod", "staticmethod"])
def test_persistent_id_as_classmethod_or_staticmethod(kind):
    def pid(obj):
        return "tagged" if obj == "tag-me" else None

    if kind == "classmethod":
        namespace = {"persistent_id": classmethod(lambda cls, obj: pid(obj))}
    else:
        namespace = {"persistent_id": staticmethod(pid)}
    ours_cls, theirs_cls = subclass_pair(f"Pid{kind}", namespace)
    for protocol in PROTOCOLS:
        obj = ["tag-me", "keep-me"]
        assert_same_outcome(
            outcome(lambda f, p=protocol: ours_cls(f, p), obj),
            outcome(lambda f, p=protocol: theirs_cls(f, p), obj),
        )


# --------------------------------------------------------------------------------------
# reducer_override
# --------------------------------------------------------------------------------------

_ATOMIC_OR_BUILTIN_CONTAINER = {
    "NoneType",
    "bool",
    "int",
    "float",
    "str",
    "bytes",
    "bytearray",
    "list",
    "tuple",
    "dict",
    "set",
    "frozenset",
    "PickleBuffer",
}


def _recording_reducer_override(self, obj):
    self.calls.append(describe(obj))
    return NotImplemented


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reducer_override_is_called_like_stdlib(protocol):
    """Called for non-atomic objects only, in the stdlib's order; NotImplemented falls back."""
    ours_cls, theirs_cls = subclass_pair(
        "RoRecord", {"reducer_override": _recording_reducer_override}
    )
    obj = hook_sample()
    if protocol == 5:
        obj.append(pickle.PickleBuffer(b"buffer"))
    ours, theirs = make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)
    ours.dump(obj)
    theirs.dump(obj)
    assert_same_pickle(written(ours), written(theirs))
    assert_same_pickle(written(ours), pickle.dumps(obj, protocol))
    assert ours.calls == theirs.calls
    called_types = {c[0] if isinstance(c, tuple) else c for c in ours.calls}
    assert not called_types & _ATOMIC_OR_BUILTIN_CONTAINER, called_types
    assert "Plain" in called_types
    assert ("class", "Plain") in ours.calls


def _replace_plain_instances(self, obj):
    self.calls.append(describe(obj))
    if isinstance(obj, corpus.Plain):
        return (str, (f"replaced-{sorted(vars(obj))}",))
    if isinstance(obj, corpus.ReducesToString):
        return corpus.SINGLETON_NAME  # a string: saved as a global of the object's module
    return NotImplemented


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reducer_override_replacing_objects(protocol):
    ours_cls, theirs_cls = subclass_pair(
        "RoReplace", {"reducer_override": _replace_plain_instances}
    )
    shared = corpus.Plain(s=1)
    obj = [shared, shared, corpus.Plain(t=2), corpus.REDUCES_TO_STRING, {"k": shared}]
    ours, theirs = make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)
    ours.dump(obj)
    theirs.dump(obj)
    assert_same_pickle(written(ours), written(theirs))
    assert ours.calls == theirs.calls
    loaded = pickle.loads(written(ours))
    assert loaded[0] == "replaced-['s']"
    assert loaded[0] is loaded[1]
    assert loaded[3] is corpus.REDUCES_TO_STRING


@pytest.mark.parametrize(
    "bad", [False, 42, (), (len,), [len, ()], (len, (), None, None, None, None, None)]
)
def test_reducer_override_bad_results_are_pickling_errors(bad):
    def reducer_override(self, obj):
        return bad if isinstance(obj, corpus.Plain) else NotImplemented

    ours_cls, theirs_cls = subclass_pair("RoBad", {"reducer_override": reducer_override})
    for protocol in PROTOCOLS:
        with pytest.raises(pickle.PicklingError):
            theirs_cls(io.BytesIO(), protocol).dump([corpus.Plain()])
        with pytest.raises(pickle.PicklingError):
            ours_cls(io.BytesIO(), protocol).dump([corpus.Plain()])


def test_reducer_override_errors_propagate():
    def reducer_override(self, obj):
        if isinstance(obj, corpus.Plain):
            raise corpus.CustomError(7, "reducer failed")
        return NotImplemented

    ours_cls, _ = subclass_pair("RoRaise", {"reducer_override": reducer_override})
    for protocol in PROTOCOLS:
        with pytest.raises(corpus.CustomError, match="reducer failed"):
            ours_cls(io.BytesIO(), protocol).dump({"a": [corpus.Plain()]})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reducer_override_as_instance_attribute_of_subclass(protocol):
    ours_cls, theirs_cls = subclass_pair("RoInstance", {})
    picklers = [make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)]
    obj = hook_sample()
    for pickler in picklers:
        pickler.dump(obj)  # before the hook exists
        calls = pickler.calls

        def reducer_override(o, calls=calls):
            calls.append(describe(o))
            return (str, ("plain!",)) if isinstance(o, corpus.Plain) else NotImplemented

        pickler.reducer_override = reducer_override
        pickler.clear_memo()
        pickler.dump(obj)
    ours, theirs = picklers
    assert_same_pickle(written(ours), written(theirs))
    assert ours.calls == theirs.calls
    assert ours.calls


def test_reducer_override_as_instance_attribute_of_base_class():
    """The stdlib's C Pickler has no __dict__: setting the attribute fails there."""
    theirs = pickle.Pickler(io.BytesIO(), 2)
    with pytest.raises(AttributeError):
        theirs.reducer_override = lambda obj: NotImplemented
    buf = io.BytesIO()
    ours = anypickle.Pickler(buf, 2)
    try:
        ours.reducer_override = lambda obj: (str, ("x",)) if obj is corpus.Plain else NotImplemented
    except AttributeError:
        return
    ours.dump([corpus.Plain])  # if accepted, it must be honoured
    assert pickle.loads(buf.getvalue()) == ["x"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hook_precedence_like_stdlib(protocol):
    """persistent_id, reducer_override, dispatch_table and copyreg: same order, same result."""

    def persistent_id(self, obj):
        self.calls.append(("pid", describe(obj)))
        return "pid-7" if obj == 7 else None

    def reducer_override(self, obj):
        self.calls.append(("ro", describe(obj)))
        if isinstance(obj, corpus.Reduce3):
            return (str, ("ro-wins",))
        return NotImplemented

    def table_reducer(obj):
        return (str, ("dispatch-table",))

    namespace = {
        "persistent_id": persistent_id,
        "reducer_override": reducer_override,
        "dispatch_table": {
            corpus.Reduce3: table_reducer,
            corpus.Registered: table_reducer,
            complex: table_reducer,
            list: table_reducer,
            int: table_reducer,
        },
    }
    ours_cls, theirs_cls = subclass_pair("Precedence", namespace)
    obj = [7, 8, corpus.Reduce3(1), corpus.Registered(2), 3j, [4], corpus.Plain(z=5)]
    ours, theirs = make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)
    ours.dump(obj)
    theirs.dump(obj)
    assert_same_pickle(written(ours), written(theirs))
    assert ours.calls == theirs.calls


# --- by-value pickling of functions and classes (the cloudpickle use case) ----------


def rebuild_function(code_bytes, name, defaults, closure_values):
    cells = tuple(types.CellType(v) for v in closure_values) if closure_values else None
    return types.FunctionType(marshal.loads(code_bytes), globals(), name, defaults, cells)


def _is_local(obj):
    return "<locals>" in getattr(obj, "__qualname__", "")


def _by_value_reducer_override(self, obj):
    if isinstance(obj, types.FunctionType) and _is_local(obj):
        closure = tuple(c.cell_contents for c in obj.__closure__ or ())
        return (
            rebuild_function,
            (marshal.dumps(obj.__code__), obj.__name__, obj.__defaults__, closure),
        )
    if isinstance(obj, type) and _is_local(obj):
        attrs = {k: v for k, v in vars(obj).items() if k not in ("__dict__", "__weakref__")}
        return (type, (obj.__name__, obj.__bases__, attrs))
    return NotImplemented


def _local_things():
    factor = 3

    def scale(x, offset=1):
        return x * factor + offset

    class Local(corpus.Plain):
        kind = "local"

        def triple(self):
            return scale(self.value, 0)

    return scale, Local, Local(value=5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reducer_override_pickles_local_functions_and_classes_by_value(protocol):
    ours_cls, theirs_cls = subclass_pair(
        "ByValue", {"reducer_override": _by_value_reducer_override}
    )
    scale, local_cls, instance = _local_things()
    obj = [scale, local_cls, instance, scale]
    # The first pickling of an instance caches __slotnames__ on its class: warm up.
    theirs_cls(io.BytesIO(), protocol).dump(obj)
    ours, theirs = make_pickler(ours_cls, protocol), make_pickler(theirs_cls, protocol)
    ours.dump(obj)
    theirs.dump(obj)
    assert_same_pickle(written(ours), written(theirs))
    new_scale, new_cls, new_instance, again = pickle.loads(written(ours))
    assert again is new_scale
    assert new_scale(2) == 7
    assert new_scale(2, offset=0) == 6
    assert type(new_instance) is new_cls
    assert new_cls.kind == "local"
    assert new_instance.triple() == 15


def test_cloudpickle_reducer_override_on_anypickle():
    """cloudpickle's own hooks, borrowed onto an anypickle.Pickler subclass."""
    cloudpickle = pytest.importorskip("cloudpickle")
    base = cloudpickle.Pickler
    names = ["reducer_override", "_function_reduce", "_dynamic_function_reduce"]
    names += ["_function_getnewargs"]
    if not all(hasattr(base, name) for name in names) or not hasattr(base, "dispatch_table"):
        pytest.skip("this cloudpickle version has different Pickler internals")

    def __init__(self, file, protocol=None, buffer_callback=None):
        protocol = anypickle.DEFAULT_PROTOCOL if protocol is None else protocol
        anypickle.Pickler.__init__(self, file, protocol, buffer_callback=buffer_callback)
        self.globals_ref = {}
        self.proto = int(protocol)

    namespace = {name: vars(base)[name] for name in names if name in vars(base)}
    namespace.update(__init__=__init__, dispatch_table=base.dispatch_table)
    any_cloud = type("AnyCloudPickler", (anypickle.Pickler,), namespace)

    scale, local_cls, instance = _local_things()
    obj = {"f": scale, "cls": local_cls, "inst": instance, "lambda": lambda y: y + 1}
    cloudpickle.dumps(obj)  # caches __slotnames__ on the local class
    for protocol in PROTOCOLS:
        buf = io.BytesIO()
        any_cloud(buf, protocol).dump(obj)
        assert_same_pickle(
            buf.getvalue(), cloudpickle.dumps(obj, protocol=protocol), "cloudpickle hooks"
        )
        loaded = pickle.loads(buf.getvalue())
        assert loaded["f"](2) == 7
        assert loaded["inst"].triple() == 15
        assert loaded["lambda"](1) == 2


# --------------------------------------------------------------------------------------
# dispatch_table
# --------------------------------------------------------------------------------------


def _reduce_to_tag(obj):
    return (str, (f"table:{type(obj).__name__}",))


_TABLE = {
    corpus.Plain: _reduce_to_tag,
    complex: _reduce_to_tag,
    decimal.Decimal: _reduce_to_tag,
    list: _reduce_to_tag,
    dict: _reduce_to_tag,
    int: _reduce_to_tag,
    str: _reduce_to_tag,
}


def _table_sample():
    return [corpus.Plain(a=1), 2j, decimal.Decimal("3"), [4], {"five": 5}, 6, "seven"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dispatch_table_class_attribute(protocol):
    ours_cls, theirs_cls = subclass_pair("TableClass", {"dispatch_table": dict(_TABLE)})
    obj = _table_sample()
    assert_same_outcome(
        outcome(lambda f: ours_cls(f, protocol), obj),
        outcome(lambda f: theirs_cls(f, protocol), obj),
    )
    loaded = pickle.loads(outcome(lambda f: ours_cls(f, protocol), obj)[1])
    assert loaded[0] == "table:Plain"
    assert loaded[1] == "table:complex"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("on", ["base", "subclass"])
def test_dispatch_table_instance_attribute_after_construction(protocol, on):
    ours_cls, theirs_cls = (
        (anypickle.Pickler, pickle.Pickler) if on == "base" else subclass_pair("TableInst", {})
    )
    obj = _table_sample()
    files = []
    for cls in (ours_cls, theirs_cls):
        buf = io.BytesIO()
        files.append(buf)
        pickler = cls(buf, protocol)
        pickler.dump(obj)  # without a table
        pickler.dispatch_table = dict(_TABLE)
        assert pickler.dispatch_table == _TABLE
        pickler.clear_memo()
        pickler.dump(obj)
    assert_same_pickle(files[0].getvalue(), files[1].getvalue())


class LookupOnlyTable:
    """A minimal mapping: only __getitem__, raising KeyError for unknown types."""

    def __init__(self, table):
        self.table = table
        self.lookups = []

    def __getitem__(self, key):
        self.lookups.append(key.__qualname__)
        return self.table[key]


def _with_table(pickler, table):
    pickler.dispatch_table = table
    return pickler


def _same_outcome_with_table(protocol, make_table, obj):
    ours_table, theirs_table = make_table(), make_table()
    assert_same_outcome(
        outcome(lambda f: _with_table(anypickle.Pickler(f, protocol), ours_table), obj),
        outcome(lambda f: _with_table(pickle.Pickler(f, protocol), theirs_table), obj),
    )
    return ours_table, theirs_table


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dispatch_table_mapping_types(protocol):
    obj = _table_sample()
    _same_outcome_with_table(protocol, lambda: collections.ChainMap({}, dict(_TABLE)), obj)
    _same_outcome_with_table(
        protocol, lambda: collections.ChainMap({}, copyreg.dispatch_table), obj
    )
    ours, theirs = _same_outcome_with_table(protocol, lambda: LookupOnlyTable(dict(_TABLE)), obj)
    assert ours.lookups == theirs.lookups


@pytest.mark.parametrize(
    "entry",
    [None, 42, lambda obj: 42, lambda obj: (corpus.Plain,)],
    ids=["none", "int", "returns-int", "returns-1-tuple"],
)
def test_dispatch_table_bad_entries_like_stdlib(entry):
    for protocol in PROTOCOLS:
        _same_outcome_with_table(protocol, lambda: {corpus.Plain: entry}, [corpus.Plain()])


@pytest.mark.parametrize("table", [42, [1, 2], "table"], ids=repr)
def test_dispatch_table_not_a_mapping_like_stdlib(table):
    for protocol in PROTOCOLS:
        _same_outcome_with_table(protocol, lambda: table, [corpus.Plain()])


class CopyregOnly:
    def __init__(self, v):
        self.v = v


def _reduce_copyreg_only(obj):
    return (CopyregOnly, (obj.v * 2,))


def test_copyreg_dispatch_table_is_honoured():
    assert CopyregOnly not in copyreg.dispatch_table
    copyreg.pickle(CopyregOnly, _reduce_copyreg_only)
    try:
        for protocol in PROTOCOLS:
            obj = [CopyregOnly(21)]
            assert_same_pickle(anypickle.dumps(obj, protocol), pickle.dumps(obj, protocol))
            assert pickle.loads(anypickle.dumps(obj, protocol))[0].v == 42
            # A Pickler's own dispatch_table replaces copyreg's entirely.
            buf = io.BytesIO()
            _with_table(anypickle.Pickler(buf, protocol), {}).dump(obj)
            assert pickle.loads(buf.getvalue())[0].v == 21
    finally:
        del copyreg.dispatch_table[CopyregOnly]
    # And the registration is no longer used once removed (no stale cache).
    assert pickle.loads(anypickle.dumps([CopyregOnly(21)], 5))[0].v == 21


# --------------------------------------------------------------------------------------
# Memo
# --------------------------------------------------------------------------------------


def _memo_sequence():
    shared = ["shared", [1, 2]]
    inst = corpus.Plain(x=shared)
    return [
        shared,
        [shared, inst],
        "clear",
        inst,
        {"again": shared, "inst": inst},
        "clear",
        "clear",
        (shared, shared),
        corpus.Plain,
        [corpus.Plain, inst],
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("how", ["clear_memo", "memo.clear"])
def test_memo_is_kept_across_dumps_like_stdlib(protocol, how):
    ours, theirs = make_pickler(anypickle.Pickler, protocol), make_pickler(pickle.Pickler, protocol)
    for step in _memo_sequence():
        for pickler in (ours, theirs):
            if step == "clear":
                pickler.clear_memo() if how == "clear_memo" else pickler.memo.clear()
            else:
                pickler.dump(step)
        assert_same_pickle(written(ours), written(theirs), f"stream after dumping {step!r:.60}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_memo_copy_matches_stdlib(protocol):
    ours, theirs = anypickle.Pickler(io.BytesIO(), protocol), pickle.Pickler(io.BytesIO(), protocol)
    assert ours.memo.copy() == {}
    for step in _memo_sequence():
        if step == "clear":
            continue
        ours.dump(step)
        theirs.dump(step)
        ours_memo, theirs_memo = ours.memo.copy(), theirs.memo.copy()
        assert type(ours_memo) is dict
        for key, (_, obj) in ours_memo.items():
            assert key == id(obj)
        ours_by_index = {index: obj for index, obj in ours_memo.values()}
        theirs_by_index = {index: obj for index, obj in theirs_memo.values()}
        assert sorted(ours_by_index) == sorted(theirs_by_index)
        for index, obj in theirs_by_index.items():
            mine = ours_by_index[index]
            if mine is not obj:
                # Temporaries made while pickling (reduce arguments): equal, not identical.
                assert type(mine) is type(obj)
                assert mine == obj


def test_memo_copy_is_a_snapshot():
    pickler = anypickle.Pickler(io.BytesIO(), 4)
    data = ["a", ["b"]]
    pickler.dump(data)
    snapshot = pickler.memo.copy()
    snapshot.clear()
    assert len(pickler.memo.copy()) > 0
    pickler.clear_memo()
    assert pickler.memo.copy() == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_memo_assigned_from_another_pickler(protocol):
    data = ["abcdefg", "abcdefg", [44], 44]
    results = []
    for cls in (anypickle.Pickler, pickle.Pickler):
        first = cls(io.BytesIO(), protocol)
        first.dump(data)
        buf = io.BytesIO()
        primed = cls(buf, protocol)
        primed.memo = first.memo
        primed.dump(data)
        primed.dump([data, "new"])
        results.append(buf.getvalue())
    assert_same_pickle(results[0], results[1])
    # The primed memo was used: the string is only referred to, never written.
    assert b"abcdefg" not in results[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_memo_assigned_from_a_dict(protocol):
    data = ["abcdefg", [1, 2]]
    results = []
    for cls in (anypickle.Pickler, pickle.Pickler):
        first = cls(io.BytesIO(), protocol)
        first.dump(data)
        as_dict = first.memo.copy()
        buf = io.BytesIO()
        primed = cls(buf, protocol)
        primed.memo = as_dict
        primed.dump(data)
        results.append(buf.getvalue())
    assert_same_pickle(results[0], results[1])


@pytest.mark.parametrize("value", [42, None, [1], {1: "x"}, {1: (0,)}, {1: (0, 1, 2)}], ids=repr)
def test_memo_bad_assignment_raises_like_stdlib(value):
    with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
        pickle.Pickler(io.BytesIO()).memo = value
    pickler = anypickle.Pickler(io.BytesIO())
    with pytest.raises(theirs.type):
        pickler.memo = value
    # Still usable afterwards.
    pickler.dump([1])


def test_memo_cannot_be_deleted():
    pickler = anypickle.Pickler(io.BytesIO())
    with pytest.raises((TypeError, AttributeError)):
        del pickler.memo
    pickler.dump([1])


def test_memo_keeps_objects_alive_until_cleared():
    """Like the stdlib: the memo holds its objects; clear_memo() and deletion release them."""
    obj = corpus.Plain(v=1)
    ref = weakref.ref(obj)
    pickler = anypickle.Pickler(io.BytesIO(), 5)
    pickler.dump([obj])
    del obj
    gc.collect()
    assert ref() is not None, "the memo dropped an object it still refers to by index"
    pickler.clear_memo()
    gc.collect()
    assert ref() is None, "clear_memo() did not release the memoized object"

    obj = corpus.Plain(v=2)
    ref = weakref.ref(obj)
    pickler.dump(obj)
    del obj, pickler
    gc.collect()
    assert ref() is None, "deleting the Pickler did not release its memo"


def test_dumps_does_not_keep_objects_alive():
    obj = corpus.Plain(v=[1, 2])
    ref = weakref.ref(obj)
    for protocol in PROTOCOLS:
        anypickle.dumps([obj, obj], protocol)
        anypickle.dumps([obj, obj], protocol, deterministic=False)
    del obj
    assert ref() is None, "dumps() kept a reference (no gc.collect(): plain refcounting)"


# --------------------------------------------------------------------------------------
# fast mode
# --------------------------------------------------------------------------------------


def test_fast_attribute():
    pickler = anypickle.Pickler(io.BytesIO())
    assert not pickler.fast
    pickler.fast = True
    assert pickler.fast
    pickler.fast = False
    assert not pickler.fast


def _nested(depth):
    x = [0]
    for i in range(depth):
        x = [i, x, {"k": (x,)}] if i % 10 == 0 else [x]
    return x


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fast_mode_matches_stdlib(protocol):
    shared = [1, "s"]
    obj = [shared, shared, {"a": shared}, ("t", shared), _nested(120), "str", "str"]
    results = []
    for cls in (anypickle.Pickler, pickle.Pickler):
        buf = io.BytesIO()
        pickler = cls(buf, protocol)
        pickler.fast = True
        pickler.dump(obj)
        assert pickler.memo.copy() == {}
        pickler.dump(obj)  # no memo either: written again in full
        pickler.fast = False
        pickler.dump(obj)
        results.append(buf.getvalue())
    assert_same_pickle(results[0], results[1])
    loaded = pickle.loads(results[0])
    assert loaded[0] == shared
    assert loaded[0] is not loaded[1]  # fast mode does not memoize


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fast_mode_cycles_raise_like_stdlib(protocol):
    cyclic = []
    cyclic.append(cyclic)
    cyclic_dict = {}
    cyclic_dict["me"] = [cyclic_dict]
    for obj in (cyclic, cyclic_dict):
        with pytest.raises(Exception) as theirs:  # noqa: B017 - compared below
            stdlib = pickle.Pickler(io.BytesIO(), protocol)
            stdlib.fast = True
            stdlib.dump(obj)
        ours = anypickle.Pickler(io.BytesIO(), protocol)
        ours.fast = True
        with pytest.raises(theirs.type):
            ours.dump(obj)


# --------------------------------------------------------------------------------------
# Subclassing
# --------------------------------------------------------------------------------------


def test_subclass_with_its_own_init_signature():
    """pickle.Pickler subclasses may take other arguments than (file, protocol)."""
    results = []
    for base in (anypickle.Pickler, pickle.Pickler):

        class Custom(base):
            def __init__(self, tag, file, *, verbose=False):
                self.tag = tag
                self.verbose = verbose
                super().__init__(file, 2)

        buf = io.BytesIO()
        pickler = Custom("my-tag", buf, verbose=True)
        assert pickler.tag == "my-tag"
        pickler.dump({"x": [1, 2]})
        results.append(buf.getvalue())
    assert_same_pickle(results[0], results[1])


def test_subclass_setting_hooks_before_super_init():
    results = []
    for base in (anypickle.Pickler, pickle.Pickler):

        class Early(base):
            def __init__(self, file, protocol):
                self.dispatch_table = {complex: _reduce_to_tag}
                super().__init__(file, protocol)

        buf = io.BytesIO()
        Early(buf, 3).dump([1j, 2])
        results.append(buf.getvalue())
    assert_same_pickle(results[0], results[1])
    assert pickle.loads(results[0]) == ["table:complex", 2]


def test_subclass_overriding_dump():
    class Counting(anypickle.Pickler):
        dumps_done = 0

        def dump(self, obj):
            type(self).dumps_done += 1
            return super().dump(["wrapped", obj])

    buf = io.BytesIO()
    Counting(buf, 4).dump({"k": 1})
    assert Counting.dumps_done == 1
    assert_same_pickle(buf.getvalue(), pickle.dumps(["wrapped", {"k": 1}], 4))


def test_pickler_with_hooks_is_garbage_collected():
    class SelfReferencing(anypickle.Pickler):
        def persistent_id(self, obj):
            return None

        def reducer_override(self, obj):
            return NotImplemented

    pickler = SelfReferencing(io.BytesIO(), 5)
    pickler.me = pickler
    pickler.dispatch_table = {corpus.Plain: lambda obj, p=pickler: (str, ("x",))}
    pickler.dump([corpus.Plain()])
    ref = weakref.ref(pickler)
    del pickler
    gc.collect()
    assert ref() is None


def test_pickler_without_cycles_is_freed_by_refcounting():
    class Plainly(anypickle.Pickler):
        def reducer_override(self, obj):
            return NotImplemented

    for cls in (anypickle.Pickler, Plainly):
        pickler = cls(io.BytesIO(), 5)
        pickler.dump([corpus.Plain()])
        try:
            ref = weakref.ref(pickler)
        except TypeError:
            pytest.skip("anypickle.Pickler does not support weak references")
        del pickler
        assert ref() is None, f"{cls.__name__} needs the cycle collector to be freed"


# --------------------------------------------------------------------------------------
# Reference counts (exact, in-process)
# --------------------------------------------------------------------------------------


def _refcounts(objs):
    return [sys.getrefcount(o) for o in objs]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_reference_leaks(protocol):
    inner = corpus.Plain(v=[1, 2])
    items = [inner, [inner, "x" * 50], {"k": inner}, (inner, [3]), bytearray(b"ab"), 2**100]
    tracked = [inner, items, items[1], items[2], items[3], items[4], items[5]]
    before = _refcounts(tracked)
    for _ in range(50):
        anypickle.dumps(items, protocol)
        anypickle.dumps(items, protocol, deterministic=False)
        pickler = anypickle.Pickler(io.BytesIO(), protocol)
        pickler.dump(items)
        pickler.memo.copy()
        pickler.clear_memo()
        del pickler
    assert _refcounts(tracked) == before


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_reference_leaks_on_errors(protocol):
    inner = corpus.Plain(v=[1, 2])
    bad = [inner, {"k": inner}, [1, corpus.ReduceRaises()]]
    tracked = [inner, bad, bad[1], bad[2]]
    before = _refcounts(tracked)
    for _ in range(50):
        try:
            anypickle.dumps(bad, protocol)
        except ValueError:
            pass
        try:
            anypickle.Pickler(io.BytesIO(), protocol).dump(bad)
        except ValueError:
            pass
    assert _refcounts(tracked) == before


def test_no_reference_leaks_through_hooks():
    inner = corpus.Plain(v=1)

    class Hooked(anypickle.Pickler):
        def persistent_id(self, obj):
            return "pid" if obj is inner else None

        def reducer_override(self, obj):
            return (str, ("ro",)) if isinstance(obj, corpus.Slotted) else NotImplemented

    slotted = corpus.Slotted(1)
    items = [inner, slotted, [inner]]
    tracked = [inner, slotted, items, items[2]]
    before = _refcounts(tracked)
    for protocol in PROTOCOLS:
        for _ in range(20):
            pickler = Hooked(io.BytesIO(), protocol)
            pickler.dispatch_table = {corpus.Plain: lambda obj: (str, ("dt",))}
            pickler.dump(items)
            del pickler
    assert _refcounts(tracked) == before


# --------------------------------------------------------------------------------------
# Odd Pickler lifecycles (child interpreter: these must not crash)
# --------------------------------------------------------------------------------------


def test_subclass_not_calling_init_does_not_crash():
    """The stdlib raises PicklingError from dump(); anypickle may instead refuse to construct.

    Either way: no crash, no output written, and every method fails cleanly.
    """
    rc, out, err = run_python(
        """
        import io, pickle, anypickle

        class NoInit(anypickle.Pickler):
            def __init__(self):
                pass

        try:
            pickler = NoInit()
        except TypeError as exc:
            print("CONSTRUCT", type(exc).__name__)
        else:
            print("CONSTRUCTED")
            try:
                pickler.dump(0)
            except Exception as exc:
                print("DUMP", type(exc).__name__)
            else:
                print("DUMP succeeded")
            for name, action in [
                ("clear_memo", lambda: pickler.clear_memo()),
                ("memo", lambda: pickler.memo.copy()),
                ("fast", lambda: pickler.fast),
                ("set-fast", lambda: setattr(pickler, "fast", True)),
                ("set-memo", lambda: setattr(pickler, "memo", {})),
                ("dump-again", lambda: pickler.dump([1, 2])),
            ]:
                try:
                    action()
                except Exception as exc:
                    print("ACTION", name, type(exc).__name__)
                else:
                    print("ACTION", name, "ok")
        print("DONE")
        """
    )
    assert_clean_exit(rc, out, err)
    assert "DONE" in out
    if "CONSTRUCTED" in out:
        assert "DUMP PicklingError" in out, out
        assert "DUMP succeeded" not in out
        assert "ACTION dump-again ok" not in out, out
    else:
        assert "CONSTRUCT TypeError" in out, out


LIFECYCLE_SCENARIOS = {
    "reinit-with-other-file-and-protocol": """
        buf1, buf2 = io.BytesIO(), io.BytesIO()
        p = anypickle.Pickler(buf1, 2)
        p.dump([1, "a"])
        p.__init__(buf2, 4)
        p.dump([1, "a"])
        print("WROTE", len(buf1.getvalue()), len(buf2.getvalue()))
    """,
    "memo-proxy-outlives-pickler": """
        p = anypickle.Pickler(io.BytesIO(), 5)
        p.dump(["x", ["y"]])
        proxy = p.memo
        del p
        gc.collect()
        print(len(proxy.copy()))
        proxy.clear()
        print(proxy.copy())
    """,
    "memo-proxy-assigned-to-itself-and-cross-assigned": """
        a, b = anypickle.Pickler(io.BytesIO(), 5), anypickle.Pickler(io.BytesIO(), 5)
        a.dump(["x", ["y"]])
        a.memo = a.memo
        b.memo = a.memo
        a.clear_memo()
        b.dump(["x"])
        print(len(b.memo.copy()))
    """,
    "clear-memo-during-dump": """
        class Clearing:
            def __reduce__(self):
                PICKLER.clear_memo()
                return (str, ("cleared",))

        for proto in range(6):
            PICKLER = anypickle.Pickler(io.BytesIO(), proto)
            shared = ["s"]
            try:
                PICKLER.dump([shared, Clearing(), shared, Clearing(), shared])
            except Exception as exc:
                print(proto, type(exc).__name__)
    """,
    "memo-reassigned-during-dump": """
        class Reassigning:
            def __reduce__(self):
                PICKLER.memo = {}
                return (str, ("reassigned",))

        for proto in range(6):
            PICKLER = anypickle.Pickler(io.BytesIO(), proto)
            shared = ["s"]
            try:
                PICKLER.dump([shared, Reassigning(), shared])
            except Exception as exc:
                print(proto, type(exc).__name__)
    """,
    "reentrant-dump-from-reducer": """
        class Reentrant:
            def __reduce__(self):
                PICKLER.dump(["inner", [1, 2]])
                return (str, ("outer",))

        for proto in range(6):
            PICKLER = anypickle.Pickler(io.BytesIO(), proto)
            try:
                PICKLER.dump([["a"], Reentrant(), ["b"] * 3])
            except Exception as exc:
                print(proto, type(exc).__name__)
    """,
    "reentrant-dumps-from-persistent-id": """
        class Nested(anypickle.Pickler):
            def persistent_id(self, obj):
                if obj == "nest":
                    return anypickle.dumps(["nested", obj * 3])
                return None

        for proto in range(1, 6):
            Nested(io.BytesIO(), proto).dump(["nest", "nest", {"k": "nest"}])
    """,
    "fast-toggled-during-dump": """
        class Toggle:
            def __reduce__(self):
                PICKLER.fast = not PICKLER.fast
                return (str, ("toggled",))

        for proto in range(6):
            PICKLER = anypickle.Pickler(io.BytesIO(), proto)
            shared = ["s"]
            try:
                PICKLER.dump([shared, Toggle(), shared, Toggle(), [shared]])
            except Exception as exc:
                print(proto, type(exc).__name__)
    """,
    "dispatch-table-mutated-during-dump": """
        table = {}

        def reducer(obj):
            table.clear()
            table.update({complex: reducer, float: reducer})
            return (str, ("t",))

        table[complex] = reducer
        for proto in range(6):
            p = anypickle.Pickler(io.BytesIO(), proto)
            p.dispatch_table = table
            p.dump([1j, 2j, 3j])
    """,
    "hooks-deleted-during-dump": """
        class Hooked(anypickle.Pickler):
            def persistent_id(self, obj):
                if obj == "drop":
                    del type(self).persistent_id
                return None

            def reducer_override(self, obj):
                if isinstance(obj, Drop):
                    del type(self).reducer_override
                return NotImplemented

        class Drop:
            pass

        for proto in range(6):
            try:
                Hooked(io.BytesIO(), proto).dump(["drop", Drop(), "after", Drop()])
            except Exception as exc:
                print(proto, type(exc).__name__)
    """,
    "file-write-replaced-during-dump": """
        class Writer:
            def write(self, data):
                self.write = None
                return len(data)

        class Big:
            def __reduce__(self):
                return (bytes, (b"x" * 200000,))

        for proto in range(6):
            try:
                anypickle.Pickler(Writer(), proto).dump([Big(), Big(), "end"])
            except Exception as exc:
                print(proto, type(exc).__name__)
    """,
    "gc-collect-inside-reducers": """
        class Collecting:
            def __reduce__(self):
                junk = []
                junk.append(junk)
                del junk
                gc.collect()
                return (str, ("collected",))

        for proto in range(6):
            for det in (True, False):
                data = anypickle.dumps([Collecting() for _ in range(50)] * 2, proto,
                                       deterministic=det)
                assert pickle.loads(data)[0] == "collected"
    """,
    "threads-sharing-nothing": """
        import threading
        errors = []

        def work(n):
            try:
                obj = {"n": n, "items": [[i, str(i)] for i in range(200)]}
                for proto in range(6):
                    for _ in range(20):
                        assert anypickle.dumps(obj, proto) == pickle.dumps(obj, proto)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    """,
    "one-pickler-shared-by-threads": """
        import threading
        p = anypickle.Pickler(io.BytesIO(), 5)

        def work():
            for i in range(200):
                try:
                    p.dump([i, "x", [i]])
                    if i % 7 == 0:
                        p.clear_memo()
                except Exception as exc:
                    print(type(exc).__name__)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """,
}


@pytest.mark.parametrize("scenario", sorted(LIFECYCLE_SCENARIOS))
def test_odd_lifecycles_do_not_crash(scenario):
    code = "import gc, io, pickle, anypickle\n" + _dedent(LIFECYCLE_SCENARIOS[scenario])
    rc, out, err = run_python(code + "\nprint('DONE')\n", env={"PYTHONMALLOC": "debug"})
    assert_clean_exit(rc, out, err)
    assert out.rstrip().endswith("DONE"), out


def _dedent(code):
    import textwrap

    return textwrap.dedent(code)


# --------------------------------------------------------------------------------------
# Deep nesting (child interpreter)
# --------------------------------------------------------------------------------------

DEEP_PRELUDE = """
import io, pickle, sys, threading
import anypickle

N = 100_000


def build(kind, n):
    x = None
    for i in range(n):
        k = kind if kind != "mixed" else ("list", "dict", "tuple")[i % 3]
        if k == "list":
            x = [x]
        elif k == "dict":
            x = {"k": x}
        else:
            x = (x,)
    return x


def check(kind, obj, n):
    # Walk down iteratively: comparing with == would recurse.
    for depth in range(n):
        i = n - 1 - depth
        k = kind if kind != "mixed" else ("list", "dict", "tuple")[i % 3]
        expected_type = {"list": list, "dict": dict, "tuple": tuple}[k]
        assert type(obj) is expected_type, (depth, type(obj))
        assert len(obj) == 1, (depth, len(obj))
        obj = obj["k"] if k == "dict" else obj[0]
    assert obj is None, obj


def reference(obj, protocol):
    # What the stdlib would write given enough stack: its pure-Python pickler in a
    # thread with a large stack and a raised recursion limit.
    result = {}

    def run():
        sys.setrecursionlimit(20 * N + 10_000)
        result["data"] = pickle._dumps(obj, protocol)

    old = threading.stack_size(1 << 29)
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    finally:
        threading.stack_size(old)
    return result["data"]
"""


@pytest.mark.parametrize("kind", ["list", "dict", "tuple", "mixed"])
def test_100k_deep_nesting_pickles(kind):
    rc, out, err = run_python(
        DEEP_PRELUDE
        + f"""
kind = {kind!r}
obj = build(kind, N)
for protocol in (2, 5):
    data = anypickle.dumps(obj, protocol)
    assert data == reference(obj, protocol), "differs from the stdlib's pure-Python pickler"
    buf = io.BytesIO()
    anypickle.Pickler(buf, protocol).dump(obj)
    assert buf.getvalue() == data
    loaded = pickle.loads(data)
    check(kind, loaded, N)
    del loaded
    loose = anypickle.dumps(obj, protocol, deterministic=False)
    loaded = pickle.loads(loose)
    check(kind, loaded, N)
    del loaded
    print("protocol", protocol, "ok", len(data))
print("DONE")
"""
    )
    assert_clean_exit(rc, out, err)
    assert "DONE" in out


def test_100k_deep_nesting_at_every_protocol():
    rc, out, err = run_python(
        DEEP_PRELUDE
        + """
obj = build("mixed", N)
for protocol in range(6):
    loaded = pickle.loads(anypickle.dumps(obj, protocol))
    check("mixed", loaded, N)
    del loaded
print("DONE")
"""
    )
    assert_clean_exit(rc, out, err)
    assert "DONE" in out


def test_deep_chain_of_instances_does_not_crash():
    """Instances nest through their state dicts and __reduce_ex__; deep chains must not crash.

    Success or a clean RecursionError/PicklingError are both acceptable.
    """
    rc, out, err = run_python(
        """
import pickle, anypickle, corpus

node = None
for i in range(100_000):
    node = corpus.Plain(next=node)
for protocol in (0, 2, 5):
    for det in (True, False):
        try:
            data = anypickle.dumps(node, protocol, deterministic=det)
        except (RecursionError, pickle.PicklingError) as exc:
            print(protocol, det, "refused:", type(exc).__name__)
        else:
            loaded = pickle.loads(data)
            depth = 0
            while loaded is not None:
                loaded = loaded.next
                depth += 1
            assert depth == 100_000, depth
            print(protocol, det, "ok")
print("DONE")
"""
    )
    assert_clean_exit(rc, out, err)
    assert "DONE" in out


_DEPTH_MESSAGE_WORDS = ("recursion", "depth", "deep", "nest")


@pytest.mark.parametrize("kind", ["list", "dict", "tuple"])
def test_nesting_beyond_max_depth_raises_cleanly(kind):
    limit = anypickle._core.MAX_DEPTH
    if limit > 20_000_000:
        pytest.skip(f"MAX_DEPTH={limit} is too deep to build in a test")
    rc, out, err = run_python(
        DEEP_PRELUDE
        + f"""
import anypickle._core
limit = anypickle._core.MAX_DEPTH
kind = {kind!r}

# A couple of levels of slack: whether the innermost leaf counts as a level is
# an implementation detail.
fits = build(kind, limit - 2)
for protocol in (0, 2, 5):
    anypickle.dumps(fits, protocol)
del fits

too_deep = build(kind, limit + 2)
for protocol in (0, 2, 5):
    for call in ("dumps", "Pickler", "nondeterministic"):
        try:
            if call == "dumps":
                anypickle.dumps(too_deep, protocol)
            elif call == "Pickler":
                p = anypickle.Pickler(io.BytesIO(), protocol)
                p.dump(too_deep)
            else:
                anypickle.dumps(too_deep, protocol, deterministic=False)
        except (RecursionError, pickle.PicklingError) as exc:
            print("RAISED", call, protocol, type(exc).__name__, str(exc).replace(chr(10), " "))
        else:
            print("NOT RAISED", call, protocol)
        if call == "Pickler":
            # Still usable after the error.
            buf = io.BytesIO()
            p = anypickle.Pickler(buf, protocol)
            p.dump([1, "ok"])
            assert buf.getvalue() == pickle.dumps([1, "ok"], protocol)
print("DONE")
"""
    )
    assert_clean_exit(rc, out, err)
    assert "DONE" in out
    assert "NOT RAISED" not in out, out
    raised = [line for line in out.splitlines() if line.startswith("RAISED")]
    assert len(raised) == 9, out
    for line in raised:
        assert any(word in line.lower() for word in _DEPTH_MESSAGE_WORDS), line


# --------------------------------------------------------------------------------------
# Reducers mutating what is being pickled (child interpreter, debug allocator)
# --------------------------------------------------------------------------------------

MUTATION_PRELUDE = """
import gc, io, pickle
import anypickle

outcomes = []


def attempt(name, make, protocols=range(6)):
    for protocol in protocols:
        for det in (True, False):
            obj = make()
            try:
                data = anypickle.dumps(obj, protocol, deterministic=det)
            except Exception as exc:
                outcomes.append((name, protocol, det, type(exc).__name__))
            else:
                try:
                    pickle.loads(data)
                except Exception:
                    pass
                outcomes.append((name, protocol, det, "ok"))
            del obj
            gc.collect()
"""

MUTATION_SCENARIOS = {
    "reduce-clears-owning-list": """
        class ClearOwner:
            def __init__(self, owner):
                self.owner = owner

            def __reduce__(self):
                self.owner.clear()
                return (str, ("cleared-" + "x" * 30,))

        def make():
            owner = []
            owner.append(ClearOwner(owner))
            owner.extend([[1, 2, 3], "y" * 40, ClearOwner(owner)])
            owner.extend(ClearOwner(owner) for _ in range(1500))
            return owner

        attempt("clear-list", make)

        def make_sole_owner():
            # The list holds the only reference to the item being reduced.
            owner = []
            owner.extend(ClearOwner(owner) for _ in range(5))
            return [owner]

        attempt("clear-list-sole-owner", make_sole_owner)
    """,
    "reduce-appends-to-owning-list": """
        class Grow:
            budget = [0]

            def __init__(self, owner):
                self.owner = owner

            def __reduce__(self):
                if Grow.budget[0] < 3000:
                    Grow.budget[0] += 1
                    self.owner.append(Grow(self.owner))
                    self.owner.append(["tail"] * 3)
                return (str, ("grown",))

        def make():
            Grow.budget[0] = 0
            owner = []
            owner.extend(Grow(owner) for _ in range(10))
            return owner

        attempt("append-list", make)
    """,
    "reduce-shrinks-list-at-batch-boundary": """
        class Shrink:
            def __init__(self, owner):
                self.owner = owner

            def __reduce__(self):
                del self.owner[500:]
                return (int, (1,))

        def make():
            owner = list(range(999))
            owner.append(Shrink(owner))
            owner.extend(range(1500))
            return owner

        attempt("shrink-list", make)
    """,
    "reduce-mutates-owning-dict": """
        class DictMutator:
            def __init__(self, owner, mode):
                self.owner = owner
                self.mode = mode

            def __reduce__(self):
                if self.mode == "clear":
                    self.owner.clear()
                elif self.mode == "add":
                    for i in range(50):
                        self.owner[("new", i, id(self))] = DictMutator(self.owner, "none")
                elif self.mode == "delete-self":
                    for key, value in list(self.owner.items()):
                        if value is self:
                            del self.owner[key]
                return (str, ("mutated",))

        for mode in ("clear", "add", "delete-self"):
            def make(mode=mode):
                owner = {}
                for i in range(1200):
                    owner[i] = DictMutator(owner, mode) if i % 400 == 3 else [i]
                return owner
            attempt("dict-" + mode, make)
    """,
    "reduce-mutates-owning-set": """
        class SetMutator:
            def __init__(self, owner, mode):
                self.owner = owner
                self.mode = mode

            def __reduce__(self):
                if self.mode == "clear":
                    self.owner.clear()
                else:
                    self.owner.update(range(10_000, 10_100))
                return (str, ("set-mutated",))

        for mode in ("clear", "add"):
            def make(mode=mode):
                holder = []
                owner = set(range(1200))
                m = SetMutator(owner, mode)
                owner.add(m)
                holder.append(owner)
                return holder
            attempt("set-" + mode, make)
    """,
    "getstate-mutates-owner": """
        class StateMutator:
            def __init__(self, owner):
                self.owner = owner
                self.payload = [1, 2, 3]

            def __getstate__(self):
                if isinstance(self.owner, list):
                    self.owner.clear()
                else:
                    self.owner.clear()
                    self.owner.update({"fresh": [9]})
                return {"payload": self.payload}

        def make_list():
            owner = []
            owner.extend(StateMutator(owner) for _ in range(3))
            return owner

        def make_dict():
            owner = {}
            owner.update({i: StateMutator(owner) for i in range(3)})
            return owner

        attempt("getstate-list", make_list)
        attempt("getstate-dict", make_dict)
    """,
    "state-dict-mutated-while-saved": """
        class Inner:
            def __init__(self, outer):
                self.outer = outer

            def __reduce__(self):
                self.outer.__dict__.clear()
                for i in range(30):
                    self.outer.__dict__["k%d" % i] = [i]
                return (str, ("inner",))

        class Outer:
            pass

        def make():
            o = Outer()
            o.a = Inner(o)
            o.b = [1, 2]
            o.c = Inner(o)
            return o

        attempt("state-dict", make)
    """,
    "listitems-iterator-mutates-list": """
        class Evil(list):
            def __reduce__(self):
                return (Evil, (), None, iter(self), None)

        class Clear:
            def __init__(self, owner):
                self.owner = owner

            def __reduce__(self):
                self.owner.clear()
                return (int, (0,))

        def make():
            e = Evil()
            e.extend([1, Clear(e), 3] + list(range(2000)))
            return e

        attempt("listitems-clear", make)
    """,
    "persistent-id-clears-collection": """
        class Clearer:
            pass

        def checker(collection):
            class Evil(anypickle.Pickler):
                def persistent_id(self, obj):
                    if isinstance(obj, Clearer):
                        collection.clear()
                    return None
            return Evil

        for proto in range(6):
            for make in (
                lambda: [Clearer(), Clearer()],
                lambda: {Clearer(), Clearer()},
                lambda: {Clearer(): 1, Clearer(): 2},
                lambda: {1: Clearer(), 2: Clearer()},
                lambda: [Clearer()] * 1500,
            ):
                collection = make()
                try:
                    checker(collection)(io.BytesIO(), proto).dump(collection)
                except RuntimeError as exc:
                    outcomes.append(("pid", proto, str(exc)))
    """,
    "reducer-override-mutates-collection": """
        class Marker:
            pass

        for proto in range(6):
            target = [Marker(), [1], Marker(), "s"] * 400

            class Evil(anypickle.Pickler):
                def reducer_override(self, obj):
                    if isinstance(obj, Marker):
                        target.clear()
                        target.extend([Marker()] * 3)
                    return NotImplemented

            try:
                Evil(io.BytesIO(), proto).dump(target)
            except Exception as exc:
                outcomes.append(("ro", proto, type(exc).__name__))
    """,
    "buffer-callback-resizes-buffer": """
        for det in (True, False):
            data = bytearray(b"x" * 1000)

            def callback(buf):
                try:
                    data.clear()
                except BufferError:
                    pass
                return False

            try:
                out = anypickle.dumps(
                    [pickle.PickleBuffer(data), data], 5, buffer_callback=callback,
                    deterministic=det,
                )
            except Exception as exc:
                outcomes.append(("buffer", type(exc).__name__))
    """,
}


@pytest.mark.parametrize("scenario", sorted(MUTATION_SCENARIOS))
def test_mutating_reducers_do_not_crash(scenario):
    code = MUTATION_PRELUDE + _dedent(MUTATION_SCENARIOS[scenario])
    code += "\nprint(len(outcomes), 'outcomes')\nprint('DONE')\n"
    rc, out, err = run_python(code, env={"PYTHONMALLOC": "debug"})
    assert_clean_exit(rc, out, err)
    assert out.rstrip().endswith("DONE"), out


# --------------------------------------------------------------------------------------
# Leaks (child interpreter, resident set size)
# --------------------------------------------------------------------------------------

# Growth allowed over the measured loop, after a warm-up loop.  Generous: a leak
# of one small object per call (>= 32 bytes) over 200,000 calls is 6+ MB.
LEAK_THRESHOLD_KB = 4 * 1024

LEAK_PRELUDE = """
import gc, io, os, pickle, threading
import anypickle, corpus


def rss_kb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def mid_size():
    shared = ["shared", 1.5, 2**70]
    return {
        "ints": list(range(40)),
        "strs": ["s%d" % i for i in range(20)],
        "floats": [i / 7 for i in range(10)],
        "nested": [(i, [i, {"k": i}]) for i in range(10)],
        "shared": [shared, shared],
        "bytes": b"b" * 300,
        "bytearray": bytearray(b"a" * 50),
        "set": {1, 2, 3},
        "inst": corpus.Plain(a=1, b=[2]),
        "none": None,
        "bool": True,
    }


def measure(op, iterations, warmup):
    for i in range(warmup):
        op(i)
    gc.collect()
    before = rss_kb()
    for i in range(iterations):
        op(i)
    gc.collect()
    after = rss_kb()
    print("GROWTH_KB", after - before)
"""

LEAK_SCENARIOS = {
    "dumps": (
        """
        obj = mid_size()
        op = lambda i: anypickle.dumps(obj, i % 6)
    """,
        200_000,
    ),
    "dumps-nondeterministic": (
        """
        obj = mid_size()
        op = lambda i: anypickle.dumps(obj, i % 6, deterministic=False)
    """,
        200_000,
    ),
    "pickler-reused": (
        """
        obj = mid_size()
        buf = io.BytesIO()
        p = anypickle.Pickler(buf, 5)

        def op(i):
            buf.seek(0)
            buf.truncate()
            p.dump(obj)
            p.clear_memo()
    """,
        100_000,
    ),
    "new-pickler-each-time": (
        """
        obj = mid_size()

        def op(i):
            anypickle.Pickler(io.BytesIO(), i % 6).dump(obj)
    """,
        100_000,
    ),
    "errors": (
        """
        bad = [mid_size(), {"k": [1, threading.Lock()]}]

        def op(i):
            try:
                anypickle.dumps(bad, i % 6)
            except (TypeError, pickle.PicklingError):
                pass
    """,
        100_000,
    ),
    "hooks": (
        """
        obj = mid_size()

        class Hooked(anypickle.Pickler):
            def persistent_id(self, o):
                return "pid" if o == 7 else None

            def reducer_override(self, o):
                return (str, ("ro",)) if isinstance(o, corpus.Plain) else NotImplemented

        def op(i):
            p = Hooked(io.BytesIO(), i % 6)
            p.dispatch_table = {complex: lambda c: (str, ("c",))}
            p.dump([obj, 7, 1j])
    """,
        50_000,
    ),
    "out-of-band-buffers": (
        """
        payload = bytearray(b"p" * 1000)

        def op(i):
            buffers = []
            anypickle.dumps([pickle.PickleBuffer(payload), pickle.PickleBuffer(b"ro" * 100)], 5,
                            buffer_callback=buffers.append)
    """,
        100_000,
    ),
    "memo-copy": (
        """
        obj = mid_size()
        p = anypickle.Pickler(io.BytesIO(), 5)
        p.dump(obj)
        op = lambda i: p.memo.copy()
    """,
        50_000,
    ),
    "nested-150": (
        """
        obj = None
        for _ in range(150):  # 450 levels: within the stdlib's own limit, for comparison
            obj = [obj, {"k": (obj,)}]
        op = lambda i: anypickle.dumps(obj, 2 + i % 4)
    """,
        5_000,
    ),
}


@pytest.mark.parametrize("scenario", sorted(LEAK_SCENARIOS))
def test_no_memory_leak(scenario):
    setup, iterations = LEAK_SCENARIOS[scenario]
    code = (
        LEAK_PRELUDE
        + _dedent(setup)
        + f"\nmeasure(op, {iterations}, {max(iterations // 10, 1000)})\nprint('DONE')\n"
    )
    rc, out, err = run_python(code)
    assert_clean_exit(rc, out, err)
    growth = [int(line.split()[1]) for line in out.splitlines() if line.startswith("GROWTH_KB")]
    assert growth, out
    assert growth[0] <= LEAK_THRESHOLD_KB, (
        f"RSS grew by {growth[0]} KB over {iterations} iterations of {scenario!r}"
    )
