"""Hostile-input catalogue for anypickle's reader (``loads``, ``load``, ``Unpickler``).

Every entry of ``CASES`` is a name, the bytes (spelled with the opcode constants
of :mod:`pickle`), what anypickle's reader must do with them, and what the
stdlib's C ``pickle.loads`` does on CPython 3.11 (the ``stdlib`` column, checked
by ``test_stdlib_column``; it documents where the two readers differ).

The reader's contract, as asserted here:

* ``EOFError`` when the input is empty or ends where an opcode is expected; its
  message contains ``offset N`` (N = where the opcode was expected).
* Every other problem with the data raises ``pickle.UnpicklingError`` or one of
  the subclasses in ``anypickle._errors``.  Where the C reader raises a builtin
  (ValueError, UnicodeDecodeError, KeyError for the memo, TypeError for REDUCE
  arguments ...) anypickle's class also inherits that builtin.  Messages end with
  ``(opcode NAME at offset N)``: NAME is the pickletools name, N the byte offset
  of the opcode in the input.
* Exceptions from ``find_class`` (a missing module or name) and from objects the
  pickle calls propagate unchanged.
* Where the data is odd but loadable, the reader matches CPython (extra stack
  items under the top at STOP are ignored, POP pops a MARK, MEMOIZE uses the
  memo's size, trailing bytes after STOP are ignored, lone surrogates encoded
  as in 'surrogatepass' are valid UTF-8, number text is read as ``int(text, 0)``
  reads it ...).  Frames are checked strictly: a frame longer than the data, a
  FRAME inside a frame, an opcode or argument running past its frame's end are
  errors (C ``pickle`` ignores frame boundaries; ``pickle.py``'s ``_Unframer``
  catches most of these).
* A few entries accept either of two outcomes (``Either``): the contract leaves
  the choice to the reader (e.g. a MARK left open at STOP, a huge memo index).

Beside the catalogue: truncation of ~20 valid pickles at every offset,
single-byte mutations at every offset of a few small pickles (in a child
process with a memory limit: the C reader allocates ``8 * 2 * index`` bytes
for a memo PUT), every unassigned opcode byte, and 1,000,000 open MARKs (child
processes).  Resource bounds (time, memory) are in ``test_reader_limits.py``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import pickletools
import re
import struct
import textwrap
import types
from collections.abc import Callable
from pickle import (
    ADDITEMS,
    APPEND,
    APPENDS,
    BINBYTES,
    BINBYTES8,
    BINFLOAT,
    BINGET,
    BININT,
    BININT1,
    BININT2,
    BINPERSID,
    BINPUT,
    BINSTRING,
    BINUNICODE,
    BINUNICODE8,
    BUILD,
    BYTEARRAY8,
    DICT,
    DUP,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_SET,
    EMPTY_TUPLE,
    EXT1,
    EXT2,
    EXT4,
    FLOAT,
    FRAME,
    FROZENSET,
    GET,
    GLOBAL,
    INST,
    INT,
    LIST,
    LONG,
    LONG1,
    LONG4,
    LONG_BINGET,
    LONG_BINPUT,
    MARK,
    MEMOIZE,
    NEWOBJ,
    NEWOBJ_EX,
    NEXT_BUFFER,
    NONE,
    OBJ,
    PERSID,
    POP,
    POP_MARK,
    PROTO,
    PUT,
    READONLY_BUFFER,
    REDUCE,
    SETITEM,
    SETITEMS,
    SHORT_BINBYTES,
    SHORT_BINSTRING,
    SHORT_BINUNICODE,
    STACK_GLOBAL,
    STOP,
    STRING,
    TUPLE,
    TUPLE1,
    TUPLE2,
    TUPLE3,
    UNICODE,
)

import anypickle
import corpus
import pytest
from anypickle import _errors
from conftest import assert_clean_exit, run_python

UE = pickle.UnpicklingError

_ERROR_NAMES = (
    "PickleValueError",
    "PickleUnicodeDecodeError",
    "PickleOverflowError",
    "PickleTypeError",
    "PickleKeyError",
)
#: The classes the reader may raise for a problem with the data (preferring the classes
#: the package exports, as tests/reader_support.py does).
READER_ERRORS = frozenset(
    {UE, *(getattr(anypickle, name, getattr(_errors, name)) for name in _ERROR_NAMES)}
)

#: "(opcode NAME at offset N)" at the very end of a reader error's message.
SUFFIX_RE = re.compile(r"\(opcode ([A-Z0-9_]+) at offset (\d+)\)\Z")

DEEP = 1_000_000


# --------------------------------------------------------------------------------------
# Byte builders
# --------------------------------------------------------------------------------------


def proto(n: int) -> bytes:
    return PROTO + bytes([n])


def u8(n: int) -> bytes:
    return bytes([n])


def u16(n: int) -> bytes:
    return n.to_bytes(2, "little")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def i32(n: int) -> bytes:
    return n.to_bytes(4, "little", signed=True)


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def line(text: bytes) -> bytes:
    return text + b"\n"


def framed(body: bytes) -> bytes:
    """A FRAME opcode announcing exactly ``body``, then ``body``."""
    return FRAME + u64(len(body)) + body


GLOBAL_LIST = GLOBAL + line(b"builtins") + line(b"list")  # 15 bytes
GLOBAL_INT = GLOBAL + line(b"builtins") + line(b"int")  # 14 bytes
GLOBAL_OBJECT = GLOBAL + line(b"builtins") + line(b"object")  # 17 bytes


# --------------------------------------------------------------------------------------
# Expected outcomes
# --------------------------------------------------------------------------------------

ANY = "*"  # Raises(opcode=ANY): some "(opcode NAME at offset N)" suffix


@dataclasses.dataclass(frozen=True)
class Raises:
    """An exception that is an instance of every class in ``classes``.

    A reader error (an UnpicklingError) must be one of READER_ERRORS and its
    message must end with "(opcode <opcode> at offset <offset>)"; with
    ``opcode=None`` (an unknown opcode byte has no name) the message must
    contain "offset <offset>"; with ``opcode=ANY`` any suffix will do.  Other
    exceptions (a TypeError from calling an object ...) are not checked further.
    """

    classes: tuple[type[BaseException], ...]
    opcode: str | None = None
    offset: int | None = None
    match: str | None = None


@dataclasses.dataclass(frozen=True)
class Eof:
    """EOFError whose message contains "offset <offset>"."""

    offset: int


@dataclasses.dataclass(frozen=True)
class Propagates:
    """An exception from find_class or a called object: exactly this class, unchanged."""

    exc_type: type[BaseException]
    match: str | None = None


@dataclasses.dataclass(frozen=True)
class Returns:
    """Loading succeeds and ``check(value)`` is true (``what`` describes the value)."""

    check: Callable[[object], bool]
    what: str


@dataclasses.dataclass(frozen=True)
class Either:
    """Any one of the outcomes will do."""

    options: tuple


def returns(value) -> Returns:
    """Loading succeeds with a value equal to ``value`` of the very same type."""
    return Returns(lambda v: type(v) is type(value) and v == value, repr(value))


def reader_error(opcode, offset, *builtins, match=None) -> Raises:
    """A reader error (UnpicklingError, also an instance of each of ``builtins``)."""
    return Raises((UE, *builtins), opcode, offset, match)


def short_repr(value, limit=200) -> str:
    """repr() cut to ``limit`` characters; deep or broken objects get a placeholder."""
    try:
        text = repr(value)
    except Exception:  # RecursionError for deep nesting
        return f"<{type(value).__name__} object (repr failed)>"
    return text if len(text) <= limit else text[:limit] + "..."


def describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:300]!r}"


def _suffix_problem(exc, opcode, offset):
    message = str(exc)
    if opcode is None and offset is None:
        return None
    if opcode is None:
        if not re.search(rf"\boffset {offset}\b", message):
            return f"message lacks 'offset {offset}': {describe(exc)}"
        return None
    found = SUFFIX_RE.search(message)
    if not found:
        return f"message does not end with '(opcode NAME at offset N)': {describe(exc)}"
    if opcode is ANY:
        return None
    if (found.group(1), int(found.group(2))) != (opcode, offset):
        return (
            f"message names opcode {found.group(1)} at offset {found.group(2)}, "
            f"expected {opcode} at offset {offset}: {describe(exc)}"
        )
    return None


def expect_text(expect) -> str:
    if isinstance(expect, Eof):
        return f"EOFError at offset {expect.offset}"
    if isinstance(expect, Propagates):
        return expect.exc_type.__name__
    if isinstance(expect, Raises):
        where = f" ({expect.opcode} at offset {expect.offset})" if expect.opcode else ""
        return " and ".join(c.__name__ for c in expect.classes) + where
    return str(expect)


def outcome_problem(expect, value=None, exc=None) -> str | None:
    """None if the outcome (a value, or the exception ``exc``) meets ``expect``, else why not."""
    if isinstance(expect, Either):
        problems = [outcome_problem(option, value, exc) for option in expect.options]
        if any(p is None for p in problems):
            return None
        return " / ".join(problems)
    if isinstance(expect, Returns):
        if exc is not None:
            return f"expected to return {expect.what}, raised {describe(exc)}"
        try:
            ok = expect.check(value)
        except Exception as check_exc:  # pragma: no cover - diagnostic
            ok = False
            value = f"{short_repr(value)} (check raised {check_exc!r})"
        return None if ok else f"returned {short_repr(value)}, expected {expect.what}"
    if exc is None:
        return f"returned {short_repr(value)} instead of raising {expect_text(expect)}"
    if isinstance(expect, Eof):
        if not isinstance(exc, EOFError):
            return f"expected EOFError (offset {expect.offset}), got {describe(exc)}"
        return _suffix_problem(exc, None, expect.offset)
    if isinstance(expect, Propagates):
        if type(exc) is not expect.exc_type:
            return f"expected {expect.exc_type.__name__} unchanged, got {describe(exc)}"
        if expect.match and expect.match not in str(exc):
            return f"message lacks {expect.match!r}: {describe(exc)}"
        return None
    assert isinstance(expect, Raises), expect
    missing = [c.__name__ for c in expect.classes if not isinstance(exc, c)]
    if missing:
        wanted = " and ".join(c.__name__ for c in expect.classes)
        return f"expected an instance of {wanted}, got {describe(exc)}"
    if isinstance(exc, UE):
        if type(exc) not in READER_ERRORS:
            return f"reader error of an unexpected class: {describe(exc)}"
        unspecified = expect.opcode is None and expect.offset is None
        problem = _suffix_problem(exc, ANY if unspecified else expect.opcode, expect.offset)
        if problem:
            return problem
    if expect.match and expect.match.lower() not in str(exc).lower():
        return f"message lacks {expect.match!r}: {describe(exc)}"
    return None


# --------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: object
    #: What C ``pickle.loads`` does on CPython 3.11: "returns ..." or "ExcClass: message".
    stdlib: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    #: Load with an Unpickler subclass whose persistent_load returns the pid.
    persistent: bool = False
    #: Run in a child process (huge inputs, or a crash would take pytest down).
    isolate: bool = False

    def __repr__(self):  # keep pytest's failure output short
        return f"Case({self.name!r}, {len(self.data)} bytes)"


def _nested_list_depth(value, limit):
    """Depth of [[[...]]] (iteratively); None if the shape differs."""
    depth = 0
    while True:
        if type(value) is not list or len(value) > 1:
            return None
        if not value:
            return depth
        depth += 1
        if depth > limit:
            return None
        value = value[0]


def _self_list(v):
    return type(v) is list and len(v) == 1 and v[0] is v


def _self_dict(v):
    return type(v) is dict and list(v) == [1] and v[1] is v


def _recursive_tuple(v):
    return type(v) is tuple and len(v) == 1 and type(v[0]) is list and v[0][0] is v


def _catalogue():
    cases = []

    def case(name, data, expect, stdlib, **kw):
        cases.append(Case(name, data, expect, stdlib, **kw))

    truncated = "UnpicklingError: pickle data was truncated"
    underflow = "UnpicklingError: unpickling stack underflow"
    no_mark = "UnpicklingError: could not find MARK"
    unexpected_mark = "UnpicklingError: unexpected MARK found"
    p2, p3, p4, p5 = proto(2), proto(3), proto(4), proto(5)

    # -- The input ends where an opcode is expected: EOFError ---------------------------
    case("eof:empty", b"", Eof(0), "EOFError: Ran out of input")
    case("eof:after-proto", p5, Eof(2), "EOFError: Ran out of input")
    case("eof:no-stop", p2 + NONE, Eof(3), "EOFError: Ran out of input")
    case("eof:no-stop-text", line(INT + b"1"), Eof(3), "EOFError: Ran out of input")
    case("eof:after-mark", MARK, Eof(1), "EOFError: Ran out of input")
    case("eof:after-complete-frame", p4 + framed(NONE), Eof(12), "EOFError: Ran out of input")

    # -- The input ends inside an opcode's argument ------------------------------------
    case("trunc:proto", PROTO, reader_error("PROTO", 0), truncated)
    case("trunc:binint", BININT + b"\x01\x02", reader_error("BININT", 0), truncated)
    case("trunc:binint2", p2 + BININT2 + b"\x01", reader_error("BININT2", 2), truncated)
    case("trunc:binfloat", BINFLOAT + b"\x00\x00", reader_error("BINFLOAT", 0), truncated)
    case("trunc:int-no-newline", INT + b"12", reader_error("INT", 0), truncated)
    case(
        "trunc:global-one-line",
        GLOBAL + line(b"builtins") + b"list",
        reader_error("GLOBAL", 0),
        truncated,
    )
    case("trunc:frame-header", p4 + FRAME + b"\x01\x00", reader_error("FRAME", 2), truncated)
    case(
        "trunc:binunicode-length",
        BINUNICODE + b"\x01\x00",
        reader_error("BINUNICODE", 0),
        truncated,
    )
    case(
        "trunc:short-binunicode",
        p4 + SHORT_BINUNICODE + u8(5) + b"ab",
        reader_error("SHORT_BINUNICODE", 2),
        truncated,
    )
    case("trunc:long1", p2 + LONG1 + u8(5) + b"\x01", reader_error("LONG1", 2), truncated)
    case("trunc:binget", p2 + BINGET, reader_error("BINGET", 2), truncated)
    case(
        "trunc:long-binput",
        p2 + NONE + LONG_BINPUT + b"\x00\x00",
        reader_error("LONG_BINPUT", 3),
        truncated,
    )
    case("trunc:ext2", p2 + EXT2 + b"\x01", reader_error("EXT2", 2), truncated)

    # -- Lying lengths: ~20-byte inputs that claim gigabytes -----------------------------
    # C checks them against the input before reading; a size above PY_SSIZE_T_MAX is an
    # OverflowError there.  Any reader error will do here (test_reader_limits.py checks
    # that none of them allocates).
    big = reader_error
    overflow = "OverflowError: {} exceeds system's maximum size of 9223372036854775807 bytes"
    case(
        "len:long4-2GB", p2 + LONG4 + i32(2**31 - 1) + bytes(10) + STOP, big("LONG4", 2), truncated
    )
    case(
        "len:long4-negative",
        p2 + LONG4 + i32(-1) + STOP,
        big("LONG4", 2),
        "UnpicklingError: LONG pickle has negative byte count",
    )
    case(
        "len:binunicode-4GB",
        BINUNICODE + u32(2**32 - 1) + b"abc" + STOP,
        big("BINUNICODE", 0),
        truncated,
    )
    for n, stdlib in [
        (2**31, truncated),
        (2**63 - 1, truncated),
        (2**64 - 1, overflow.format("BINUNICODE")),
    ]:
        case(
            f"len:binunicode8-{n:#x}",
            p4 + BINUNICODE8 + u64(n) + b"abc" + STOP,
            big("BINUNICODE8", 2),
            stdlib,
        )
    case(
        "len:binbytes-4GB",
        p3 + BINBYTES + u32(2**32 - 1) + b"abc" + STOP,
        big("BINBYTES", 2),
        truncated,
    )
    # C allocates the claimed size before reading BINBYTES/BINBYTES8/BYTEARRAY8 (untouched
    # pages, so RSS stays flat): 1 TiB fails with MemoryError where overcommit is heuristic.
    allocates = "MemoryError (C allocates the claimed size first)"
    for n, stdlib in [
        (2**31, truncated),
        (2**40, allocates),
        (2**64 - 1, overflow.format("BINBYTES")),
    ]:
        case(
            f"len:binbytes8-{n:#x}",
            p4 + BINBYTES8 + u64(n) + b"abc" + STOP,
            big("BINBYTES8", 2),
            stdlib,
        )
    for n, stdlib in [
        (2**31, truncated),
        (2**40, allocates),
        (2**64 - 1, overflow.format("BYTEARRAY8")),
    ]:
        case(
            f"len:bytearray8-{n:#x}",
            p5 + BYTEARRAY8 + u64(n) + b"abc" + STOP,
            big("BYTEARRAY8", 2),
            stdlib,
        )
    case(
        "len:binstring-2GB",
        BINSTRING + i32(2**31 - 1) + b"abc" + STOP,
        big("BINSTRING", 0),
        truncated,
    )
    case(
        "len:binstring-negative",
        BINSTRING + i32(-1) + b"abc" + STOP,
        big("BINSTRING", 0),
        truncated,
    )
    case(
        "len:short-binstring",
        SHORT_BINSTRING + u8(255) + b"abc" + STOP,
        big("SHORT_BINSTRING", 0),
        truncated,
    )
    case(
        "len:short-binbytes",
        p3 + SHORT_BINBYTES + u8(255) + b"ab" + STOP,
        big("SHORT_BINBYTES", 2),
        truncated,
    )
    case("len:frame-2GB", p4 + FRAME + u64(2**31) + NONE + STOP, big("FRAME", 2), truncated)
    case(
        "len:frame-2**64-1",
        p4 + FRAME + u64(2**64 - 1) + NONE + STOP,
        big("FRAME", 2),
        "OverflowError: FRAME length exceeds system's maximum of 9223372036854775807 bytes",
    )
    # pickle.py returns None here (it never checks that a frame is complete).
    case(
        "len:frame-longer-than-data", p4 + FRAME + u64(3) + NONE + STOP, big("FRAME", 2), truncated
    )

    # -- Memo ----------------------------------------------------------------------------
    not_found = "UnpicklingError: Memo value not found at index {}"
    key_error = (KeyError,)
    case(
        "memo:binget-never-put",
        p2 + BINGET + u8(0) + STOP,
        reader_error("BINGET", 2, *key_error),
        not_found.format(0),
    )
    case(
        "memo:long-binget-max",
        p2 + LONG_BINGET + u32(2**32 - 1) + STOP,
        reader_error("LONG_BINGET", 2, *key_error),
        not_found.format(2**32 - 1),
    )
    case(
        "memo:get-never-put",
        line(GET + b"0") + STOP,
        reader_error("GET", 0, *key_error),
        not_found.format(0),
    )
    case(
        "memo:hole",  # PUT 2, GET 1
        p2 + NONE + BINPUT + u8(2) + BINGET + u8(1) + STOP,
        reader_error("BINGET", 5, *key_error),
        not_found.format(1),
    )
    case(
        "memo:get-negative", line(GET + b"-1") + STOP, reader_error("GET", 0), not_found.format(-1)
    )
    case(
        "memo:get-not-a-number",
        line(GET + b"x") + STOP,
        reader_error("GET", 0, ValueError),
        "ValueError: invalid literal for int() with base 10: 'x\\n'",
    )
    case(
        "memo:put-negative",
        NONE + line(PUT + b"-1") + STOP,
        reader_error("PUT", 1, ValueError),
        "ValueError: negative PUT argument",
    )
    case(
        "memo:put-not-a-number",
        NONE + line(PUT + b"x") + STOP,
        reader_error("PUT", 1, ValueError),
        "ValueError: invalid literal for int() with base 10: 'x\\n'",
    )
    case(
        "memo:binput-empty-stack", p2 + BINPUT + u8(0) + STOP, reader_error("BINPUT", 2), underflow
    )
    case("memo:memoize-empty-stack", p4 + MEMOIZE + STOP, reader_error("MEMOIZE", 2), underflow)
    # A MEMOIZE right after another opcode is stored without a dispatch of its
    # own: after a MARK, or after the last object was popped, it still fails.
    case(
        "memo:memoize-after-mark",
        p4 + NONE + MARK + MEMOIZE + STOP,
        reader_error("MEMOIZE", 4),
        unexpected_mark,
    )
    case(
        "memo:memoize-after-pop",
        p4 + NONE + POP + MEMOIZE + STOP,
        reader_error("MEMOIZE", 4),
        underflow,
    )
    case(
        "memo:memoize-twice",  # two indices for one object, both readable
        p4 + EMPTY_LIST + MEMOIZE + MEMOIZE + BINGET + u8(0) + BINGET + u8(1) + TUPLE2 + STOP,
        Returns(lambda v: v[0] is v[1] and v[0] == [], "(l, l) with one list"),
        "returns ([], [])",
    )
    # pickle.py's memo is a dict, so it accepts any index; C allocates 2 * index slots.
    case(
        "memo:long-binput-max",
        p2 + NONE + LONG_BINPUT + u32(2**32 - 1) + STOP,
        Either((returns(None), reader_error("LONG_BINPUT", 3))),
        "MemoryError",
        isolate=True,
    )
    case(
        "memo:long-binput-max-then-get",
        p2 + BININT1 + u8(7) + LONG_BINPUT + u32(2**32 - 1) + LONG_BINGET + u32(2**32 - 1) + STOP,
        Either((returns(7), reader_error("LONG_BINPUT", 4))),
        "MemoryError",
        isolate=True,
    )
    case(
        "memo:put-overwrites",
        p2
        + BININT1
        + u8(1)
        + BINPUT
        + u8(0)
        + BININT1
        + u8(2)
        + BINPUT
        + u8(0)
        + BINGET
        + u8(0)
        + STOP,
        returns(2),
        "returns 2",
    )
    case(
        "memo:memoize-uses-memo-size",  # PUT 5, then MEMOIZE stores at index 1 (len(memo))
        p4 + NONE + BINPUT + u8(5) + BININT1 + u8(7) + MEMOIZE + BINGET + u8(1) + STOP,
        returns(7),
        "returns 7",
    )
    case(
        "memo:list-containing-itself",
        p2 + EMPTY_LIST + BINPUT + u8(0) + BINGET + u8(0) + APPEND + STOP,
        Returns(_self_list, "l with l[0] is l"),
        "returns [[...]]",
    )
    case(
        "memo:dict-containing-itself",
        p2 + EMPTY_DICT + BINPUT + u8(0) + BININT1 + u8(1) + BINGET + u8(0) + SETITEM + STOP,
        Returns(_self_dict, "d with d[1] is d"),
        "returns {1: {...}}",
    )
    case(
        "memo:recursive-tuple",  # t = ([t],) built through the memo, then fetched again
        p2
        + EMPTY_LIST
        + BINPUT
        + u8(0)
        + BINGET
        + u8(0)
        + TUPLE1
        + BINPUT
        + u8(1)
        + APPEND
        + BINGET
        + u8(1)
        + STOP,
        Returns(_recursive_tuple, "t with t[0][0] is t"),
        "returns ([(...)],)",
    )
    case(
        "memo:list-appended-to-itself-100x",
        p2 + EMPTY_LIST + BINPUT + u8(0) + MARK + (BINGET + u8(0)) * 100 + APPENDS + STOP,
        Returns(
            lambda v: type(v) is list and len(v) == 100 and all(x is v for x in v), "l == [l] * 100"
        ),
        "returns [[...], ...]",
    )
    case(
        "memo:dict-as-its-own-key",
        p2 + EMPTY_DICT + BINPUT + u8(0) + BINGET + u8(0) + BININT1 + u8(1) + SETITEM + STOP,
        Raises((TypeError,)),
        "TypeError: unhashable type: 'dict'",
    )
    case(
        "memo:list-inside-frozenset",
        p4 + EMPTY_LIST + MEMOIZE + MARK + BINGET + u8(0) + FROZENSET + STOP,
        Raises((TypeError,)),
        "TypeError: unhashable type: 'list'",
    )
    case(
        "memo:tuple-key-holding-a-list",
        p2 + EMPTY_DICT + EMPTY_LIST + TUPLE1 + NONE + SETITEM + STOP,
        Raises((TypeError,)),
        "TypeError: unhashable type: 'list'",
    )
    case(
        "memo:bytearray-extended-after-put",  # APPENDS on a bytearray calls its extend()
        p5
        + BYTEARRAY8
        + u64(0)
        + MEMOIZE
        + MARK
        + BININT1
        + b"A"
        + BININT1
        + b"B"
        + APPENDS
        + POP
        + BINGET
        + u8(0)
        + STOP,
        Either((returns(bytearray(b"AB")), reader_error("APPENDS", 17))),
        "returns bytearray(b'AB')",
    )

    # -- Stack and MARK misuse -----------------------------------------------------------
    case("stack:stop-empty", STOP, reader_error("STOP", 0), underflow)
    case("stack:stop-after-mark", MARK + STOP, reader_error("STOP", 1), unexpected_mark)
    case("stack:stop-extra-items-ignored", NONE + BININT1 + u8(1) + STOP, returns(1), "returns 1")
    case(
        "stack:stop-mark-left-open",
        MARK + NONE + STOP,
        Either((returns(None), reader_error("STOP", 2))),
        "returns None",
    )
    case("stack:dup-empty", DUP + STOP, reader_error("DUP", 0), underflow)
    case("stack:pop-empty", POP + STOP, reader_error("POP", 0), underflow)
    case("stack:pop-removes-a-mark", MARK + POP + NONE + STOP, returns(None), "returns None")
    case("stack:pop-mark-without-mark", POP_MARK + STOP, reader_error("POP_MARK", 0), no_mark)
    case(
        "stack:pop-mark-drops-items",
        MARK + NONE + NONE + POP_MARK + BININT1 + u8(3) + STOP,
        returns(3),
        "returns 3",
    )
    case("stack:append-one-item", EMPTY_LIST + APPEND + STOP, reader_error("APPEND", 1), underflow)
    case(
        "stack:append-below-mark",  # pickle.py: IndexError
        p2 + EMPTY_LIST + MARK + BININT1 + u8(1) + APPEND + POP_MARK + STOP,
        reader_error("APPEND", 6),
        unexpected_mark,
    )
    case(
        "stack:setitem-below-mark",
        p2 + EMPTY_DICT + MARK + NONE + NONE + SETITEM + POP + STOP,
        reader_error("SETITEM", 6),
        unexpected_mark,
    )
    case(
        "stack:setitem-two-items",
        p2 + EMPTY_DICT + NONE + SETITEM + STOP,
        reader_error("SETITEM", 4),
        underflow,
    )
    case(
        "stack:appends-without-mark",
        p2 + EMPTY_LIST + NONE + APPENDS + STOP,
        reader_error("APPENDS", 4),
        no_mark,
    )
    case(
        "stack:appends-empty-batch",
        p2 + EMPTY_LIST + MARK + APPENDS + STOP,
        returns([]),
        "returns []",
    )
    case(
        "stack:appends-mark-only", p2 + MARK + APPENDS + STOP, reader_error("APPENDS", 3), underflow
    )
    case("stack:tuple-without-mark", TUPLE + STOP, reader_error("TUPLE", 0), no_mark)
    case("stack:list-without-mark", NONE + LIST + STOP, reader_error("LIST", 1), no_mark)
    case("stack:dict-without-mark", DICT + STOP, reader_error("DICT", 0), no_mark)
    case(
        "stack:dict-odd-items",
        MARK + NONE + NONE + NONE + DICT + STOP,
        reader_error("DICT", 4),
        "UnpicklingError: odd number of items for DICT",
    )
    case(
        "stack:setitems-odd-items",
        p2 + EMPTY_DICT + MARK + NONE + NONE + NONE + SETITEMS + STOP,
        reader_error("SETITEMS", 7),
        "UnpicklingError: odd number of items for SETITEMS",
    )
    case(
        "stack:setitems-without-mark",
        p2 + EMPTY_DICT + NONE + NONE + SETITEMS + STOP,
        reader_error("SETITEMS", 5),
        no_mark,
    )
    case(
        "stack:frozenset-without-mark", p4 + FROZENSET + STOP, reader_error("FROZENSET", 2), no_mark
    )
    case(
        "stack:additems-without-mark",
        p4 + EMPTY_SET + NONE + ADDITEMS + STOP,
        reader_error("ADDITEMS", 4),
        no_mark,
    )
    case(
        "stack:obj-without-mark", p2 + BININT1 + u8(1) + OBJ + STOP, reader_error("OBJ", 4), no_mark
    )
    case(
        "stack:inst-without-mark",
        INST + line(b"builtins") + line(b"list") + STOP,
        reader_error("INST", 0),
        no_mark,
    )
    case("stack:tuple1-empty", p2 + TUPLE1 + STOP, reader_error("TUPLE1", 2), underflow)
    case("stack:tuple2-one-item", p2 + NONE + TUPLE2 + STOP, reader_error("TUPLE2", 3), underflow)
    case("stack:tuple3-empty", p2 + TUPLE3 + STOP, reader_error("TUPLE3", 2), underflow)
    case(
        "stack:tuple3-across-mark",
        p2 + NONE + MARK + NONE + NONE + TUPLE3 + STOP,
        reader_error("TUPLE3", 6),
        unexpected_mark,
    )
    case("stack:build-one-item", p2 + NONE + BUILD + STOP, reader_error("BUILD", 3), underflow)
    case("stack:reduce-one-item", p2 + NONE + REDUCE + STOP, reader_error("REDUCE", 3), underflow)
    case("stack:newobj-one-item", p2 + NONE + NEWOBJ + STOP, reader_error("NEWOBJ", 3), underflow)
    case(
        "stack:newobj-ex-two-items",
        p4 + NONE + NONE + NEWOBJ_EX + STOP,
        reader_error("NEWOBJ_EX", 4),
        underflow,
    )
    case(
        "stack:stack-global-empty",
        p4 + STACK_GLOBAL + STOP,
        reader_error("STACK_GLOBAL", 2),
        underflow,
    )
    case(
        "stack:stack-global-one-item",
        p4 + SHORT_BINUNICODE + u8(1) + b"a" + STACK_GLOBAL + STOP,
        reader_error("STACK_GLOBAL", 5),
        underflow,
    )
    case(
        "stack:readonly-buffer-empty",
        p5 + READONLY_BUFFER + STOP,
        reader_error("READONLY_BUFFER", 2),
        underflow,
    )
    case(
        "stack:binpersid-empty",
        p2 + BINPERSID + STOP,
        reader_error("BINPERSID", 2),
        underflow,
        persistent=True,
    )

    # -- 1,000,000 MARKs (child process) -------------------------------------------------
    case(
        "deep:open-marks-then-list",
        MARK * DEEP + EMPTY_LIST + STOP,
        Either((returns([]), reader_error("STOP", DEEP + 1))),
        "returns []",
        isolate=True,
    )
    case(
        "deep:marks-popped",
        MARK * DEEP + POP_MARK * DEEP + NONE + STOP,
        returns(None),
        "returns None",
        isolate=True,
    )
    case(
        "deep:nested-lists-from-marks",  # (((...lll...: a list nested 1,000,000 deep
        MARK * DEEP + LIST * DEEP + STOP,
        Either(
            (
                Returns(lambda v: _nested_list_depth(v, DEEP) == DEEP - 1, "[[[...]]] 1e6 deep"),
                Raises((RecursionError,)),
                reader_error(ANY, None),
            )
        ),
        "returns [[[...]]]",
        isolate=True,
    )

    # -- Objects of the wrong type -------------------------------------------------------
    case(
        "type:reduce-args-not-tuple",
        GLOBAL_LIST + BININT1 + u8(1) + REDUCE + STOP,
        reader_error("REDUCE", 17, TypeError),
        "TypeError: argument list must be a tuple",
    )
    case(
        "type:reduce-args-list",
        GLOBAL_LIST + EMPTY_LIST + REDUCE + STOP,
        reader_error("REDUCE", 16, TypeError),
        "TypeError: argument list must be a tuple",
    )
    case(
        "type:reduce-not-callable",
        BININT1 + u8(1) + EMPTY_TUPLE + REDUCE + STOP,
        Raises((TypeError,)),
        "TypeError: 'int' object is not callable",
    )
    case(
        "type:reduce-callable-raises",  # int("abc"): the ValueError is int's, unchanged
        GLOBAL_INT + MARK + BINUNICODE + u32(3) + b"abc" + TUPLE + REDUCE + STOP,
        Propagates(ValueError, "invalid literal"),
        "ValueError: invalid literal for int() with base 10: 'abc'",
    )
    case(
        "type:newobj-not-a-type",
        p2 + BININT1 + u8(1) + EMPTY_TUPLE + NEWOBJ + STOP,
        reader_error("NEWOBJ", 5),
        "UnpicklingError: NEWOBJ class argument must be a type, not int",
    )
    case(
        "type:newobj-args-not-tuple",
        p2 + GLOBAL_OBJECT + BININT1 + u8(1) + NEWOBJ + STOP,
        reader_error("NEWOBJ", 21),
        "UnpicklingError: NEWOBJ args argument must be a tuple, not int",
    )
    case(
        "type:newobj-new-raises",  # int.__new__(int, "abc")
        p2 + GLOBAL_INT + MARK + BINUNICODE + u32(3) + b"abc" + TUPLE + NEWOBJ + STOP,
        Propagates(ValueError, "invalid literal"),
        "ValueError: invalid literal for int() with base 10: 'abc'",
    )
    case(
        "type:newobj-ex-kwargs-not-dict",
        p4 + GLOBAL_OBJECT + EMPTY_TUPLE + BININT1 + u8(1) + NEWOBJ_EX + STOP,
        reader_error("NEWOBJ_EX", 22),
        "UnpicklingError: NEWOBJ_EX kwargs argument must be a dict, not int",
    )
    case(
        "type:newobj-ex-args-not-tuple",
        p4 + GLOBAL_OBJECT + EMPTY_LIST + EMPTY_DICT + NEWOBJ_EX + STOP,
        reader_error("NEWOBJ_EX", 21),
        "UnpicklingError: NEWOBJ_EX args argument must be a tuple, not list",
    )
    case(
        "type:newobj-ex-not-a-type",
        p4 + BININT1 + u8(1) + EMPTY_TUPLE + EMPTY_DICT + NEWOBJ_EX + STOP,
        reader_error("NEWOBJ_EX", 6),
        "UnpicklingError: NEWOBJ_EX class argument must be a type, not int",
    )
    case(
        "type:obj-not-a-class",  # pickle.py: AttributeError (no __name__)
        MARK + BININT1 + u8(1) + OBJ + STOP,
        Either((Raises((TypeError,)), reader_error("OBJ", 3))),
        "TypeError: 'int' object is not callable",
    )
    case(
        "type:build-non-dict-state",
        p2 + EMPTY_LIST + BININT1 + u8(1) + BUILD + STOP,
        reader_error("BUILD", 5),
        "UnpicklingError: state is not a dictionary",
    )
    case(
        "type:build-non-dict-state-on-object",
        p2 + GLOBAL_OBJECT + EMPTY_TUPLE + NEWOBJ + BININT1 + u8(1) + BUILD + STOP,
        reader_error("BUILD", 23),
        "UnpicklingError: state is not a dictionary",
    )
    case(
        "type:build-slotstate-not-dict",
        p2 + EMPTY_LIST + NONE + BININT1 + u8(1) + TUPLE2 + BUILD + STOP,
        reader_error("BUILD", 7),
        "UnpicklingError: slot state is not a dictionary",
    )
    case(
        "type:build-dict-state-on-list",  # a list has no __dict__
        p2 + EMPTY_LIST + EMPTY_DICT + BUILD + STOP,
        Either((Raises((AttributeError,)), reader_error("BUILD", 4))),
        "AttributeError: 'list' object has no attribute '__dict__'",
    )
    case(
        "type:appends-to-int",
        p2 + BININT1 + u8(1) + MARK + BININT1 + u8(2) + APPENDS + STOP,
        Either((Raises((AttributeError,)), reader_error("APPENDS", 7))),
        "AttributeError: 'int' object has no attribute 'append'",
    )
    case(
        "type:appends-to-dict",
        p2 + EMPTY_DICT + MARK + BININT1 + u8(2) + APPENDS + STOP,
        Either((Raises((AttributeError,)), reader_error("APPENDS", 6))),
        "AttributeError: 'dict' object has no attribute 'append'",
    )
    case(
        "type:append-to-tuple",
        p2 + EMPTY_TUPLE + BININT1 + u8(1) + APPEND + STOP,
        Either((Raises((AttributeError,)), reader_error("APPEND", 5))),
        "AttributeError: 'tuple' object has no attribute 'append'",
    )
    case(
        "type:additems-to-list",
        p4 + EMPTY_LIST + MARK + BININT1 + u8(1) + ADDITEMS + STOP,
        Either((Raises((AttributeError,)), reader_error("ADDITEMS", 6))),
        "AttributeError: 'list' object has no attribute 'add'",
    )
    case(
        "type:additems-to-frozenset",
        p4 + MARK + FROZENSET + MARK + BININT1 + u8(1) + ADDITEMS + STOP,
        Either((Raises((AttributeError,)), reader_error("ADDITEMS", 7))),
        "AttributeError: 'frozenset' object has no attribute 'add'",
    )
    case(
        "type:setitems-to-list",
        p2 + EMPTY_LIST + MARK + BININT1 + u8(0) + BININT1 + u8(1) + SETITEMS + STOP,
        Either((Raises((IndexError,)), reader_error("SETITEMS", 8))),
        "IndexError: list assignment index out of range",
    )
    case(
        "type:setitem-to-tuple",
        p2 + EMPTY_TUPLE + BININT1 + u8(0) + BININT1 + u8(1) + SETITEM + STOP,
        Raises((TypeError,)),
        "TypeError: 'tuple' object does not support item assignment",
    )
    case(
        "type:setitem-unhashable-key",
        p2 + EMPTY_DICT + EMPTY_LIST + NONE + SETITEM + STOP,
        Raises((TypeError,)),
        "TypeError: unhashable type: 'list'",
    )
    case(
        "type:frozenset-unhashable-item",
        p4 + MARK + EMPTY_LIST + FROZENSET + STOP,
        Raises((TypeError,)),
        "TypeError: unhashable type: 'list'",
    )
    case(
        "type:additems-unhashable-item",
        p4 + EMPTY_SET + MARK + EMPTY_LIST + ADDITEMS + STOP,
        Raises((TypeError,)),
        "TypeError: unhashable type: 'list'",
    )
    case(
        "type:readonly-buffer-on-int",
        p5 + BININT1 + u8(1) + READONLY_BUFFER + STOP,
        reader_error("READONLY_BUFFER", 4, TypeError),
        "TypeError: memoryview: a bytes-like object is required, not 'int'",
    )
    case(
        "type:readonly-buffer-on-bytes",
        p5 + SHORT_BINBYTES + u8(2) + b"ab" + READONLY_BUFFER + STOP,
        returns(b"ab"),
        "returns b'ab'",
    )
    case(
        "type:readonly-buffer-on-bytearray",
        p5 + BYTEARRAY8 + u64(2) + b"ab" + READONLY_BUFFER + STOP,
        Returns(lambda v: bytes(v) == b"ab" and memoryview(v).readonly, "a read-only b'ab' buffer"),
        "returns <memory> (read-only)",
    )
    case(
        "type:next-buffer-without-buffers",
        p5 + NEXT_BUFFER + STOP,
        reader_error("NEXT_BUFFER", 2),
        "UnpicklingError: pickle stream refers to out-of-band data but no *buffers* argument ...",
    )
    case(
        "type:next-buffer-empty-buffers",
        p5 + NEXT_BUFFER + STOP,
        reader_error("NEXT_BUFFER", 2),
        "UnpicklingError: not enough out-of-band buffers",
        kwargs={"buffers": []},
    )
    case(
        "type:next-buffer-too-few-buffers",
        p5 + NEXT_BUFFER + NEXT_BUFFER + STOP,
        reader_error("NEXT_BUFFER", 3),
        "UnpicklingError: not enough out-of-band buffers",
        kwargs={"buffers": [b"a"]},
    )
    case(
        "type:next-buffer",
        p5 + NEXT_BUFFER + STOP,
        returns(b"a"),
        "returns b'a'",
        kwargs={"buffers": [b"a"]},
    )
    case(
        "type:stack-global-ints",
        p4 + BININT1 + u8(1) + BININT1 + u8(2) + STACK_GLOBAL + STOP,
        reader_error("STACK_GLOBAL", 6),
        "UnpicklingError: STACK_GLOBAL requires str",
    )
    case(
        "type:stack-global-str-and-int",
        p4 + SHORT_BINUNICODE + u8(8) + b"builtins" + BININT1 + u8(1) + STACK_GLOBAL + STOP,
        reader_error("STACK_GLOBAL", 14),
        "UnpicklingError: STACK_GLOBAL requires str",
    )
    unregistered = "ValueError: unregistered extension code {}"
    case(
        "type:ext1-unregistered",
        p2 + EXT1 + u8(0xE1) + STOP,
        reader_error("EXT1", 2, ValueError),
        unregistered.format(225),
    )
    case(
        "type:ext2-unregistered",
        p2 + EXT2 + u16(0x1234) + STOP,
        reader_error("EXT2", 2, ValueError),
        unregistered.format(4660),
    )
    case(
        "type:ext4-unregistered",
        p2 + EXT4 + i32(2**31 - 1) + STOP,
        reader_error("EXT4", 2, ValueError),
        unregistered.format(2**31 - 1),
    )
    case(
        "type:ext4-zero",
        p2 + EXT4 + i32(0) + STOP,
        reader_error("EXT4", 2),
        "UnpicklingError: EXT specifies code <= 0",
    )
    case(
        "type:ext4-negative",
        p2 + EXT4 + i32(-1) + STOP,
        reader_error("EXT4", 2),
        "UnpicklingError: EXT specifies code <= 0",
    )
    no_loader = "UnpicklingError: A load persistent id instruction was encountered, ..."
    case(
        "type:persid-without-loader",
        line(PERSID + b"abc") + STOP,
        reader_error("PERSID", 0),
        no_loader,
    )
    case(
        "type:binpersid-without-loader",
        p2 + NONE + BINPERSID + STOP,
        reader_error("BINPERSID", 3),
        no_loader,
    )
    case(
        "type:persid",
        line(PERSID + b"abc") + STOP,
        returns("abc"),
        "returns 'abc'",
        persistent=True,
    )
    case(
        "type:persid-non-ascii",
        line(PERSID + b"\xff") + STOP,
        reader_error("PERSID", 0),
        "UnpicklingError: persistent IDs in protocol 0 must be ASCII strings",
        persistent=True,
    )

    # -- find_class: its exceptions propagate unchanged ----------------------------------
    case(
        "global:missing-module",
        GLOBAL + line(b"no_such_module_x") + line(b"f") + STOP,
        Propagates(ModuleNotFoundError, "no_such_module_x"),
        "ModuleNotFoundError: No module named 'no_such_module_x'",
    )
    case(
        "global:missing-name",
        GLOBAL + line(b"builtins") + line(b"no_such_name") + STOP,
        Propagates(AttributeError, "no_such_name"),
        "AttributeError: Can't get attribute 'no_such_name' on <module 'builtins' (built-in)>",
    )
    case(
        "global:stack-global-missing-module",
        p4
        + SHORT_BINUNICODE
        + u8(16)
        + b"no_such_module_x"
        + SHORT_BINUNICODE
        + u8(1)
        + b"f"
        + STACK_GLOBAL
        + STOP,
        Propagates(ModuleNotFoundError, "no_such_module_x"),
        "ModuleNotFoundError: No module named 'no_such_module_x'",
    )
    case(
        "global:inst-missing-module",
        MARK + INST + line(b"no_such_module_x") + line(b"f") + STOP,
        Propagates(ModuleNotFoundError, "no_such_module_x"),
        "ModuleNotFoundError: No module named 'no_such_module_x'",
    )
    case(
        "global:module-not-utf8",
        GLOBAL + line(b"\xff") + line(b"x") + STOP,
        reader_error("GLOBAL", 0, UnicodeDecodeError),
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid ...",
    )
    case(
        "global:inst-module-not-ascii",
        MARK + INST + line(b"\xff") + line(b"x") + STOP,
        reader_error("INST", 1, UnicodeDecodeError),
        "UnicodeDecodeError: 'ascii' codec can't decode byte 0xff in position 0",
    )
    case(
        "global:inst-name-not-ascii",
        MARK + INST + line(b"builtins") + line(b"\xe9") + STOP,
        reader_error("INST", 1, UnicodeDecodeError),
        "UnicodeDecodeError: 'ascii' codec can't decode byte 0xe9 in position 0",
    )
    case(
        "global:empty-lines",  # pickle.py: ValueError('Empty module name') from importlib
        GLOBAL + line(b"") + line(b"") + STOP,
        Either((reader_error("GLOBAL", 0), Propagates(ValueError))),
        truncated,
    )

    # -- UTF-8 (decoded with 'surrogatepass', as CPython does) ---------------------------
    bad_utf8 = "UnicodeDecodeError: 'utf-8' codec can't decode byte {}"
    case(
        "utf8:binunicode-ff",
        BINUNICODE + u32(1) + b"\xff" + STOP,
        reader_error("BINUNICODE", 0, UnicodeDecodeError),
        bad_utf8.format("0xff in position 0: invalid start byte"),
    )
    case(
        "utf8:short-binunicode-bad-continuation",
        p4 + SHORT_BINUNICODE + u8(2) + b"\xc3(" + STOP,
        reader_error("SHORT_BINUNICODE", 2, UnicodeDecodeError),
        bad_utf8.format("0xc3 in position 0: invalid continuation byte"),
    )
    case(
        "utf8:binunicode8-cut-sequence",
        p4 + BINUNICODE8 + u64(2) + b"\xe2\x82" + STOP,
        reader_error("BINUNICODE8", 2, UnicodeDecodeError),
        bad_utf8.format("0xe2 in position 0: unexpected end of data") + "s",
    )
    case(
        "utf8:overlong-nul",
        BINUNICODE + u32(2) + b"\xc0\x80" + STOP,
        reader_error("BINUNICODE", 0, UnicodeDecodeError),
        bad_utf8.format("0xc0 in position 0: invalid start byte"),
    )
    case(
        "utf8:above-max-code-point",
        BINUNICODE + u32(4) + b"\xf4\x90\x80\x80" + STOP,
        reader_error("BINUNICODE", 0, UnicodeDecodeError),
        bad_utf8.format("0xf4 in position 0: invalid continuation byte"),
    )
    case(
        "utf8:lone-high-surrogate",
        BINUNICODE + u32(3) + b"\xed\xa0\x80" + STOP,
        returns("\ud800"),
        "returns '\\ud800'",
    )
    case(
        "utf8:lone-low-surrogate",
        BINUNICODE + u32(3) + b"\xed\xbf\xbf" + STOP,
        returns("\udfff"),
        "returns '\\udfff'",
    )
    case(
        "utf8:surrogate-halves-stay-apart",
        BINUNICODE + u32(6) + b"\xed\xa0\xbd\xed\xb8\x80" + STOP,
        returns("\ud83d\ude00"),
        "returns '\\ud83d\\ude00'",
    )
    case("utf8:nul", BINUNICODE + u32(1) + b"\x00" + STOP, returns("\x00"), "returns '\\x00'")
    case(
        "utf8:unicode-truncated-escape",
        line(UNICODE + b"\\u12") + STOP,
        reader_error("UNICODE", 0, UnicodeDecodeError),
        "UnicodeDecodeError: 'rawunicodeescape' codec ... 0-3: truncated \\uXXXX escape",
    )
    case(
        "utf8:unicode-escape-out-of-range",
        line(UNICODE + b"\\U00110000") + STOP,
        reader_error("UNICODE", 0, UnicodeDecodeError),
        "UnicodeDecodeError: 'rawunicodeescape' codec ... 0-9: \\Uxxxxxxxx out of range",
    )
    case("utf8:unicode-latin1-byte", line(UNICODE + b"\xe9") + STOP, returns("\xe9"), "returns 'é'")

    # -- Python 2 str (STRING, BINSTRING, SHORT_BINSTRING) and encoding=/errors= ---------
    ascii_error = "UnicodeDecodeError: 'ascii' codec can't decode byte 0xff in position 0"
    case(
        "str:string-non-ascii",
        line(STRING + b"'\xff'") + STOP,
        reader_error("STRING", 0, UnicodeDecodeError),
        ascii_error,
    )
    case(
        "str:binstring-non-ascii",
        BINSTRING + i32(1) + b"\xff" + STOP,
        reader_error("BINSTRING", 0, UnicodeDecodeError),
        ascii_error,
    )
    case(
        "str:short-binstring-non-ascii",
        SHORT_BINSTRING + u8(1) + b"\xff" + STOP,
        reader_error("SHORT_BINSTRING", 0, UnicodeDecodeError),
        ascii_error,
    )
    case(
        "str:short-binstring-encoding-bytes",
        SHORT_BINSTRING + u8(1) + b"\xff" + STOP,
        returns(b"\xff"),
        "returns b'\\xff'",
        kwargs={"encoding": "bytes"},
    )
    case(
        "str:short-binstring-encoding-latin1",
        SHORT_BINSTRING + u8(1) + b"\xff" + STOP,
        returns("\xff"),
        "returns 'ÿ'",
        kwargs={"encoding": "latin1"},
    )
    case(
        "str:short-binstring-errors-replace",
        SHORT_BINSTRING + u8(1) + b"\xff" + STOP,
        returns("\ufffd"),
        "returns '\\ufffd'",
        kwargs={"errors": "replace"},
    )

    # -- Text literals (protocol 0) ------------------------------------------------------
    case(
        "text:int-junk",
        line(INT + b"12x") + STOP,
        reader_error("INT", 0, ValueError),
        "ValueError: could not convert string to int",
    )
    case("text:int-empty", line(INT) + STOP, reader_error("INT", 0), truncated)
    case("text:int-01-is-true", line(INT + b"01") + STOP, returns(True), "returns True")
    case("text:int-00-is-false", line(INT + b"00") + STOP, returns(False), "returns False")
    case(
        "text:int-big",
        line(INT + b"123456789012345678901234567890") + STOP,
        returns(123456789012345678901234567890),
        "returns 1234...",
    )
    case(
        "text:int-5000-digits",  # CPython 3.11+ limits int('...') to 4300 digits
        line(INT + b"9" * 5000) + STOP,
        Either(
            (
                Returns(lambda v: type(v) is int and v % 10**9 == 999999999, "9" * 12 + "..."),
                reader_error("INT", 0, ValueError),
            )
        ),
        "ValueError: could not convert string to int",
    )
    case(
        "text:long-junk",
        line(LONG + b"12x") + STOP,
        reader_error("LONG", 0, ValueError),
        "ValueError: invalid literal for int() with base 10: '12x\\n'",
    )
    case("text:long-with-suffix", line(LONG + b"12L") + STOP, returns(12), "returns 12")
    case("text:long-empty", line(LONG) + STOP, reader_error("LONG", 0), truncated)
    case(
        "text:float-junk",
        line(FLOAT + b"abc") + STOP,
        reader_error("FLOAT", 0, ValueError),
        "ValueError: could not convert string to float: 'abc\\n'",
    )
    case(
        "text:float-trailing-junk",
        line(FLOAT + b"1.5x") + STOP,
        reader_error("FLOAT", 0, ValueError),
        "ValueError: could not convert string to float: '1.5x\\n'",
    )
    case(
        "text:float-nan",
        line(FLOAT + b"nan") + STOP,
        Returns(lambda v: type(v) is float and math.isnan(v), "nan"),
        "returns nan",
    )
    case(
        "text:binfloat-nan",
        BINFLOAT + struct.pack(">d", math.nan) + STOP,
        Returns(lambda v: type(v) is float and math.isnan(v), "nan"),
        "returns nan",
    )
    must_quote = "UnpicklingError: the STRING opcode argument must be quoted"
    case(
        "text:string-unquoted", line(STRING + b"abc") + STOP, reader_error("STRING", 0), must_quote
    )
    case(
        "text:string-mismatched-quotes",
        line(STRING + b"'abc\"") + STOP,
        reader_error("STRING", 0),
        must_quote,
    )
    case("text:string-one-quote", line(STRING + b"'") + STOP, reader_error("STRING", 0), must_quote)
    case("text:string-empty", line(STRING) + STOP, reader_error("STRING", 0), must_quote)
    case(
        "text:string-bad-hex-escape",
        line(STRING + b"'\\x4'") + STOP,
        reader_error("STRING", 0, ValueError),
        "ValueError: invalid \\x escape at position 0",
    )
    case(
        "text:string-trailing-backslash",
        line(STRING + b"'abc\\'") + STOP,
        reader_error("STRING", 0, ValueError),
        "ValueError: Trailing \\ in string",
    )
    case(
        "text:string-escapes",
        line(STRING + b"'a\\n\\x41\\'b'") + STOP,
        returns("a\nA'b"),
        'returns "a\\nA\'b"',
    )

    # Number text is parsed as CPython does: int(text, 0) in pickle.py; C uses strtol(text,
    # 0) first (so "010" is octal 8 there) and int(text, 0) when that fails.  Leading zeros
    # are an error for int(text, 0): both stdlib readers refuse "0847..." and "L01".
    case("text:int-hex", line(INT + b"0x10") + STOP, returns(16), "returns 16")
    case("text:int-underscores", line(INT + b"1_000") + STOP, returns(1000), "returns 1000")
    case("text:int-spaces", line(INT + b" 12 ") + STOP, returns(12), "returns 12")
    case(
        "text:int-leading-zero",  # C 8 (octal), pickle.py ValueError; never 10
        line(INT + b"010") + STOP,
        Either((returns(8), reader_error("INT", 0, ValueError))),
        "returns 8 (pickle.py: ValueError)",
    )
    case(
        "text:int-leading-zero-long",
        line(INT + b"0847190084626412331") + STOP,
        reader_error("INT", 0, ValueError),
        "ValueError: could not convert string to int",
    )
    case(
        "text:int-minus-zero",  # C: False ("I-0" is 3 bytes like "I00"); pickle.py: 0
        line(INT + b"-0") + STOP,
        Either((returns(False), returns(0))),
        "returns False (pickle.py: 0)",
    )
    case(
        "text:long-leading-zero",
        line(LONG + b"01") + STOP,
        reader_error("LONG", 0, ValueError),
        "ValueError: invalid literal for int() with base 0: '01\\n'",
    )
    case("text:long-hex", line(LONG + b"0x10L") + STOP, returns(16), "returns 16")
    case(
        "text:float-leading-space",  # pickle.py: 1.5
        line(FLOAT + b" 1.5") + STOP,
        reader_error("FLOAT", 0, ValueError),
        "ValueError: could not convert string to float: ' 1.5\\n'",
    )
    # Memo indices as text: both stdlib readers take whatever int() takes.  anypickle may
    # be stricter (these never come out of a pickler), but not about valid numbers.
    for label, text in [
        ("minus-zero", b"-0"),
        ("leading-space", b" 1"),
        ("trailing-space", b"1 "),
        ("plus-sign", b"+1"),
    ]:
        case(
            f"text:put-{label}",
            NONE + line(PUT + text) + STOP,
            Either((returns(None), reader_error("PUT", 1, ValueError))),
            "returns None",
        )

    # -- Protocol numbers and unknown opcodes ---------------------------------------------
    for n in (6, 0xFF):
        case(
            f"proto:{n}",
            proto(n) + NONE + STOP,
            reader_error("PROTO", 0, ValueError, match="unsupported pickle protocol"),
            f"ValueError: unsupported pickle protocol: {n}",
        )
    case("proto:0", proto(0) + NONE + STOP, returns(None), "returns None")
    case("proto:twice", p2 + p4 + NONE + STOP, returns(None), "returns None")
    for code in (0x00, 0x9A, 0xFF):
        case(
            f"opcode:unknown-{code:#04x}",
            p4 + NONE + bytes([code]) + STOP,
            Raises((UE,), None, 3),
            f"UnpicklingError: invalid load key, '\\x{code:02x}'.",
        )
    case(
        "opcode:trailing-bytes-after-stop",
        NONE + STOP + b"\xff garbage",
        returns(None),
        "returns None",
    )

    # -- Frames (strict, like pickle.py's _Unframer) -------------------------------------
    case(
        "frame:opcode-straddles-end",  # the frame holds BININT's opcode and 1 of its 4 bytes
        p4 + FRAME + u64(2) + BININT + b"\x01\x00\x00\x00" + STOP,
        Either((reader_error("BININT", 11), reader_error("FRAME", 2))),
        "returns 1",
    )
    case(
        "frame:payload-straddles-end",
        p4 + FRAME + u64(3) + SHORT_BINUNICODE + u8(5) + b"abcde" + STOP,
        Either((reader_error("SHORT_BINUNICODE", 11), reader_error("FRAME", 2))),
        "returns 'abcde'",
    )
    case(
        "frame:frame-inside-frame",
        p4 + FRAME + u64(11) + FRAME + u64(1) + NONE + STOP,
        reader_error("FRAME", 11),
        "returns None",
    )
    case(
        "frame:argument-after-frame-end",  # the frame holds FLOAT's opcode, not its line
        p4 + FRAME + u64(1) + FLOAT + line(b"1.5") + STOP,
        Either((reader_error("FLOAT", 11), reader_error("FRAME", 2))),
        "returns 1.5 (pickle.py too: it reads the line from the stream)",
    )
    case("frame:empty", p4 + FRAME + u64(0) + NONE + STOP, returns(None), "returns None")
    case("frame:stop-after-frame", p4 + framed(NONE) + STOP, returns(None), "returns None")
    case(
        "frame:stop-inside-frame-bytes-left",
        p4 + framed(NONE + STOP + NONE),
        returns(None),
        "returns None",
    )
    case("frame:two-frames", p4 + framed(EMPTY_LIST) + framed(STOP), returns([]), "returns []")

    # -- Odd but valid -------------------------------------------------------------------
    case("misc:long1-empty", p2 + LONG1 + u8(0) + STOP, returns(0), "returns 0")
    case("misc:long1-minus-one", p2 + LONG1 + u8(1) + b"\xff" + STOP, returns(-1), "returns -1")
    case("misc:long4-empty", p2 + LONG4 + i32(0) + STOP, returns(0), "returns 0")
    return cases


CASES = _catalogue()
CASE_BY_NAME = {c.name: c for c in CASES}
assert len(CASE_BY_NAME) == len(CASES), "duplicate case names"


# --------------------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------------------


def _unpickler_with_persistent_load(base):
    class WithPersistentLoad(base):
        def persistent_load(self, pid):
            return pid

    return WithPersistentLoad


def load_case(case, via, module=anypickle):
    """Load ``case.data`` with ``module`` (anypickle or pickle), ``via`` 'loads' or 'load'."""
    if case.persistent:
        cls = _unpickler_with_persistent_load(module.Unpickler)
        return cls(io.BytesIO(case.data), **case.kwargs).load()
    if via == "loads":
        return module.loads(case.data, **case.kwargs)
    return module.load(io.BytesIO(case.data), **case.kwargs)


def problem_for(case, via):
    """None if anypickle meets the case's expectation, else a description."""
    try:
        value = load_case(case, via)
    except Exception as exc:
        return outcome_problem(case.expect, exc=exc)
    return outcome_problem(case.expect, value)


