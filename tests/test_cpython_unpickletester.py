"""CPython's own pickle conformance suite, bound to anypickle's *reader*.

``test_cpython_pickletester.py`` binds the pickling side of CPython's
``test.pickletester`` mix-ins to anypickle's writer, reading with the stdlib.
This module binds the unpickling side, as CPython's ``Lib/test/test_pickle.py``
binds them to ``_pickle.Unpickler``:

* ``AbstractUnpickleTests`` through ``anypickle.Unpickler`` over a BytesIO
  (with the C unpickler's error expectations: ``bad_stack_errors`` and
  ``truncated_errors`` are ``(UnpicklingError,)``) and through
  ``anypickle.loads`` (the in-memory path, together with
  ``AbstractPickleTests``, as CPython's ``InMemoryPickleTests``);
* ``AbstractPickleTests`` in both directions through anypickle: anypickle's
  writer and reader, and the stdlib's C and pure-Python writers read by
  anypickle (CPython's ``DumpPickle_CLoadPickle``);
* ``AbstractPickleModuleTests`` with every name anypickle's
  (``load``/``loads``/``Unpickler`` included);
* ``AbstractPersistentPicklerTests`` / ``AbstractIdentityPersistentPicklerTests``
  with ``persistent_load`` on an ``anypickle.Unpickler`` subclass;
* ``AbstractPicklerUnpicklerObjectTests`` (memo priming, reuse, several
  pickles in one file) plus CPython's ``test_issue18339`` (memo assignment);
* ``AbstractHookTests`` and ``AbstractDispatchTableTests``: these call
  ``pickle.loads`` directly, so while they run ``pickletester``'s ``pickle``
  is replaced by a proxy whose ``loads``/``load``/``Unpickler`` are
  anypickle's (``_ReaderRouted``).  The proxy also routes the one
  ``pickle.loads`` of ``AbstractUnpickleTests.test_unpickle_module_race``.

The mix-ins differ between Python versions (3.13 added many unpickling
tests), so each is bound only if the running interpreter ships it, and
``test_every_reader_side_mixin_is_bound`` fails when a new one appears.
Tests that must not run against anypickle are in ``EXCLUDED`` with their
reason; they are reported as skipped, never silently dropped.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
import sys
import types
import unittest

import anypickle
import pytest
from pickletester_support import (
    BY_VALUE_EXCLUSIONS,
    PersistentHooks,
    file_loads,
    pickler_dumps,
    skip_excluded,
)

pickletester = pytest.importorskip(
    "test.pickletester", reason="this interpreter does not ship CPython's test package"
)

# Test name (optionally "BindingClass.test_name") -> why it is not run.
EXCLUDED: dict[str, str] = {}

# Tests asserting refusals that anypickle lifts by pickling by value.
EXCLUDED.update(BY_VALUE_EXCLUSIONS)
if sys.version_info >= (3, 13):
    # From 3.13, AbstractIdentityPersistentPicklerTests compares the whole message with
    # assertEqual (before, only the class); anypickle's reader appends "(opcode PERSID
    # at offset 0)" to every message it raises.  test_protocol_0_persistent_id_message
    # below checks the class and the rest of the message on every version.
    EXCLUDED["test_protocol0_is_ascii_only"] = (
        "compares the exact message; anypickle appends the opcode and offset "
        "(checked by test_protocol_0_persistent_id_message instead)"
    )


def _mixin(name: str) -> type | None:
    return getattr(pickletester, name, None)


# --------------------------------------------------------------------------------------
# Routing pickletester's own pickle.loads to anypickle
# --------------------------------------------------------------------------------------


class _ReaderProxy(types.ModuleType):
    """``pickle`` with anypickle's reader: what ``pickletester.pickle`` becomes during a test."""

    def __init__(self):
        super().__init__("pickle")
        self.loads = anypickle.loads
        self.load = anypickle.load
        self.Unpickler = anypickle.Unpickler

    def __getattr__(self, name):
        return getattr(pickle, name)


class _ReaderRouted:
    """Mix-in: while a test runs, ``pickletester.pickle.loads`` is ``anypickle.loads``."""

    def setUp(self):
        super().setUp()
        original = pickletester.pickle
        pickletester.pickle = _ReaderProxy()
        self.addCleanup(setattr, pickletester, "pickle", original)


# --------------------------------------------------------------------------------------
# Binding helpers
# --------------------------------------------------------------------------------------


_BOUND: dict[str, type] = {}


def _bind(name: str, bases: tuple[type, ...], namespace: dict) -> None:
    cls = type(
        name,
        (_ReaderRouted, *bases, unittest.TestCase),
        {"__module__": __name__, **namespace},
    )
    _BOUND[name] = skip_excluded(cls, EXCLUDED)


