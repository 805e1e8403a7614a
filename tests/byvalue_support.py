"""Helpers of the by-value pickling tests (issue #4).

* ``dump_in_fresh_process(define_code, expr)``: run ``define_code`` as the
  ``__main__`` module of a child interpreter (``python -c``, so what it defines
  exists nowhere else), pickle ``expr`` there with ``anypickle.dumps`` and
  return the bytes.  ``dumps_in_fresh_process`` does the same for several
  expressions (and protocols) in one child.
* ``load_in_fresh_process(data, check_code)``: in another child, load the bytes
  with the *stdlib* ``pickle.loads`` (the check code never imports anypickle: the
  pickle has to import what it needs) into ``obj``, then run ``check_code``.
  A non-zero exit fails the test with the child's stderr.  Every load in that
  child also checks that loading did not touch the loader's ``__main__``.
* ``run_wrapped``: a module-level worker function for ProcessPoolExecutor round
  trips (functions and results travel as anypickle bytes).
* ``code_fields``: every field of a code object as plain, comparable data.
* Importable objects for the "by reference or by value" decision: things the
  stdlib can find by name, and things it cannot (renamed, shadowed, impostors).

This module must stay cheap to import and must not import anypickle at import
time: loading children import it after checking that anypickle is not loaded.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import textwrap

# --------------------------------------------------------------------------------------
# Fresh-process dump and load
# --------------------------------------------------------------------------------------

_DUMP_FOOTER = """
import os as _bv_os
import pickle as _bv_pickle
import anypickle as _bv_anypickle
_bv_results = []
{dump_lines}
with open(_bv_os.environ["BYVALUE_OUT"], "wb") as _bv_file:
    _bv_file.write(_bv_pickle.dumps(_bv_results, 4))
"""

_LOAD_HEADER = """
import os
import pickle
import sys

assert "anypickle" not in sys.modules, "anypickle was imported before the pickle was loaded"


def _bv_main_vars():
    return {{name: id(value) for name, value in vars(sys.modules["__main__"]).items()}}


def load(blob):
    \"\"\"pickle.loads(blob), asserting that loading leaves __main__ alone.\"\"\"
    before = _bv_main_vars()
    result = pickle.loads(blob)
    after = _bv_main_vars()
    assert after == before, (
        "loading changed the loader's __main__: "
        f"added {{sorted(set(after) - set(before))}}, "
        f"removed {{sorted(set(before) - set(after))}}, "
        f"rebound {{sorted(k for k in before if k in after and before[k] != after[k])}}"
    )
    return result


with open(os.environ["BYVALUE_IN"], "rb") as _bv_file:
    datas = pickle.loads(_bv_file.read())
data = datas[0]
{load_line}
"""


_RUN_CHECK = """
import linecache as _bv_linecache

_bv_check = {source!r}
_bv_linecache.cache["<check>"] = (len(_bv_check), None, _bv_check.splitlines(True), "<check>")
try:
    exec(compile(_bv_check, "<check>", "exec"), globals())
except Exception as _bv_exc:
    import re as _bv_re
    import traceback as _bv_traceback

    _bv_traceback.print_exc()
    _bv_where = None
    _bv_tb = _bv_exc.__traceback__
    while _bv_tb is not None:
        if _bv_tb.tb_frame.f_code.co_filename == "<check>":
            _bv_where = (_bv_tb.tb_frame, _bv_tb.tb_lineno)
        _bv_tb = _bv_tb.tb_next
    if _bv_where is not None:
        _bv_frame, _bv_line = _bv_where
        _bv_text = _bv_check.splitlines()[_bv_line - 1].strip()
        print(f"failing check line {{_bv_line}}: {{_bv_text}}", file=sys.stderr)
        for _bv_name in dict.fromkeys(_bv_re.findall(r"[A-Za-z_][A-Za-z0-9_]*", _bv_text)):
            if _bv_name in _bv_frame.f_locals:
                try:
                    _bv_value = repr(_bv_frame.f_locals[_bv_name])[:300]
                except Exception as _bv_repr_exc:
                    _bv_value = f"<repr failed: {{_bv_repr_exc!r}}>"
                print(f"    {{_bv_name}} = {{_bv_value}}", file=sys.stderr)
    sys.exit(1)
