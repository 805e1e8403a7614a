"""anypickle: a pickle-protocol serializer with a Rust core.

The writing side (``dumps``, ``dump``, ``Pickler``) is implemented in Rust and
produces output byte-identical to CPython's C pickler by default
(``deterministic=True``).  Until the Rust reader lands, the reading side
(``loads``, ``load``, ``Unpickler``) forwards to the standard library.

Example:
    >>> import anypickle
    >>> data = anypickle.dumps({"a": [1, 2.5, "x"]})
    >>> anypickle.loads(data)
    {'a': [1, 2.5, 'x']}
"""

from __future__ import annotations

import pickle as _pickle
from pickle import (
    PickleBuffer,
    PickleError,
    PicklingError,
    UnpicklingError,
)

from anypickle._api import load, loads
from anypickle._core import dump, dumps
from anypickle._pickler import Pickler

Unpickler = _pickle.Unpickler

#: The protocol anypickle writes when none is given (pickle's highest).
DEFAULT_PROTOCOL: int = 5
#: The highest protocol anypickle can read and write.
HIGHEST_PROTOCOL: int = 5

__all__ = [
    "DEFAULT_PROTOCOL",
    "HIGHEST_PROTOCOL",
    "PickleBuffer",
    "PickleError",
    "Pickler",
    "PicklingError",
    "Unpickler",
    "UnpicklingError",
    "dump",
    "dumps",
    "load",
    "loads",
]