VIAS = ["loads", "load"]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalogue(case, via):
    if case.persistent and via == "load":
        pytest.skip("persistent cases always go through Unpickler(file).load()")
    if case.isolate:
        rc, out, err = run_python(
            f"""
            import test_reader_malformed as m
            problem = m.problem_for(m.CASE_BY_NAME[{case.name!r}], {via!r})
            print("PROBLEM: " + problem if problem else "OK")
            """,
            timeout=300,
        )
        assert_clean_exit(rc, out, err)
        assert out.strip() == "OK", out[-2000:]
        return
    problem = problem_for(case, via)
    assert problem is None, problem


def _stdlib_class_name(case):
    try:
        load_case(case, "loads", module=pickle)
    except Exception as exc:
        return type(exc).__name__
    return "returns"


@pytest.mark.parametrize("case", [c for c in CASES if not c.isolate], ids=lambda c: c.name)
def test_stdlib_column(case):
    """The ``stdlib`` column says what C ``pickle.loads`` does (class only; messages vary).

    Isolated cases are left out: C may try to allocate 64 GiB for the huge memo
    indices (a MemoryError where overcommit is heuristic, as on Linux by default).
    """
    recorded = case.stdlib.split(":")[0].split(" ")[0]
    assert _stdlib_class_name(case) == recorded


