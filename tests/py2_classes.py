# ruff: noqa: UP004
"""Classes named by the Python 2 pickles in ``tests/data/py2`` (module ``py2_classes``).

This module is imported by Python 2.7 when the pickles are generated
(``tests/data/py2/generate_py2_pickles.py``) and by Python 3 when they are
loaded, so it is written in the common subset of both languages.  Under
Python 2, ``OldStyle`` and ``OldStyleInitArgs`` are classic classes (pickled
with the INST opcode at protocol 0 and OBJ at 1-2); the others are new-style
classes (pickled through ``copy_reg._reconstructor`` at protocols 0-1 and
NEWOBJ at protocol 2).  The tests compare instances structurally
(``conftest.assert_equivalent``), so no class defines ``__eq__``.
"""


class OldStyle:
    """A classic class under Python 2."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class OldStyleInitArgs:
    """A classic class with __getinitargs__: its arguments are written into INST/OBJ."""

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __getinitargs__(self):
        return (self.a, self.b)


class NewStyle(object):
    """A new-style class with a plain __dict__."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class NewStyleState(object):
    """A new-style class with __getstate__/__setstate__ (the state is a tuple)."""

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __getstate__(self):
        return (self.a, self.b)

    def __setstate__(self, state):
        self.a, self.b = state


class NewStyleSlots(object):
    """__slots__ only: Python 2 pickles it at protocol 2 with a (None, slots) state."""

    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b


def make_reduced(value):
    return Reduced(value)


class Reduced(object):
    """__reduce__ returning (module-level function, args)."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (make_reduced, (self.value,))
