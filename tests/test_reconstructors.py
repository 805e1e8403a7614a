"""The reconstructors written in Rust behave as the wire format says.

``code``, ``function``, ``function_state``, ``cell`` and ``cell_state`` are Rust
functions bound in ``anypickle._reconstruct``. Each must do exactly what its
documented Python equivalent does (the same constructor calls and attribute
assignments, so the same results and errors), and pickle by reference to its
wire name. Round trips of by-value functions through fresh interpreters are in
``test_byvalue_functions.py``; these tests call the reconstructors directly.
"""

from __future__ import annotations

import gc
import io
import pickle
import re
import sys
import types
import weakref

import anypickle
import pytest
from anypickle import _reconstruct as R

NAMES = ["code", "function", "function_state", "cell", "cell_state"]


def _sample(x, y=1, *, z=2):
    return x + y + z


def _fresh(src: str = "lambda x, y: x + y") -> types.FunctionType:
    """A function rebuilt by ``function`` from a lambda's code, with empty globals."""
    return R.function(eval(src).__code__, {}, "f", None)  # noqa: S307 - fixed text


@pytest.mark.parametrize("name", NAMES)
def test_pickles_by_reference_to_its_wire_name(name):
    obj = getattr(R, name)
    assert obj.__module__ == "anypickle._reconstruct"
    assert obj.__name__ == name
    for data in (pickle.dumps(obj, 2), pickle.dumps(obj, 5), anypickle.dumps(obj)):
        assert b"anypickle._reconstruct" in data
        assert name.encode() in data
        assert pickle.loads(data) is obj
        assert anypickle.loads(data) is obj


# ---------------------------------------------------------------------- code


def test_code_rebuilds_a_code_object_that_runs():
    src = _sample.__code__
    rebuilt = pickle.loads(anypickle.dumps(src))
    assert rebuilt == src and rebuilt is not src
    f = types.FunctionType(rebuilt, {}, "g", (1,), None)
    f.__kwdefaults__ = {"z": 2}
    assert f(10) == 13


def test_code_refuses_another_python_version():
    with pytest.raises(R.VersionMismatchError) as info:
        R.code("2.7", b"")
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        f"this pickle holds bytecode compiled by Python 2.7, which Python "
        f"{R.PYTHON_VERSION} cannot run; load it with Python 2.7"
    )


@pytest.mark.parametrize("version", [None, 3.11, b"3.11", ("3", "11")])
def test_code_refuses_a_version_that_is_not_this_str(version):
    with pytest.raises(R.VersionMismatchError, match=re.escape(f"by Python {version},")):
        R.code(version)


def test_code_version_may_be_a_str_subclass():
    class Version(str):
        pass

    rebuilt = R.code(Version(R.PYTHON_VERSION), *_code_args(_sample.__code__))
    assert rebuilt == _sample.__code__


def _code_args(c: types.CodeType) -> tuple:
    """``types.CodeType``'s positional arguments for ``c``, as the writer writes them."""
    captured: list[tuple] = []

    class Capturing(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("anypickle._reconstruct", "code"):
                return lambda _version, *fields: captured.append(fields) or c
            return super().find_class(module, name)

    Capturing(io.BytesIO(anypickle.dumps(c))).load()
    (fields,) = captured
    return fields


def test_code_bad_fields_raise_what_codetype_raises():
    args = _code_args(_sample.__code__)
    bad = (*args[:6], "not bytes", *args[7:])
    with pytest.raises(TypeError) as ours:
        R.code(R.PYTHON_VERSION, *bad)
    with pytest.raises(TypeError) as theirs:
        types.CodeType(*bad)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError):
        R.code(R.PYTHON_VERSION)
    with pytest.raises(TypeError):
        R.code()


# ---------------------------------------------------------------------- function