"""


def _temp_path(suffix):
    fd, path = tempfile.mkstemp(prefix="anypickle-byvalue-", suffix=suffix)
    os.close(fd)
    return path


def dumps_in_fresh_process(define_code, exprs, protocol=5, *, options="", env=None):
    """Pickle each of ``exprs`` with anypickle.dumps in a child whose __main__ ran ``define_code``.

    ``exprs`` items are expressions (strings) evaluated in that __main__, or
    ``(expr, protocol)`` pairs.  ``options`` is extra keyword-argument text
    for ``anypickle.dumps`` (e.g. ``"by_value=['m']"``).  Each expression is
    pickled by its own ``dumps`` call.  Returns the list of pickles.
    """
    from conftest import assert_clean_exit, run_python

    lines = []
    for item in exprs:
        expr, proto = (item, protocol) if isinstance(item, str) else item
        extra = f", {options}" if options else ""
        lines.append(f"_bv_results.append(_bv_anypickle.dumps(({expr}), protocol={proto}{extra}))")
    code = (
        textwrap.dedent(define_code).strip("\n")
        + "\n"
        + _DUMP_FOOTER.format(dump_lines="\n".join(lines))
    )
    out_path = _temp_path(".out")
    try:
        child_env = {"BYVALUE_OUT": out_path}
        child_env.update(env or {})
        rc, out, err = run_python(code, env=child_env, timeout=120)
        assert_clean_exit(rc, out, err)
        with open(out_path, "rb") as f:
            results = pickle.loads(f.read())
    finally:
        os.unlink(out_path)
    assert len(results) == len(exprs)
    assert all(type(r) is bytes for r in results)
    return results


def dump_in_fresh_process(define_code, expr, protocol=5, *, options="", env=None):
    """The anypickle pickle of ``expr`` evaluated in a child whose __main__ ran ``define_code``."""
    return dumps_in_fresh_process(define_code, [expr], protocol, options=options, env=env)[0]


def load_in_fresh_process(data, check_code, *, raw=False, env=None):
    """Load ``data`` with the stdlib's pickle.loads in a fresh child, then run ``check_code``.

    ``data`` is one pickle or a list of them.  The check code sees ``pickle``,
    ``sys``, ``datas`` (the list), ``data`` (the first pickle), ``load(blob)``
    (pickle.loads that asserts __main__ is untouched) and, unless ``raw``,
    ``obj = load(data)``.  Returns the child's stdout.
    """
    from conftest import assert_clean_exit, run_python

    datas = [data] if isinstance(data, (bytes, bytearray)) else list(data)
    load_line = "" if raw else "obj = load(data)"
    # The check code runs through exec with its source in linecache, so that a failing
    # assert shows its line in the child's traceback.
    code = _LOAD_HEADER.format(load_line=load_line) + _RUN_CHECK.format(
        source=textwrap.dedent(check_code).strip("\n") + "\n"
    )
    in_path = _temp_path(".in")
    try:
        with open(in_path, "wb") as f:
            f.write(pickle.dumps([bytes(d) for d in datas], 4))
        child_env = {"BYVALUE_IN": in_path}
        child_env.update(env or {})
        rc, out, err = run_python(code, env=child_env, timeout=120)
        assert_clean_exit(rc, out, err)
    finally:
        os.unlink(in_path)
    return out


def roundtrip_in_fresh_processes(define_code, expr, check_code, protocol=5, *, options=""):
    """Dump ``expr`` in one child, load it and run ``check_code`` in another."""
    data = dump_in_fresh_process(define_code, expr, protocol, options=options)
    return load_in_fresh_process(data, check_code)


# --------------------------------------------------------------------------------------
# ProcessPoolExecutor worker
# --------------------------------------------------------------------------------------


def run_wrapped(fn_bytes, args=()):
    """Load a function pickled with anypickle, call it, return its result pickled with anypickle.

    ``args`` is a tuple, or anypickle bytes of one (for arguments the stdlib
    cannot pickle, such as instances of local classes).
    """
    import anypickle

    fn = anypickle.loads(fn_bytes)
    if isinstance(args, bytes):
        args = anypickle.loads(args)
    return anypickle.dumps(fn(*args))


# --------------------------------------------------------------------------------------
# Code objects as comparable data
# --------------------------------------------------------------------------------------

_CODE_FIELDS = [
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
    "co_nlocals",
    "co_stacksize",
    "co_flags",
    "co_code",
    "co_names",
    "co_varnames",
    "co_freevars",
    "co_cellvars",
    "co_filename",
    "co_name",
    "co_firstlineno",
    "co_linetable",
]
if sys.version_info >= (3, 11):
    _CODE_FIELDS += ["co_qualname", "co_exceptiontable"]


def _const_repr(value):
    if type(value).__name__ == "code":
        return ("code", code_fields(value))
    if type(value) is tuple:
        return ("tuple", tuple(_const_repr(v) for v in value))
    if type(value) is frozenset:
        return ("frozenset", tuple(sorted(repr(_const_repr(v)) for v in value)))
    if type(value) in (float, complex):
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


def code_fields(code):
    """Every field of ``code`` (nested code objects included) as plain data."""
    fields = {name: getattr(code, name) for name in _CODE_FIELDS}
    fields["co_consts"] = _const_repr(code.co_consts)
    fields["co_lines"] = list(code.co_lines())
    return fields


# --------------------------------------------------------------------------------------
# Importable objects: found by name (by reference) or not (by value)
# --------------------------------------------------------------------------------------


def module_level_function(x):
    return x + 1


class ModuleLevelClass:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return type(other) is ModuleLevelClass and other.value == self.value

    __hash__ = None


#: A function whose __qualname__ names nothing in this module.
def renamed_function(x):
    return ("renamed", x, _SUPPORT_CONSTANT)


renamed_function.__qualname__ = "no_such_name_here"

_SUPPORT_CONSTANT = "support-constant"


class ShadowedClass:
    def who(self):
        return "first ShadowedClass"


#: The first ShadowedClass: its name now leads to another class.
shadowed_class_original = ShadowedClass


class ShadowedClass:  # noqa: F811 - the redefinition is the point
    def who(self):
        return "second ShadowedClass"


def _impostor(*parts):
    return ("impostor", parts)


# Claims to be os.path.join, which the stdlib would find (and it is another object).
_impostor.__module__ = "os.path"
_impostor.__qualname__ = "join"
_impostor.__name__ = "join"
impostor_function = _impostor


def _in_missing_module():
    return "from a missing module"


_in_missing_module.__module__ = "no_such_module_for_anypickle_tests"
missing_module_function = _in_missing_module


def make_local_class():
    class Local:
        def __init__(self, value):
            self.value = value

        def twice(self):
            return self.value * 2

    return Local


# --------------------------------------------------------------------------------------
# Definition-time hooks that live in the *loading* process
# --------------------------------------------------------------------------------------


class PluginBase:
    """Records every subclass created in this process (and the ``kind`` it had then)."""

    kind = "base"
    registry = []
    by_kind = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        PluginBase.registry.append(cls)
        PluginBase.by_kind[cls.kind] = cls


class Field:
    """A descriptor recording every __set_name__ call made in this process."""

    calls = []

    def __init__(self, default=None):
        self.default = default
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name
        Field.calls.append((owner, name))

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return instance.__dict__.get(self.name, self.default)

    def __set__(self, instance, value):
        instance.__dict__[self.name] = value
