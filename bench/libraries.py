"""The serializers the benchmark compares, behind one small calling convention.

Every :class:`Library` exposes ``dumps(obj)`` / ``dumps(obj, buffer_callback=cb)`` and
``loads(data)`` / ``loads(data, buffers=bufs)``.  The callables are
:func:`functools.partial` objects over each library's own function, so the call overhead
the harness adds is the same (and as small as it can be) for every library.

All libraries write pickle protocol 5.  A library that cannot be imported is skipped with
a note instead of aborting the run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROTOCOL = 5

#: Every library name the harness knows, in table order.
ALL_LIBRARIES: tuple[str, ...] = (
    "pickle",
    "cloudpickle",
    "dill",
    "anypickle",
    "anypickle-nd",
    "anypickle-gc",
)


@dataclass(frozen=True)
class Library:
    """One serializer under test (or the memcpy reference row).

    ``reference`` marks a row that is not a serializer (the memcpy baseline): it is timed
    like the others but skipped by the correctness checks and the summary tables.
    """

    name: str
    version: str
    dumps: Callable[..., Any]
    loads: Callable[..., Any]
    reference: bool = False


def _version(module: Any, dist: str) -> str:
    """Best-effort version string of an imported module."""
    found = getattr(module, "__version__", None)
    if isinstance(found, str):
        return found
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _pickle_flavour() -> str:
    """Say whether ``pickle.dumps`` is the C accelerator (it should be on CPython)."""
    return "C accelerator" if pickle.Pickler.__module__ == "_pickle" else "pure Python"


def load_libraries(wanted: list[str]) -> tuple[list[Library], list[str]]:
    """Import the wanted libraries; return the usable ones and notes about skipped ones."""
    libs: list[Library] = []
    notes: list[str] = []
    for name in wanted:
        if name == "pickle":
            libs.append(
                Library(
                    "pickle",
                    f"stdlib ({_pickle_flavour()})",
                    functools.partial(pickle.dumps, protocol=PROTOCOL),
                    pickle.loads,
                )
            )
            continue
        module_name = "anypickle" if name.startswith("anypickle") else name
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure means "skip it"
            notes.append(f"{name}: skipped, cannot import {module_name} ({exc!r})")
            continue
        version = _version(module, module_name)
        if name == "anypickle":
            dumps = functools.partial(module.dumps, protocol=PROTOCOL, deterministic=True)
        elif name == "anypickle-nd":
            dumps = functools.partial(module.dumps, protocol=PROTOCOL, deterministic=False)
        else:
            dumps = functools.partial(module.dumps, protocol=PROTOCOL)
        loads = module.loads
        if name == "anypickle-gc":
            # The reader with the garbage collector left running while loading.
            dumps = functools.partial(module.dumps, protocol=PROTOCOL)
            loads = functools.partial(module.loads, pause_gc=False)
        libs.append(Library(name, version, dumps, loads))
    return libs, notes


def describe_anypickle() -> str:
    """One line saying which anypickle is imported, from where, and who writes."""
    try:
        module = importlib.import_module("anypickle")
    except Exception as exc:
        return f"not importable ({exc!r})"
    writer = getattr(module.dumps, "__module__", None) or "?"
    return f"{_version(module, 'anypickle')} from {module.__file__} (dumps from {writer})"


def memcpy_reference(nbytes: int) -> Library:
    """A pseudo-library whose dumps and loads each copy ``nbytes`` into fresh memory.

    ``bytes(bytearray)`` allocates a new ``bytes`` object and copies once, which is the
    least any serializer that returns a fresh ``bytes`` (or a fresh array) must do.
    """
    source = bytearray(nbytes)

    def copy_once(*_args: Any, **_kwargs: Any) -> bytes:
        return bytes(source)

    return Library("memcpy", f"bytes(bytearray({nbytes:,}))", copy_once, copy_once, True)
