"""CPython's own pickle conformance suite, bound to anypickle's writer.

Every CPython ships ``test.pickletester``: abstract ``unittest`` mix-ins that
CPython's ``test_pickle`` binds to its pure-Python and C picklers.  This module
binds the *pickling side* of those mix-ins to anypickle instead:

* the pickler is ``anypickle.Pickler`` (or a subclass of it),
* ``dumps``/``dump`` are ``anypickle.dumps``/``anypickle.dump``,
* the unpickler is the stdlib's C ``pickle.Unpickler`` / ``pickle.loads``.

The mix-ins differ between Python versions (3.13 added
``AbstractPicklingErrorTests``, for instance), so every binding is guarded:
a mix-in that the running interpreter does not ship is simply not bound.  When
``test.pickletester`` is missing altogether (some distributions strip the
``test`` package), the whole module is skipped.

Tests that must not run against anypickle are listed in ``EXCLUDED`` below,
each with its reason; they are reported as skipped, never silently dropped.
"""

from __future__ import annotations

import collections
import pickle
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
# Keep this minimal: an entry here hides a conformance check from the writer.
EXCLUDED: dict[str, str] = {
    # AbstractPickleModuleTests: these two only drive the unpickler (here the
    # stdlib's); no byte of anypickle's writer is involved.  They run against
    # anypickle's reader in test_cpython_unpickletester.py.
    "test_incomplete_input": "unpickler-only test (reads a hand-written pickle)",
    "test_unpickler_bad_file": "unpickler-only test (Unpickler constructor checks)",
}

# Tests asserting refusals that anypickle lifts by pickling by value.
EXCLUDED.update(BY_VALUE_EXCLUSIONS)


def _mixin(name: str) -> type | None:
    return getattr(pickletester, name, None)


# The names of the bound classes start with "Test" so that any collector finds them.
_BOUND: dict[str, type] = {}


def _bind(name: str, bases: tuple[type, ...], namespace: dict) -> None:
    cls = type(name, (*bases, unittest.TestCase), {"__module__": __name__, **namespace})
    _BOUND[name] = skip_excluded(cls, EXCLUDED)


# --- AbstractPickleTests: the bulk of the writer conformance ------------------------

_AbstractPickleTests = _mixin("AbstractPickleTests")
if _AbstractPickleTests is not None:
    # Through a Pickler object writing to a BytesIO (how CPython binds _pickle.Pickler).
    _bind(
        "TestAnyPicklerObject",
        (_AbstractPickleTests,),
        {
            "pickler": anypickle.Pickler,
            "unpickler": pickle.Unpickler,
            "dumps": lambda self, arg, proto=None, **kw: pickler_dumps(
                self.pickler, arg, proto, **kw
            ),
            "loads": lambda self, buf, **kw: file_loads(pickle.Unpickler, buf, **kw),
        },
    )

    # Through the module-level anypickle.dumps (the in-memory fast path).
    _in_memory_bases = (_AbstractPickleTests,)
    if _mixin("BigmemPickleTests") is not None:
        # Skipped by test.support unless a memory limit is configured (-M).
        _in_memory_bases += (_mixin("BigmemPickleTests"),)
    _bind(
        "TestAnyDumpsFunction",
        _in_memory_bases,
        {
            "pickler": anypickle.Pickler,
            "unpickler": pickle.Unpickler,
            "dumps": lambda self, arg, protocol=None, **kw: anypickle.dumps(arg, protocol, **kw),
            "loads": lambda self, buf, **kw: pickle.loads(buf, **kw),
        },
    )

# --- AbstractPicklingErrorTests (3.13+): error paths of the writer ---------------------

_AbstractPicklingErrorTests = _mixin("AbstractPicklingErrorTests")
if _AbstractPicklingErrorTests is not None:
    _bind(
        "TestAnyPicklingErrors",
        (_AbstractPicklingErrorTests,),
        {
            "pickler": anypickle.Pickler,
            "dumps": lambda self, arg, proto=None, **kw: pickler_dumps(
                self.pickler, arg, proto, **kw
            ),
        },
    )
    _bind(
        "TestAnyDumpsPicklingErrors",
        (_AbstractPicklingErrorTests,),
        {
            "pickler": anypickle.Pickler,
            "dumps": lambda self, arg, proto=None, **kw: anypickle.dumps(arg, proto, **kw),
        },
    )

# --- AbstractPickleModuleTests: module-level dump/dumps/Pickler API --------------------

