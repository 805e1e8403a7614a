"""The public ``Unpickler`` class: a thin Python layer over the Rust reader.

The Rust base class (:class:`anypickle._core.Unpickler`) holds the state and
implements ``load`` and the built-in ``find_class``; this subclass exists so
that ``__init__`` behaves as ``pickle.Unpickler.__init__`` does (subclasses
call ``super().__init__``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from anypickle import _core


class Unpickler(_core.Unpickler):
    """Read pickles from a binary file, like :class:`pickle.Unpickler`.

    Override ``find_class(module, name)`` to control which globals a pickle
    may load, and define ``persistent_load(pid)`` to resolve persistent ids;
    both may also be set on an instance. ``memo`` is readable
    (``memo.copy()``), clearable and assignable, and persists across
    ``load()`` calls. Each ``load()`` consumes exactly one pickle from the
    file. ``pause_gc`` pauses the cyclic garbage collector while loading
    (None: anypickle's default).

    Example:
        >>> import io, anypickle
        >>> class OnlyBuiltins(anypickle.Unpickler):
        ...     def find_class(self, module, name):
        ...         if module == "builtins":
        ...             return super().find_class(module, name)
        ...         raise anypickle.UnpicklingError(f"{module}.{name} is forbidden")
        >>> OnlyBuiltins(io.BytesIO(anypickle.dumps(range(3), 3))).load()
        range(0, 3)
        >>> OnlyBuiltins(io.BytesIO(anypickle.dumps(print, 2))).load()
        Traceback (most recent call last):
          ...
        _pickle.UnpicklingError: __builtin__.print is forbidden
    """

    def __init__(
        self,
        file: IO[bytes],
        *,
        fix_imports: bool = True,
        encoding: str = "ASCII",
        errors: str = "strict",
        buffers: Iterable[Any] | None = None,
        pause_gc: bool | None = None,
    ) -> None:
        self._setup(
            file,
            fix_imports=fix_imports,
            encoding=encoding,
            errors=errors,
            buffers=buffers,
            pause_gc=pause_gc,
        )