# The C unpickler's expectations (CPython's CUnpicklerTests): anypickle raises
# UnpicklingError (or a subclass) for a bad stack and for data cut inside an opcode.
_C_ERRORS = {
    "bad_stack_errors": (pickle.UnpicklingError,),
    "truncated_errors": (pickle.UnpicklingError,),
}

# --- AbstractUnpickleTests: hand-written pickles, errors, find_class ----------------

_AbstractUnpickleTests = _mixin("AbstractUnpickleTests")
_AbstractPickleTests = _mixin("AbstractPickleTests")

if _AbstractUnpickleTests is not None:
    # Through an Unpickler reading a BytesIO (CPython's CUnpicklerTests).
    _bind(
        "TestAnyUnpicklerFile",
        (_AbstractUnpickleTests,),
        {
            "unpickler": anypickle.Unpickler,
            "loads": lambda self, buf, **kw: file_loads(self.unpickler, buf, **kw),
            **_C_ERRORS,
        },
    )

if _AbstractPickleTests is not None:
    # anypickle.dumps + anypickle.loads, the in-memory paths (CPython's InMemoryPickleTests).
    _in_memory_bases: tuple[type, ...] = (_AbstractPickleTests,)
    if _AbstractUnpickleTests is not None:
        _in_memory_bases += (_AbstractUnpickleTests,)
    if _mixin("BigmemPickleTests") is not None:
        # Skipped by test.support unless a memory limit is configured (-M).
        _in_memory_bases += (_mixin("BigmemPickleTests"),)
    _bind(
        "TestAnyDumpsAnyLoads",
        _in_memory_bases,
        {
            "pickler": anypickle.Pickler,
            "unpickler": anypickle.Unpickler,
            "dumps": lambda self, arg, protocol=None, **kw: anypickle.dumps(arg, protocol, **kw),
            "loads": lambda self, buf, **kw: anypickle.loads(buf, **kw),
            **_C_ERRORS,
        },
    )

    # --- AbstractPickleTests through Pickler/Unpickler objects, both directions -------
    for _name, _pickler in (
        ("TestAnyPicklerAnyUnpickler", anypickle.Pickler),
        ("TestCPicklerAnyUnpickler", pickle.Pickler),
        ("TestPyPicklerAnyUnpickler", pickle._Pickler),
    ):
        _bind(
            _name,
            (_AbstractPickleTests,),
            {
                "pickler": _pickler,
                "unpickler": anypickle.Unpickler,
                "dumps": lambda self, arg, proto=None, **kw: pickler_dumps(
                    self.pickler, arg, proto, **kw
                ),
                "loads": lambda self, buf, **kw: file_loads(self.unpickler, buf, **kw),
            },
        )

# --- AbstractPickleModuleTests: the module-level API, reader included -----------------

_AbstractPickleModuleTests = _mixin("AbstractPickleModuleTests")
if _AbstractPickleModuleTests is not None:
    _bind(
        "TestAnyPickleModuleReader",
        (_AbstractPickleModuleTests,),
        {
            "dump": staticmethod(anypickle.dump),
            "dumps": staticmethod(anypickle.dumps),
            "load": staticmethod(anypickle.load),
            "loads": staticmethod(anypickle.loads),
            "Pickler": anypickle.Pickler,
            "Unpickler": anypickle.Unpickler,
        },
    )


# --- persistent_load defined on an Unpickler subclass --------------------------------


for _mixin_name, _prefix in (
    ("AbstractPersistentPicklerTests", "PersistentPickler"),
    ("AbstractIdentityPersistentPicklerTests", "IdentityPersistentPickler"),
):
    if _mixin(_mixin_name) is None:
        continue
    for _writer_name, _pickler in (("Any", anypickle.Pickler), ("C", pickle.Pickler)):
        _bind(
            f"Test{_writer_name}{_prefix}AnyUnpickler",
            (_mixin(_mixin_name), PersistentHooks),
            {
                "pickler": _pickler,
                "unpickler": anypickle.Unpickler,
                "persistent_load_error": pickle.UnpicklingError,
            },
        )


# --- Unpickler objects: memo priming, reuse, several pickles per file ----------------


def _test_issue18339(self):
    """From CPython's CPicklerUnpicklerObjectTests: bad memo assignments, no crash."""
    unpickler = self.unpickler_class(io.BytesIO())
    with self.assertRaises(TypeError):
        unpickler.memo = object
    # used to cause a segfault
    with self.assertRaises(ValueError):
        unpickler.memo = {-1: None}
    unpickler.memo = {1: None}


