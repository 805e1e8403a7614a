"""Helpers shared by the two bindings of CPython's ``test.pickletester``.

``test_cpython_pickletester.py`` binds the conformance classes to anypickle's
writer and ``test_cpython_unpickletester.py`` to its reader; both build test
classes the way ``Lib/test/test_pickle.py`` does, with these pieces.
"""

from __future__ import annotations

import io
import unittest


def skip_excluded(cls: type, excluded: dict[str, str]) -> type:
    """Replace the tests of ``cls`` named in ``excluded`` by skipping stubs with the reason.

    Keys are ``"test_name"`` or ``"BindingClass.test_name"``.
    """
    for key, reason in excluded.items():
        owner, _, name = key.rpartition(".")
        if owner and owner != cls.__name__:
            continue
        if not callable(getattr(cls, name, None)):
            continue

        @unittest.skip(f"excluded for anypickle: {reason}")
        def stub(self):
            pass  # pragma: no cover

        stub.__name__ = name
        setattr(cls, name, stub)
    return cls


def pickler_dumps(pickler_class, obj, protocol=None, **kwargs) -> bytes:
    """Pickle ``obj`` through a Pickler object writing to a BytesIO."""
    buf = io.BytesIO()
    pickler_class(buf, protocol, **kwargs).dump(obj)
    return buf.getvalue()


def file_loads(unpickler_class, data: bytes, **kwargs):
    """Load ``data`` through an Unpickler object reading from a BytesIO."""
    return unpickler_class(io.BytesIO(data), **kwargs).load()


class PersistentHooks:
    """CPython's PersistentPicklerUnpicklerMixin: ad-hoc subclasses of ``self.pickler``
    and ``self.unpickler`` route ``persistent_id``/``persistent_load`` to the test case."""

    def dumps(self, arg, proto=None):
        case = self

        class PersPickler(self.pickler):
            def persistent_id(self, obj):
                return case.persistent_id(obj)

        return pickler_dumps(PersPickler, arg, proto)

    def loads(self, buf, **kwds):
        case = self

        class PersUnpickler(self.unpickler):
            def persistent_load(self, pid):
                return case.persistent_load(pid)

        return file_loads(PersUnpickler, buf, **kwds)


#: Tests of CPython's pickletester that assert a refusal anypickle lifts by
#: pickling by value (the by-value behaviour is tested in test_byvalue_*).
BY_VALUE_EXCLUSIONS: dict[str, str] = {
    "test_local_lookup_error": "asserts that a local function cannot be pickled; "
    "anypickle pickles it by value",
    "test_py_methods": "asserts that staticmethod/classmethod objects cannot be pickled; "
    "anypickle pickles them by value",
    "test_c_methods": "asserts that a staticmethod wrapping a C method cannot be pickled; "
    "anypickle pickles it by value",
    # 3.13+: a local class in a NEWOBJ / NEWOBJ_EX reduction.
    "test_unpickleable_newobj_class": "asserts that a local class cannot be pickled; "
    "anypickle pickles it by value",
    "test_unpickleable_newobj_ex_class": "asserts that a local class cannot be pickled; "
    "anypickle pickles it by value",
}
