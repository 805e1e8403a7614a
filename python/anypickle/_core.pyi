"""Type stubs for the Rust extension module ``anypickle._core``."""

import types
from collections.abc import Callable, Iterable
from pickle import PickleBuffer
from types import ModuleType
from typing import IO, Any

_BufferCallback = Callable[[PickleBuffer], Any]

#: Deepest container nesting the writer accepts before raising RecursionError.
MAX_DEPTH: int
#: Whether loading pauses the cyclic GC when ``pause_gc`` is None.
DEFAULT_PAUSE_GC: bool

def dumps(
    obj: Any,
    protocol: int | None = None,
    *,
    fix_imports: bool = True,
    buffer_callback: _BufferCallback | None = None,
    deterministic: bool = True,
    by_value: Iterable[ModuleType | str] | None = None,
) -> bytes: ...
def dump(
    obj: Any,
    file: IO[bytes],
    protocol: int | None = None,
    *,
    fix_imports: bool = True,
    buffer_callback: _BufferCallback | None = None,
    deterministic: bool = True,
    by_value: Iterable[ModuleType | str] | None = None,
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
        by_value: Iterable[ModuleType | str] | None = None,
    ) -> None: ...
    def _setup(
        self,
        file: IO[bytes],
        protocol: int | None = None,
        *,
        fix_imports: bool = True,
        buffer_callback: _BufferCallback | None = None,
        deterministic: bool = True,
        by_value: Iterable[ModuleType | str] | None = None,
    ) -> None: ...
    def dump(self, obj: Any, /) -> None: ...
    def clear_memo(self) -> None: ...

def loads(
    data: bytes | bytearray | memoryview,
    /,
    *,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    buffers: Iterable[Any] | None = None,
    pause_gc: bool | None = None,
) -> Any: ...
def load(
    file: IO[bytes],
    *,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    buffers: Iterable[Any] | None = None,
    pause_gc: bool | None = None,
) -> Any: ...

class UnpicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> dict[int, Any]: ...

class Unpickler:
    memo: UnpicklerMemoProxy | dict[int, Any]
    def __init__(
        self,
        file: IO[bytes],
        *,
        fix_imports: bool = True,
        encoding: str = "ASCII",
        errors: str = "strict",
        buffers: Iterable[Any] | None = None,
        pause_gc: bool | None = None,
    ) -> None: ...
    def _setup(
        self,
        file: IO[bytes],
        *,
        fix_imports: bool = True,
        encoding: str = "ASCII",
        errors: str = "strict",
        buffers: Iterable[Any] | None = None,
        pause_gc: bool | None = None,
    ) -> None: ...
    def load(self) -> Any: ...
    def find_class(self, module: str, name: str, /) -> Any: ...

# Reconstructors of by-value functions (bound in anypickle._reconstruct).
def code(python_version: str, *fields: Any) -> types.CodeType: ...
def function(
    code: types.CodeType,
    base_globals: dict[str, Any],
    name: str,
    closure: tuple[types.CellType, ...] | None,
) -> types.FunctionType: ...
def function_state(func: types.FunctionType, state: dict[str, Any]) -> None: ...
def cell() -> types.CellType: ...
def cell_state(target: types.CellType, contents: Any) -> None: ...