def test_function_is_functiontype():
    g: dict = {}
    cell = R.cell()
    R.cell_state(cell, 5)

    def outer():
        v = 0

        def inner(x):
            return x + v

        return inner

    code = outer().__code__
    f = R.function(code, g, "named", (cell,))
    assert type(f) is types.FunctionType
    assert f.__globals__ is g
    assert f.__name__ == "named"
    assert f.__closure__[0] is cell
    assert f(1) == 6
    assert f.__defaults__ is None


@pytest.mark.parametrize(
    "args",
    [
        ("not code", {}, "f", None),
        (_sample.__code__, "not a dict", "f", None),
        (_sample.__code__, {}, 42, None),
        (_sample.__code__, {}, "f", (1,)),
    ],
)
def test_function_bad_arguments_raise_what_functiontype_raises(args):
    with pytest.raises((TypeError, ValueError)) as ours:
        R.function(*args)
    with pytest.raises((TypeError, ValueError)) as theirs:
        types.FunctionType(args[0], args[1], args[2], None, args[3])
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_function_takes_keywords_as_its_python_signature_did():
    f = R.function(code=_sample.__code__, base_globals={}, name="k", closure=None)
    assert f.__name__ == "k"
    with pytest.raises(TypeError):
        R.function(_sample.__code__, {}, "f")


# ---------------------------------------------------------------------- function_state


def test_function_state_sets_every_attribute():
    f = _fresh()
    R.function_state(
        f,
        {
            "globals": {"G": 1},
            "defaults": (10,),
            "kwdefaults": {"k": 3},
            "annotations": {"x": int},
            "doc": "adds",
            "module": "somewhere",
            "qualname": "outer.<locals>.f",
            "dict": {"tag": "t"},
        },
    )
    assert f.__globals__ == {"G": 1}
    assert f.__defaults__ == (10,)
    assert f.__kwdefaults__ == {"k": 3}
    assert f.__annotations__ == {"x": int}
    assert f.__doc__ == "adds"
    assert f.__module__ == "somewhere"
    assert f.__qualname__ == "outer.<locals>.f"
    assert f.tag == "t"
    assert f(1) == 11


def test_function_state_none_values_are_set_and_empty_ones_skipped():
    f = _fresh()
    f.__defaults__ = (1,)
    f.__doc__ = "old"
    R.function_state(f, {"defaults": None, "doc": None, "globals": {}, "dict": {}})
    assert f.__defaults__ is None
    assert f.__doc__ is None
    assert f.__globals__ == {}


def test_function_state_updates_globals_through_a_dict_subclass_update():
    """A globals dict of a dict subclass is updated by its own ``update``."""
    seen = []

    class Recording(dict):
        def update(self, other):
            seen.append(("globals", other))
            super().update(other)

    g = Recording()
    f = R.function((lambda: 0).__code__, g, "f", None)
    R.function_state(f, {"dict": {"a": 1}, "module": "m", "globals": {"x": 1}})
    assert seen == [("globals", {"x": 1})]
    assert f.__module__ == "m" and f.a == 1 and g == {"x": 1}


def test_function_state_ignores_unknown_keys():
    f = _fresh()
    R.function_state(f, {"future_key": object(), 42: "x", "doc": "kept"})
    assert f.__doc__ == "kept"


def test_function_state_imports_modules(tmp_path, monkeypatch):
    pkg = tmp_path / "ap_recon_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        f = _fresh()
        R.function_state(f, {"imports": ["ap_recon_pkg.sub"]})
        assert sys.modules["ap_recon_pkg.sub"].VALUE == 7
        with pytest.raises(ModuleNotFoundError):
            R.function_state(f, {"imports": ("ap_recon_pkg.missing",)})
    finally:
        for name in ("ap_recon_pkg", "ap_recon_pkg.sub"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("state", "attr"),
    [
        ({"defaults": 5}, "__defaults__"),
        ({"kwdefaults": [1]}, "__kwdefaults__"),
        ({"annotations": 1}, "__annotations__"),
        ({"qualname": 3}, "__qualname__"),
    ],
)
def test_function_state_bad_values_raise_what_setattr_raises(state, attr):
    with pytest.raises(TypeError) as ours:
        R.function_state(_fresh(), state)
    with pytest.raises(TypeError) as theirs:
        setattr(_fresh(), attr, next(iter(state.values())))
    assert str(ours.value) == str(theirs.value)


