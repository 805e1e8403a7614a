"""Exception classes raised by anypickle's reader for corrupt or hostile data.

CPython's C unpickler lets assorted builtin exceptions escape on corrupt input
(``ValueError``, ``UnicodeDecodeError``, ``OverflowError``, ``KeyError``,
``TypeError``...).  anypickle raises :class:`pickle.UnpicklingError` for every
problem with the data itself; where the stdlib would have raised a builtin, the
class raised also inherits that builtin, so ``except ValueError`` code keeps
working.  Every message ends with the opcode and the byte offset, e.g.
``"invalid literal for INT (opcode INT at offset 2)"``.

Exceptions raised by code that the pickle calls (``find_class``, a
reconstructor, ``__setstate__``, ``persistent_load``) propagate unchanged, as
in the stdlib.

Example:
    >>> import anypickle
    >>> try:
    ...     anypickle.loads(b"I12x\\n.")
    ... except anypickle.PickleValueError as exc:
    ...     isinstance(exc, ValueError), isinstance(exc, anypickle.UnpicklingError)
    (True, True)
"""

from __future__ import annotations

from pickle import PicklingError, UnpicklingError


class PickleValueError(UnpicklingError, ValueError):
    """A literal in the stream is invalid (bad int/float text, bad escape, bad length)."""


class PickleUnicodeDecodeError(UnpicklingError, UnicodeDecodeError):
    """A string in the stream cannot be decoded with its encoding."""


class PickleOverflowError(UnpicklingError, OverflowError):
    """A number in the stream is out of the range the opcode allows."""


class PickleTypeError(UnpicklingError, TypeError):
    """An opcode got an object of the wrong type (e.g. REDUCE arguments that are not a tuple)."""


class PickleKeyError(UnpicklingError, KeyError):
    """A GET opcode named a memo index that was never PUT."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; show the message as written.
        return str(self.args[0]) if self.args else ""


__all__ = [
    "PickleKeyError",
    "PickleOverflowError",
    "PickleTypeError",
    "PickleUnicodeDecodeError",
    "PickleValueError",
]


class PicklingTypeError(PicklingError, TypeError):
    """An object deep inside what was being pickled cannot be pickled.

    Raised by the writer instead of the ``TypeError`` the object's own
    reduction raised (e.g. "cannot pickle '_thread.lock' object"), with the
    path to it appended: ``"... (at obj.handlers[0].__closure__[1])"``. It is
    still a ``TypeError``, as the stdlib's error was.
    """
