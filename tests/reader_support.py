"""Helpers shared by the reader tests (``test_reader_*.py``).

* ``READER_ERRORS``: the exception classes anypickle's reader raises for bad
  data (``anypickle.PickleValueError``...), taken from the top-level package
  once the reader exports them, else from ``anypickle._errors``.
* ``outcome(call)``: ``("ok", value)`` or ``("raised", exception)``.
* ``reader_exception_matches(got, expected)``: whether anypickle's exception
  ``got`` is acceptable where the stdlib's unpickler raised ``expected``.
* ``assert_loads_like_stdlib(data, ...)``: load ``data`` with ``pickle.loads``
  and ``anypickle.loads`` and require the same outcome.
* file-like classes used to feed ``load``/``Unpickler``: ``UnseekableIO``,
  ``MinimalIO`` (only ``read`` and ``readline``), ``ShortReadRaw`` (a raw
  stream whose ``readinto`` returns at most a few bytes).
"""

from __future__ import annotations

import io
import pickle

import anypickle
from anypickle import _errors
from conftest import assert_equivalent

_ERROR_NAMES = (
    "PickleValueError",
    "PickleUnicodeDecodeError",
    "PickleOverflowError",
    "PickleTypeError",
    "PickleKeyError",
)

#: name -> class, preferring the classes exported by the anypickle package.
READER_ERRORS = {name: getattr(anypickle, name, getattr(_errors, name)) for name in _ERROR_NAMES}


def outcome(call):
    """Run ``call()``: ``("ok", result)`` or ``("raised", exception)``.

    Only ``Exception`` is caught: a ``KeyboardInterrupt`` must not be turned
    into a test result.
    """
    try:
        return ("ok", call())
    except Exception as exc:
        return ("raised", exc)


def reader_exception_matches(got, expected):
    """Whether anypickle's exception ``got`` may stand for the stdlib's ``expected``.

    Either the very same class (exceptions from ``find_class``, reconstructors,
    ``persistent_load`` propagate unchanged, and ``EOFError`` stays
    ``EOFError``), or a subclass of the stdlib's class that is also an
    ``UnpicklingError`` (``PickleValueError`` for a ``ValueError``, or any
    ``UnpicklingError`` subclass for an ``UnpicklingError``).
    """
    if type(got) is type(expected):
        return True
    return isinstance(got, type(expected)) and isinstance(got, pickle.UnpicklingError)


def assert_same_outcome(expected, got, what="anypickle"):
    """Compare two ``outcome()`` results: equivalent values or matching exceptions."""
    kind_e, value_e = expected
    kind_g, value_g = got
    if kind_e == "raised":
        assert kind_g == "raised", (
            f"{what} returned {value_g!r:.200} where the stdlib raised "
            f"{type(value_e).__name__}: {value_e}"
        )
        assert reader_exception_matches(value_g, value_e), (
            f"{what} raised {type(value_g).__name__}: {value_g}; "
            f"the stdlib raises {type(value_e).__name__}: {value_e}"
        )
    else:
        if kind_g == "raised":
            raise AssertionError(
                f"{what} raised {type(value_g).__name__}: {value_g} "
                f"where the stdlib returned {value_e!r:.200}"
            ) from value_g
        assert_equivalent(value_e, value_g)


def assert_loads_like_stdlib(data, **kwargs):
    """``anypickle.loads(data, **kwargs)`` behaves as ``pickle.loads(data, **kwargs)``.

    Returns the value anypickle loaded (``None`` when both raised).
    """
    expected = outcome(lambda: pickle.loads(data, **kwargs))
    got = outcome(lambda: anypickle.loads(data, **kwargs))
    assert_same_outcome(expected, got, "anypickle.loads")
    return got[1] if got[0] == "ok" else None


# --------------------------------------------------------------------------------------
# File-like objects
# --------------------------------------------------------------------------------------


class UnseekableIO(io.BytesIO):
    """A BytesIO that refuses seek/tell (as CPython's pickletester.UnseekableIO)."""

    def peek(self, *args):
        raise NotImplementedError

    def seekable(self):
        return False

    def seek(self, *args):
        raise io.UnsupportedOperation

    def tell(self):
        raise io.UnsupportedOperation


class MinimalIO:
    """Only ``read`` and ``readline`` (no peek, readinto, seek); counts the bytes consumed."""

    def __init__(self, data=b""):
        self._bio = io.BytesIO(data)

    def read(self, *args):
        return self._bio.read(*args)

    def readline(self, *args):
        return self._bio.readline(*args)

    def tell(self):
        return self._bio.tell()


class ShortReadRaw(io.RawIOBase):
    """A raw stream whose ``readinto`` (hence ``read``) returns at most ``chunk`` bytes.

    It has no ``peek``; ``read(n)`` may return fewer than ``n`` bytes before
    the end of the data, as a pipe or a socket does.
    """

    def __init__(self, data, chunk=3):
        super().__init__()
        self._data = bytes(data)
        self._pos = 0
        self._chunk = chunk

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self._chunk, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    def seekable(self):
        return False

    def tell(self):
        return self._pos