_AbstractPicklerUnpicklerObjectTests = _mixin("AbstractPicklerUnpicklerObjectTests")
if _AbstractPicklerUnpicklerObjectTests is not None:
    for _writer_name, _pickler in (("Any", anypickle.Pickler), ("C", pickle.Pickler)):
        _bind(
            f"Test{_writer_name}PicklerAnyUnpicklerObjects",
            (_AbstractPicklerUnpicklerObjectTests,),
            {
                "pickler_class": _pickler,
                "unpickler_class": anypickle.Unpickler,
                "test_issue18339": _test_issue18339,
            },
        )

# --- reducer_override and dispatch_table, read back by anypickle (routed) -----------

_AbstractHookTests = _mixin("AbstractHookTests")
_AbstractCustomPicklerClass = _mixin("AbstractCustomPicklerClass")
if _AbstractHookTests is not None and _AbstractCustomPicklerClass is not None:

    class AnyPicklerWithReducerOverride(anypickle.Pickler, _AbstractCustomPicklerClass):
        """anypickle.Pickler subclass with pickletester's reducer_override."""

    _bind(
        "TestAnyPicklerHooksAnyLoads",
        (_AbstractHookTests,),
        {"pickler_class": AnyPicklerWithReducerOverride},
    )

_AbstractDispatchTableTests = _mixin("AbstractDispatchTableTests")
if _AbstractDispatchTableTests is not None:
    _bind(
        "TestAnyDispatchTableAnyLoads",
        (_AbstractDispatchTableTests,),
        {
            "pickler_class": anypickle.Pickler,
            "get_dispatch_table": lambda self: pickle.dispatch_table.copy(),
        },
    )
    _bind(
        "TestAnyChainMapDispatchTableAnyLoads",
        (_AbstractDispatchTableTests,),
        {
            "pickler_class": anypickle.Pickler,
            "get_dispatch_table": lambda self: collections.ChainMap({}, pickle.dispatch_table),
        },
    )


globals().update(_BOUND)


@pytest.fixture(autouse=True)
def _tests_write_in_tmp_path(tmp_path, monkeypatch):
    """Some mix-ins create files named after test.support.TESTFN in the cwd.

    test_unpickle_module_race imports modules from a relative TESTFN directory:
    the import system's directory caches must not remember the previous test's.
    """
    monkeypatch.chdir(tmp_path)
    # Python 3.10 keeps finders of relative sys.path entries (bound to the old cwd).
    for entry in [e for e in sys.path_importer_cache if not os.path.isabs(e)]:
        del sys.path_importer_cache[entry]
    importlib.invalidate_caches()


# Mix-ins that never unpickle: bound to the writer in test_cpython_pickletester.py only.
WRITER_ONLY_MIXINS = {
    # 3.13+: pickling errors; nothing is loaded.
    "AbstractPicklingErrorTests",
    # Helper base of AbstractHookTests, bound through AnyPicklerWithReducerOverride.
    "AbstractCustomPicklerClass",
}


def test_every_reader_side_mixin_is_bound():
    """Guard against a silent loss of coverage on a new Python version.

    Every ``Abstract*Tests`` mix-in this interpreter ships must be bound above
    or listed in ``WRITER_ONLY_MIXINS`` with its reason.
    """
    bound_mixins = {
        base.__name__ for cls in _BOUND.values() for base in cls.__mro__ if base is not cls
    }
    shipped = {
        name
        for name, value in vars(pickletester).items()
        if isinstance(value, type) and name.startswith("Abstract") and name.endswith("Tests")
    }
    missing = shipped - bound_mixins - WRITER_ONLY_MIXINS
    assert not missing, f"pickletester mix-ins not bound to anypickle's reader: {sorted(missing)}"
    assert "AbstractUnpickleTests" in bound_mixins


def test_bound_classes_read_with_anypickle():
    """Every binding reads with anypickle (its loads/unpickler attributes are anypickle's)."""
    for name, cls in _BOUND.items():
        readers = [
            getattr(cls, attr)
            for attr in ("unpickler", "unpickler_class", "Unpickler")
            if hasattr(cls, attr)
        ]
        for reader in readers:
            assert issubclass(reader, anypickle.Unpickler) or reader is anypickle.Unpickler, name
        if "loads" in vars(cls) and isinstance(vars(cls)["loads"], staticmethod):
            assert cls.loads is anypickle.loads, name


def test_routing_proxy_is_removed_after_each_test():
    assert pickletester.pickle is pickle


def test_protocol_0_persistent_id_message():
    """What test_protocol0_is_ascii_only checks on 3.13, with anypickle's location suffix."""

    class U(anypickle.Unpickler):
        def persistent_load(self, pid):
            return pid

    data = pickle.PERSID + "\N{EMPTY SET}".encode() + b"\n."
    with pytest.raises(pickle.UnpicklingError) as info:
        U(io.BytesIO(data)).load()
    assert str(info.value).startswith("persistent IDs in protocol 0 must be ASCII strings")
    assert "PERSID" in str(info.value) and "offset 0" in str(info.value)
