"""Reading functions of anypickle.

The writing functions (``dumps``, ``dump``, ``Pickler``) are Rust functions in
:mod:`anypickle._core`, exported as they are so that a call costs no extra
Python frame.  Until the Rust reader lands, reading forwards to the stdlib.
"""

from __future__ import annotations

import pickle as _pickle
from collections.abc import Iterable
from typing import IO, Any


def loads(
    data: bytes,
    /,
    *,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    buffers: Iterable[Any] | None = None,
) -> Any:
    """Return the object pickled in ``data``.

    Reads any pickle (stdlib, cloudpickle, dill, anypickle).  For now this
    forwards to the standard library's reader.

    Example:
        >>> import anypickle
        >>> anypickle.loads(anypickle.dumps((1, 2)))
        (1, 2)
    """
    return _pickle.loads(
        data, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
    )


def load(
    file: IO[bytes],
    *,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    buffers: Iterable[Any] | None = None,
) -> Any:
    """Read one pickle from the binary file ``file`` and return its object.

    Example:
        >>> import io, anypickle
        >>> anypickle.load(io.BytesIO(anypickle.dumps("hi")))
        'hi'
    """
    return _pickle.load(
        file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
    )