def test_catalogue_offsets_name_the_opcode():
    """Self-check: every expected "(opcode NAME at offset N)" points at that opcode's byte."""
    codes = {op.name: op.code.encode("latin-1") for op in pickletools.opcodes}
    for case in CASES:
        expects = case.expect.options if isinstance(case.expect, Either) else (case.expect,)
        for expect in expects:
            if isinstance(expect, Raises) and expect.opcode not in (None, ANY):
                at = case.data[expect.offset : expect.offset + 1]
                assert at == codes[expect.opcode], (case.name, expect.opcode, expect.offset, at)
            if isinstance(expect, (Raises, Eof)) and expect.offset is not None:
                assert 0 <= expect.offset <= len(case.data), case.name


# --------------------------------------------------------------------------------------
# Unknown opcodes
# --------------------------------------------------------------------------------------

ASSIGNED = {ord(op.code) for op in pickletools.opcodes}
UNASSIGNED = [b for b in range(256) if b not in ASSIGNED]


@pytest.mark.parametrize("prefix", [b"", proto(4) + NONE], ids=["at-start", "after-NONE"])
def test_every_unassigned_opcode_is_rejected(prefix):
    problems = []
    for code in UNASSIGNED:
        data = prefix + bytes([code]) + STOP
        try:
            value = anypickle.loads(data)
        except Exception as exc:
            problem = outcome_problem(Raises((UE,), None, len(prefix)), exc=exc)
        else:
            problem = f"returned {short_repr(value, 80)}"
        if problem:
            problems.append(f"opcode byte {code:#04x}: {problem}")
    assert not problems, f"{len(problems)} of {len(UNASSIGNED)} bytes:\n" + "\n".join(problems[:20])


