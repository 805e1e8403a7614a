"""Type stubs for the Rust extension module ``anypickle._core``."""

from collections.abc import Callable
from pickle import PickleBuffer
from typing import IO, Any

_BufferCallback = Callable[[PickleBuffer], Any]

#: Deepest container nesting the writer accepts before raising RecursionError.
MAX_DEPTH: int

def dumps(
    obj: Any,
    protocol: int | None = None,
    *,
    fix_imports: bool = True,
    buffer_callback: _BufferCallback | None = None,
    deterministic: bool = True,
) -> bytes: ...
def dump(
    obj: Any,
    file: IO[bytes],
    protocol: int | None = None,
    *,
    fix_imports: bool = True,
    buffer_callback: _BufferCallback | None = None,
    deterministic: bool = True,
) -> None: ...

class PicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> dict[int, tuple[int, Any]]: ...

class Pickler:
    fast: bool
    memo: PicklerMemoProxy
    def __init__(
        self,
        file: IO[bytes],
        protocol: int | None = None,
        *,
        fix_imports: bool = True,
        buffer_callback: _BufferCallback | None = None,
        deterministic: bool = True,
    ) -> None: ...
    def dump(self, obj: Any, /) -> None: ...
    def clear_memo(self) -> None: ...
