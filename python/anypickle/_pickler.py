"""The public ``Pickler`` class: a thin Python layer over the Rust writer.

The Rust base class (:class:`anypickle._core.Pickler`) holds the state and
implements ``dump``; this subclass exists so that ``__init__`` behaves as
``pickle.Pickler.__init__`` does (subclasses call ``super().__init__``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import IO, Any

from anypickle import _core


class Pickler(_core.Pickler):
    """Write pickles to a binary file, like :class:`pickle.Pickler`.

    Honours the hooks ``persistent_id``, ``reducer_override`` and
    ``dispatch_table`` (defined on a subclass or set on an instance), the
    ``memo`` (``memo.copy()``, ``memo.clear()``, assignable), ``clear_memo()``
    and ``fast``. With ``deterministic=True`` (the default) the bytes written
    are identical to ``pickle.Pickler``'s; ``deterministic=False`` memoizes
    only objects that are really shared. Functions and classes that cannot be
    found again by name, or whose module is in ``by_value``, are pickled by
    value (see :func:`anypickle.dumps`).

    Example:
        >>> import io, pickle, anypickle
        >>> f = io.BytesIO()
        >>> anypickle.Pickler(f, 4).dump({"a": (1, 2)})
        >>> f.getvalue() == pickle.dumps({"a": (1, 2)}, 4)
        True
    """

    def __init__(
        self,
        file: IO[bytes],
        protocol: int | None = None,
        *,
        fix_imports: bool = True,
        buffer_callback: Callable[[Any], Any] | None = None,
        deterministic: bool = True,
        by_value: Iterable[ModuleType | str] | None = None,
    ) -> None:
        self._setup(
            file,
            protocol,
            fix_imports=fix_imports,
            buffer_callback=buffer_callback,
            deterministic=deterministic,
            by_value=by_value,
        )