# --------------------------------------------------------------------------------------
# Truncation at every offset
# --------------------------------------------------------------------------------------


def _truncation_sources():
    shared = [1, 2]
    rec = []
    rec.append(rec)
    mixed = [1, -2, 3.5, 10**20, "a\u20ac\n\\'\"", b"b\x00", None, True, (1, (2,)), {"k": [3]}]
    many_strings = [f"s{i}" for i in range(300)]
    sources = [
        ("p0-mixed", pickle.dumps(mixed, 0)),
        ("p1-mixed", pickle.dumps(mixed, 1)),
        ("p2-mixed", pickle.dumps(mixed, 2)),
        ("p3-mixed", pickle.dumps(mixed, 3)),
        ("p4-mixed", pickle.dumps(mixed, 4)),
        ("p5-mixed", pickle.dumps(mixed, 5)),
        ("p0-shared-and-sets", pickle.dumps({"a": shared, "b": (shared, shared), "s": {1, 2}}, 0)),
        ("p2-shared-and-sets", pickle.dumps({"a": shared, "b": (shared, shared), "s": {1, 2}}, 2)),
        ("p4-sets", pickle.dumps([{1, 2}, frozenset({3}), set(), frozenset()], 4)),
        ("p2-recursive", pickle.dumps([rec, rec], 2)),
        ("p2-long-memo", pickle.dumps(many_strings + many_strings, 2)),  # LONG_BINPUT/GET
        ("p0-instances", pickle.dumps([corpus.Plain(a=1, b=[2]), corpus.Reduce3(4)], 0)),
        ("p2-instances", pickle.dumps([corpus.Plain(a=1, b=[2]), corpus.Reduce3(4)], 2)),
        ("p4-instances", pickle.dumps([corpus.Plain(a=1), corpus.NewArgsEx(1, key="k")], 4)),
        ("p1-bytes-and-ints", pickle.dumps([b"x" * 300, 2**100, -(2**2100), 65535, -1], 1)),
        ("p3-bytes", pickle.dumps([b"", b"x" * 300, bytearray(b"ba")], 3)),
        ("p5-buffers", pickle.dumps([bytearray(b"ab"), pickle.PickleBuffer(b"ro")], 5)),
        ("p4-big-str-outside-frame", pickle.dumps(["head", "s" * 70_000, "tail"], 4)),
        ("p5-big-bytes-outside-frame", pickle.dumps([b"b" * 70_000, bytearray(70_000), "t"], 5)),
        ("p4-two-frames", pickle.dumps([f"{i}" * 9_000 for i in range(8)], 4)),
    ]
    for _name, data in sources:
        pickle.loads(data)  # every source is a valid pickle
    return sources