def test_function_state_errors_from_truthiness_and_update_propagate():
    class Bad:
        def __bool__(self):
            raise RuntimeError("no truth")

    with pytest.raises(RuntimeError, match="no truth"):
        R.function_state(_fresh(), {"imports": Bad()})
    with pytest.raises((TypeError, ValueError)):
        R.function_state(_fresh(), {"globals": [1, 2, 3]})
    # A non-dict mapping goes through dict.update as in Python.
    f = _fresh()
    R.function_state(f, {"globals": [("a", 1)], "dict": [("b", 2)]})
    assert f.__globals__ == {"a": 1} and f.b == 2


def test_function_state_needs_a_dict():
    with pytest.raises(TypeError):
        R.function_state(_fresh(), [("doc", "x")])
    with pytest.raises(AttributeError):
        R.function_state(object(), {"globals": {"a": 1}})


# ---------------------------------------------------------------------- cells


def test_cell_and_cell_state():
    c = R.cell()
    assert type(c) is types.CellType
    with pytest.raises(ValueError):
        c.cell_contents  # noqa: B018 - an empty cell
    R.cell_state(c, [1])
    assert c.cell_contents == [1]
    R.cell_state(c, None)
    assert c.cell_contents is None
    with pytest.raises(TypeError):
        R.cell(1)


def test_cell_state_on_other_objects_sets_the_attribute():
    ns = types.SimpleNamespace()
    R.cell_state(ns, 3)
    assert ns.cell_contents == 3
    with pytest.raises(AttributeError):
        R.cell_state(None, 1)
    with pytest.raises(AttributeError):
        R.cell_state(object(), 1)


# ---------------------------------------------------------------------- references


def test_no_reference_is_leaked_or_lost():
    code = _sample.__code__
    g: dict = {}
    name = "leak_check"
    state = {"doc": "d", "defaults": (1,), "dict": {"a": 1}, "globals": {"b": 2}}
    value = object()
    fields = _code_args(code)
    gc.collect()
    before = [sys.getrefcount(o) for o in (code, g, name, state, value)]
    for _ in range(1000):
        f = R.function(code, g, name, None)
        R.function_state(f, state)
        c = R.cell()
        R.cell_state(c, value)
        R.code(R.PYTHON_VERSION, *fields)
        del f, c
    gc.collect()
    after = [sys.getrefcount(o) for o in (code, g, name, state, value)]
    assert after == before


def test_results_are_not_leaked():
    f = R.function(_sample.__code__, {}, "w", None)
    c = R.code(R.PYTHON_VERSION, *_code_args(_sample.__code__))
    refs = [weakref.ref(f), weakref.ref(c)]
    del f, c
    gc.collect()
    assert [r() for r in refs] == [None, None]


# ---------------------------------------------------------------------- the writer's side


def _closure():
    offset = 3
    return lambda x: x + offset


def test_writer_names_reconstructors_the_same_way_with_or_without_hooks():
    """Without hooks the writer goes straight to save_global; with them, through save."""
    seen: list = []

    class Watching(anypickle.Pickler):
        def reducer_override(self, obj):
            seen.append(obj)
            return NotImplemented

        def persistent_id(self, obj):
            return None

    func = _closure()
    plain = anypickle.dumps(func)
    buf = io.BytesIO()
    Watching(buf).dump(func)
    assert buf.getvalue() == plain
    # (A lambda's closure needs no function_state.)
    for name in ("function", "cell", "cell_state", "code"):
        assert getattr(R, name) in seen
        assert b"\x8c" + bytes([len(name)]) + name.encode() + b"\x94\x93" in plain
    assert pickle.loads(plain)(1) == 4