_AbstractPickleModuleTests = _mixin("AbstractPickleModuleTests")
if _AbstractPickleModuleTests is not None:
    _bind(
        "TestAnyPickleModule",
        (_AbstractPickleModuleTests,),
        {
            "dump": staticmethod(anypickle.dump),
            "dumps": staticmethod(anypickle.dumps),
            "load": staticmethod(pickle.load),
            "loads": staticmethod(pickle.loads),
            "Pickler": anypickle.Pickler,
            "Unpickler": pickle.Unpickler,
        },
    )


# --- persistent_id defined on a Pickler subclass ------------------------------------


for _name, _binding in (
    ("AbstractPersistentPicklerTests", "TestAnyPersistentPickler"),
    ("AbstractIdentityPersistentPicklerTests", "TestAnyIdentityPersistentPickler"),
):
    if _mixin(_name) is not None:
        _bind(
            _binding,
            (_mixin(_name), PersistentHooks),
            {
                "pickler": anypickle.Pickler,
                "unpickler": pickle.Unpickler,
                "persistent_load_error": pickle.UnpicklingError,
            },
        )

# --- Pickler objects: memo, clear_memo, reuse, reducer_override validation ------------

_AbstractPicklerUnpicklerObjectTests = _mixin("AbstractPicklerUnpicklerObjectTests")
if _AbstractPicklerUnpicklerObjectTests is not None:
    _bind(
        "TestAnyPicklerObjectSemantics",
        (_AbstractPicklerUnpicklerObjectTests,),
        {"pickler_class": anypickle.Pickler, "unpickler_class": pickle.Unpickler},
    )

# --- dispatch_table (class-wide and per instance) ----------------------------------

_AbstractDispatchTableTests = _mixin("AbstractDispatchTableTests")
if _AbstractDispatchTableTests is not None:
    _bind(
        "TestAnyDispatchTable",
        (_AbstractDispatchTableTests,),
        {
            "pickler_class": anypickle.Pickler,
            "get_dispatch_table": lambda self: pickle.dispatch_table.copy(),
        },
    )
    _bind(
        "TestAnyChainMapDispatchTable",
        (_AbstractDispatchTableTests,),
        {
            "pickler_class": anypickle.Pickler,
            "get_dispatch_table": lambda self: collections.ChainMap({}, pickle.dispatch_table),
        },
    )

# --- reducer_override on a subclass ----------------------------------------------

_AbstractHookTests = _mixin("AbstractHookTests")
_AbstractCustomPicklerClass = _mixin("AbstractCustomPicklerClass")
if _AbstractHookTests is not None and _AbstractCustomPicklerClass is not None:

    class AnyPicklerWithReducerOverride(anypickle.Pickler, _AbstractCustomPicklerClass):
        """anypickle.Pickler subclass with pickletester's reducer_override."""

    _bind(
        "TestAnyPicklerHooks",
        (_AbstractHookTests,),
        {"pickler_class": AnyPicklerWithReducerOverride},
    )


globals().update(_BOUND)


@pytest.fixture(autouse=True)
def _tests_write_in_tmp_path(tmp_path, monkeypatch):
    """Some mix-ins create files named after test.support.TESTFN in the cwd."""
    monkeypatch.chdir(tmp_path)


def test_every_pickler_side_mixin_is_bound():
    """Guard against a silent loss of coverage on a new Python version.

    Each pickling-side mix-in this interpreter ships must be bound above; a new
    ``Abstract*Tests`` class in ``test.pickletester`` that is not listed here
    as bound or as deliberately unbound fails this test, so someone looks at it.
    """
    bound_mixins = {
        base.__name__ for cls in _BOUND.values() for base in cls.__mro__ if base is not cls
    }
    deliberately_unbound = {
        # The reading side: bound to anypickle's reader in test_cpython_unpickletester.py.
        "AbstractUnpickleTests",
        # Helper base of AbstractHookTests, bound through AnyPicklerWithReducerOverride.
        "AbstractCustomPicklerClass",
    }
    shipped = {
        name
        for name, value in vars(pickletester).items()
        if isinstance(value, type) and name.startswith("Abstract") and name.endswith("Tests")
    }
    shipped |= {"BigmemPickleTests"} & set(vars(pickletester))
    missing = shipped - bound_mixins - deliberately_unbound
    assert not missing, f"pickletester mix-ins not bound to anypickle: {sorted(missing)}"
    assert _BOUND, "no mix-in was bound at all"
