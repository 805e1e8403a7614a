"""anypickle: a pickle-protocol serializer with a Rust core.

Both sides are implemented in Rust. What the stdlib can only pickle by name
but not find again (lambdas, closures, local and ``__main__`` classes, code
objects) is pickled by value, loadable by plain ``pickle.loads`` in a process
that lacks the code. The writer (``dumps``, ``dump``,
``Pickler``) produces output byte-identical to CPython's C pickler by default
(``deterministic=True``). The reader (``loads``, ``load``, ``Unpickler``) reads
any pickle of protocols 0-5 and treats its input as hostile: corrupt data
raises :class:`UnpicklingError` (or a subclass that also inherits the builtin
the stdlib would raise) naming the opcode and byte offset.

Example:
    >>> import anypickle
    >>> data = anypickle.dumps({"a": [1, 2.5, "x"]})
    >>> anypickle.loads(data)
    {'a': [1, 2.5, 'x']}
"""

from __future__ import annotations

from pickle import (
    PickleBuffer,
    PickleError,
    PicklingError,
    UnpicklingError,
)

from anypickle._byvalue import (
    list_registry_pickle_by_value,
    register_pickle_by_value,
    unregister_pickle_by_value,
)
from anypickle._core import dump, dumps, load, loads
from anypickle._errors import (
    PickleKeyError,
    PickleOverflowError,
    PickleTypeError,
    PickleUnicodeDecodeError,
    PickleValueError,
    PicklingTypeError,
)
from anypickle._pickler import Pickler
from anypickle._unpickler import Unpickler

#: The protocol anypickle writes when none is given (pickle's highest).
DEFAULT_PROTOCOL: int = 5
#: The highest protocol anypickle can read and write.
HIGHEST_PROTOCOL: int = 5

__all__ = [
    "DEFAULT_PROTOCOL",
    "HIGHEST_PROTOCOL",
    "PickleBuffer",
    "PickleError",
    "PickleKeyError",
    "PickleOverflowError",
    "PickleTypeError",
    "PickleUnicodeDecodeError",
    "PickleValueError",
    "Pickler",
    "PicklingError",
    "PicklingTypeError",
    "Unpickler",
    "UnpicklingError",
    "dump",
    "dumps",
    "list_registry_pickle_by_value",
    "load",
    "loads",
    "register_pickle_by_value",
    "unregister_pickle_by_value",
]