TRUNCATION_SOURCES = _truncation_sources()


def _instructions(data):
    """[(name, start, end)] of the instructions of a valid pickle."""
    ops = list(pickletools.genops(data))
    result = []
    for i, (op, _arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else pos + 1
        result.append((op.name, pos, end))
    return result, [(pos + 9, pos + 9 + arg) for op, arg, pos in ops if op.name == "FRAME"]


def truncation_expectations(data):
    """(cut, expectation) for the cuts of ``data`` worth testing.

    * A cut where an opcode starts, outside any frame: EOFError at that offset.
    * A cut inside a frame's body: the frame claims more bytes than there are, a
      reader error (some opcode, some offset).
    * A cut inside an instruction outside frames: a reader error naming it.

    Every offset is tried, except inside long arguments (over 512 bytes) where the
    first and last 64 bytes and every 1009th are.  No cut can leave a complete
    pickle: the opcodes of a prefix are a prefix of the opcodes of ``data``, whose
    only STOP is its last byte.
    """
    instructions, frames = _instructions(data)
    for name, start, end in instructions:
        cuts = range(start, end)
        if end - start > 512:
            cuts = sorted(
                {*range(start, start + 64), *range(start, end, 1009), *range(end - 64, end)}
            )
        for cut in cuts:
            if any(lo <= cut < hi for lo, hi in frames):
                expect = reader_error(ANY, None)
            elif cut == start:
                expect = Eof(cut)
            else:
                expect = reader_error(name, start)
            yield cut, expect


@pytest.mark.parametrize("data", [pytest.param(d, id=n) for n, d in TRUNCATION_SOURCES])
def test_truncation_at_every_offset(data):
    problems = []
    count = 0
    for cut, expect in truncation_expectations(data):
        prefix = data[:cut]
        for via in VIAS:
            count += 1
            try:
                if via == "loads":
                    value = anypickle.loads(prefix)
                else:
                    value = anypickle.load(io.BytesIO(prefix))
            except Exception as exc:
                problem = outcome_problem(expect, exc=exc)
            else:
                problem = outcome_problem(expect, value)
            if problem:
                problems.append(f"{via} of the first {cut} bytes: {problem}")
    assert not problems, f"{len(problems)} of {count} truncations:\n" + "\n".join(problems[:25])


# --------------------------------------------------------------------------------------
# Single-byte mutations at every offset (child process with a memory limit)
# --------------------------------------------------------------------------------------

MUTATION_SEEDS = {
    "p0-data": pickle.dumps([1, -2, 3.5, "a\u20ac", None, True, (1, 2), {"k": [3]}], 0),
    "p2-data-memo": pickle.dumps({"a": [1, 2, 1.5], "b": ("x", None, False), "c": [[7]] * 2}, 2),
    "p4-data-framed": pickle.dumps([{1, 2}, frozenset({3}), b"by", "str", 2**70, -1, 3.25], 4),
    "p5-bytearray": pickle.dumps([bytearray(b"ba"), pickle.PickleBuffer(b"ro"), (b"c",)], 5),
    # With globals: set() and SimpleNamespace() raise only TypeError for wrong arguments.
    "p2-globals": pickle.dumps([{1, 2}, types.SimpleNamespace(a=1)], 2),
    "p4-instance": pickle.dumps(corpus.Plain(a=[1], b="x"), 4),
}

MUTATION_CHILD = r"""
import collections, json, os, re, resource, sys, traceback
import anypickle, pickle

def vm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])

# The C reader allocates 16 bytes per memo slot up to twice a PUT index, which a mutated
# index can make gigabytes: cap the address space so that fails instead.
limit = (vm_kib() + 2 * 1024 * 1024) * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

SUFFIX = re.compile(r"\(opcode ([A-Z0-9_]+) at offset (\d+)\)\Z")
OFFSET = re.compile(r"\boffset (\d+)\b")
ASSIGNED = set(ASSIGNED_CODES)
ALWAYS = (pickle.UnpicklingError, EOFError, ImportError, AttributeError, TypeError, IndexError)
ANYPICKLE_DIR = os.path.dirname(anypickle.__file__)

def reader_message_ok(exc, data):
    # "(opcode NAME at offset N)", or for an unassigned opcode byte "offset N" naming it.
    message = str(exc)
    if SUFFIX.search(message):
        return True
    found = OFFSET.findall(message)
    return bool(found) and int(found[-1]) < len(data) and data[int(found[-1])] not in ASSIGNED

def from_builtin_code(exc):
    # Raised from C by builtin code the reader called (no Python frame to see):
    # find_class("", ...) in the import machinery, APPEND(S) onto a bytearray.
    return type(exc) is ValueError and str(exc) in (
        "Empty module name", "byte must be in range(0, 256)"
    )

def from_called_python_code(exc):
    # Raised inside Python code the reader called (importlib for find_class, a reducer)?
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename != "<string>" and not frame.filename.startswith(ANYPICKLE_DIR):
            return True
    return False

seed = bytes.fromhex(SEED_HEX)
bad = []
classes = collections.Counter()
runs = 0
for i in range(len(seed)):
    for b in range(256):
        if b == seed[i]:
            continue
        data = seed[:i] + bytes([b]) + seed[i + 1:]
        runs += 1
        try:
            anypickle.loads(data)
            classes["returns"] += 1
            continue
        except BaseException as exc:
            classes[type(exc).__name__] += 1
            problem = None
            if isinstance(exc, pickle.UnpicklingError):
                if not reader_message_ok(exc, data):
                    problem = "message without '(opcode NAME at offset N)'"
            elif isinstance(exc, EOFError):
                if not OFFSET.search(str(exc)):
                    problem = "EOFError message without 'offset N'"
            elif not (
                isinstance(exc, ALWAYS) or from_builtin_code(exc) or from_called_python_code(exc)
            ):
                problem = "exception outside the allowed set"
            if problem:
                msg = str(exc)[:200]
                bad.append([i, b, problem, type(exc).__name__, msg])
print(json.dumps({"runs": runs, "bad": bad, "classes": classes}))
"""


@pytest.mark.parametrize("name", list(MUTATION_SEEDS))
def test_single_byte_mutations(name):
    """Each byte of a small pickle replaced by each other value: only allowed outcomes.

    Allowed: success, a reader error (UnpicklingError with the opcode suffix, or
    "offset N" for an unassigned opcode byte), EOFError (with 'offset N'), and
    what builtin objects or find_class raise when the mutated stream points them
    at the wrong thing: ImportError, AttributeError, TypeError, IndexError
    (SETITEMS on a list), ValueError('Empty module name') from the import
    machinery, ValueError('byte must be in range(0, 256)') from APPEND onto a
    bytearray, or anything raised from inside Python code the reader called.
    """
    seed = MUTATION_SEEDS[name]
    code = (
        textwrap.dedent(MUTATION_CHILD)
        .replace("SEED_HEX", repr(seed.hex()))
        .replace("ASSIGNED_CODES", repr(sorted(ASSIGNED)))
    )
    rc, out, err = run_python(code, timeout=300)
    assert_clean_exit(rc, out, err)
    report = json.loads(out.strip().splitlines()[-1])
    bad = report["bad"]
    summary = {}
    for offset, byte, problem, cls, msg in bad:
        summary.setdefault((problem, cls), []).append(f"byte {offset} -> {byte:#04x}: {msg!r:.120}")
    lines = [
        f"{len(examples)}x {cls} ({problem}), e.g. {examples[0]}"
        for (problem, cls), examples in sorted(summary.items(), key=lambda kv: -len(kv[1]))
    ]
    assert not bad, (
        f"{len(bad)} of {report['runs']} mutations of {name} ({len(seed)} bytes) misbehaved; "
        f"outcomes {report['classes']}:\n" + "\n".join(lines)
    )
