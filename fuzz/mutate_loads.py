#!/usr/bin/env python3
"""Time-bounded mutation fuzzer for ``anypickle.loads``.

Usage::

    .venv/bin/python fuzz/mutate_loads.py --seconds 60 --seed 1
    .venv/bin/python fuzz/mutate_loads.py --seconds 300 --diff      # against pickle.loads
    .venv/bin/python fuzz/mutate_loads.py --replay crash-input.bin  # one input, verbosely

Each input is a seed from ``--corpus`` (default ``fuzz/corpus``, made by
``fuzz/make_corpus.py``), or an input that loaded before, with 1-4 mutations:
bit flips, byte sets/inserts/deletes/duplications, splices of two inputs,
length and index tweaks (0, maximum, off by one, the bytes actually left),
text-literal tweaks (bad digits, huge numbers, bad quotes and escapes), and
opcode swaps (replace, insert, delete, duplicate or swap instructions).

Each input runs in this process through ``anypickle.loads``.  Outcomes:

* success, or ``UnpicklingError`` whose message ends with
  ``(opcode NAME at offset N)`` (for an unassigned opcode byte: names the
  offset), or ``EOFError`` whose message names the offset: fine;
* ``ImportError``, ``AttributeError``, ``TypeError``, ``IndexError`` (what
  find_class and builtin objects raise when a mutated stream points them at
  the wrong thing), ``ValueError('Empty module name')`` from the import
  machinery, ``ValueError('byte must be in range(0, 256)')`` from APPEND onto a
  bytearray, an exception raised inside Python code the reader called, or any
  exception at all once the input names a global (GLOBAL, STACK_GLOBAL, INST,
  EXT*: the callables it reaches may raise anything): fine;
* anything else (``ValueError``, ``KeyError``, ``MemoryError``,
  ``SystemError``, ...) or a reader error without the opcode/offset suffix: a
  finding.  ``SystemError`` is always a finding.

A crash (segfault, abort, Rust panic that aborts) kills the process:
``faulthandler`` prints the Python stack and the exit status is non-zero, which
the CI wrapper detects.  An input that runs longer than ``--timeout`` seconds
also ends the process (``faulthandler.dump_traceback_later(exit=True)``: exit
status 1).  In both cases the input being run is left in the file printed at
start (``--replay`` runs it).  The address space is capped at ``--memory-mb``
above the size at start, so an allocation sized from the input fails instead
of exhausting the machine.

The inputs can call whatever the seeds' globals reach.  An audit hook confines
what they can do while an input runs: no new imports, no exec/compile, no
processes, sockets, ctypes, file writes or deletions, no attribute writes on
classes and modules (those raise ``SandboxViolation``, an allowed outcome).

``--diff`` also loads each input with C ``pickle.loads`` and reports, as
findings, inputs where one reader returns and the other raises, or both return
different values (compared through their repr, addresses masked).  The
pure-Python ``pickle._loads`` breaks ties: where it agrees with anypickle (the
frame checks of its ``_Unframer``, memo indices that C cannot allocate), the
difference is expected and only counted; so is a frame error of anypickle's
(its frame checks are stricter than both stdlib readers').  Inputs with a memo
index above 2**20 skip the C reader (it allocates 16 bytes per index).

Prints the number of executions and the findings at the end; exit status 1 if
there are findings, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import hashlib
import mmap
import os
import pickle
import pickletools
import random
import re
import resource
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"

OPCODES = list(pickletools.opcodes)
OPCODE_BYTES = [op.code.encode("latin-1") for op in OPCODES]
ASSIGNED = {ord(op.code) for op in OPCODES}
GLOBALISH = {"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"}
SUFFIX_RE = re.compile(r"\(opcode ([A-Z0-9_]+) at offset (\d+)\)\Z")
OFFSET_RE = re.compile(r"\boffset (\d+)\b")
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]+")
HEADER = b"APFZ"  # the crash file: magic, u32 length, input

#: Exceptions that builtin code raises from C (no Python frame shows where they come
#: from) when a mutated stream points it at the wrong thing.
BUILTIN_MESSAGES = {
    (ValueError, "Empty module name"),  # find_class("", ...): the import machinery
    (ValueError, "byte must be in range(0, 256)"),  # APPEND(S) onto a bytearray
}

#: Length-prefixed arguments: ArgumentDescriptor.n -> width of the length.
LENGTH_WIDTH = {-2: 1, -3: 4, -4: 4, -5: 8}

#: Whole instructions to insert.
SNIPPETS = [
    b"(",
    b"0",
    b"1",
    b"2",
    b".",
    b"N",
    b"]",
    b"}",
    b")",
    b"\x8f",
    b"a",
    b"e",
    b"s",
    b"u",
    b"\x90",
    b"t",
    b"\x85",
    b"\x86",
    b"\x87",
    b"\x91",
    b"l",
    b"d",
    b"b",
    b"R",
    b"\x81",
    b"\x92",
    b"\x93",
    b"\x94",
    b"\x97",
    b"\x98",
    b"h\x00",
    b"q\x00",
    b"j\xff\xff\xff\xff",
    b"r\xff\xff\xff\xff",
    b"K\x00",
    b"K\xff",
    b"J\xff\xff\xff\x7f",
    b"\x80\x05",
    b"\x80\x02",
    b"\x95\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\x95\x10\x00\x00\x00\x00\x00\x00\x00",
    b"\x8c\x01a",
    b"\x8c\x08builtins",
    b"X\x00\x00\x00\x00",
    b"C\x00",
    b"\x96\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\x8a\x00",
    b"I01\n",
    b"g0\n",
    b"p0\n",
    b"S''\n",
    b"V\n",
]

LINE_VALUES = [
    b"",
    b"0",
    b"-1",
    b"01",
    b"00",
    b"1e999",
    b"nan",
    b"-0",
    b"0x10",
    b" 12",
    b"12L",
    b"'",
    b"'abc",
    b"'abc\"",
    b"'\\x4'",
    b"'\\'",
    b"\\u12",
    b"\\U00110000",
    b"\xff",
    b"\xed\xa0\x80",
    b"builtins",
    b"no_such_module",
    b"9" * 5000,
    b"4294967295",
    b"-4294967296",
]

INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, *ASSIGNED]


# --------------------------------------------------------------------------------------
# Decoding (best effort: the inputs are often malformed)
# --------------------------------------------------------------------------------------


def decoded_ops(data):
    """[(opcode, arg, pos, end)] of the instructions pickletools can decode, in order."""
    result = []
    try:
        previous = None
        for op, arg, pos in pickletools.genops(data):
            if previous is not None:
                result.append((*previous, pos))
            previous = (op, arg, pos)
        if previous is not None:
            result.append((*previous, previous[2] + 1))
    except Exception:
        if previous is not None:
            result.append((*previous, len(data)))
    return result


def names_a_global(data):
    return any(op.name in GLOBALISH for op, _, _, _ in decoded_ops(data))


def huge_memo_index(data):
    """Whether a memo PUT index exceeds 2**20 (C pickle would allocate 16 bytes per index)."""
    for op, arg, _, _ in decoded_ops(data):
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and isinstance(arg, int) and arg > 2**20:
            return True
    return False


# --------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------


class Mutator:
    def __init__(self, rng, seeds, max_len):
        self.rng = rng
        self.seeds = seeds
        self.max_len = max_len
        self.strategies = [
            (self.flip_bits, 3),
            (self.set_byte, 3),
            (self.insert_bytes, 2),
            (self.delete_bytes, 2),
            (self.duplicate_bytes, 1),
            (self.splice, 2),
            (self.tweak_field, 5),
            (self.tweak_line, 2),
            (self.replace_opcode, 3),
            (self.insert_snippet, 3),
            (self.edit_instructions, 3),
        ]
        self.functions = [f for f, _ in self.strategies]
        self.weights = [w for _, w in self.strategies]

    def mutate(self, data):
        count = 1
        while count < 4 and self.rng.random() < 0.4:
            count += 1
        for _ in range(count):
            strategy = self.rng.choices(self.functions, self.weights)[0]
            data = strategy(data)
        return data[: self.max_len]

    def _pos(self, data, extra=0):
        return self.rng.randrange(len(data) + extra) if len(data) + extra > 0 else 0

    def flip_bits(self, data):
        if not data:
            return bytes([self.rng.randrange(256)])
        out = bytearray(data)
        for _ in range(self.rng.choice((1, 1, 2, 4))):
            i = self._pos(out)
            out[i] ^= 1 << self.rng.randrange(8)
        return bytes(out)

    def set_byte(self, data):
        if not data:
            return bytes([self.rng.choice(INTERESTING_BYTES)])
        out = bytearray(data)
        value = self.rng.choice(INTERESTING_BYTES) if self.rng.random() < 0.6 else None
        out[self._pos(out)] = self.rng.randrange(256) if value is None else value
        return bytes(out)

    def insert_bytes(self, data):
        i = self._pos(data, 1)
        n = self.rng.choice((1, 1, 2, 4, 8, 16))
        chunk = bytes(self.rng.choice(INTERESTING_BYTES) for _ in range(n))
        return data[:i] + chunk + data[i:]

    def delete_bytes(self, data):
        if not data:
            return data
        i = self._pos(data)
        n = self.rng.choice((1, 1, 2, 4, 8, 32))
        return data[:i] + data[i + n :]

    def duplicate_bytes(self, data):
        if not data:
            return data
        i = self._pos(data)
        n = self.rng.choice((1, 2, 8, 64))
        return data[: i + n] + data[i : i + n] + data[i + n :]

    def splice(self, data):
        other = self.rng.choice(self.seeds)
        if self.rng.random() < 0.5:  # head of one, tail of the other
            return data[: self._pos(data, 1)] + other[self._pos(other, 1) :]
        i = self._pos(other, 1)  # a chunk of the other inserted
        chunk = other[i : i + self.rng.choice((1, 4, 16, 64))]
        j = self._pos(data, 1)
        return data[:j] + chunk + data[j:]

    def _instructions(self, data):
        ops = decoded_ops(data)
        return ops if ops else None

    def tweak_field(self, data):
        """Set a length, index or fixed-width number to 0, max, value +- 1, bytes left..."""
        fields = []
        for op, arg, pos, _end in decoded_ops(data):
            if op.arg is None:
                continue
            n = op.arg.n
            if n > 0:
                fields.append((pos + 1, n, arg if isinstance(arg, int) else 0))
            elif n in LENGTH_WIDTH:
                width = LENGTH_WIDTH[n]
                raw = data[pos + 1 : pos + 1 + width]
                fields.append((pos + 1, width, int.from_bytes(raw, "little")))
        if not fields:
            return self.set_byte(data)
        offset, width, value = self.rng.choice(fields)
        left = len(data) - offset - width
        bits = 8 * width
        value = self.rng.choice(
            [
                0,
                1,
                2**bits - 1,
                2 ** (bits - 1) - 1,
                2 ** (bits - 1),
                value + 1,
                value - 1,
                value * 2,
                left,
                left + 1,
                left - 1,
                self.rng.randrange(2**bits),
            ]
        )
        raw = (value % 2**bits).to_bytes(width, "little")
        return data[:offset] + raw + data[offset + width :]

    def tweak_line(self, data):
        """Replace a text argument (INT, LONG, FLOAT, GET, PUT, STRING, GLOBAL...) line."""
        lines = []
        for op, _arg, pos, end in decoded_ops(data):
            if op.arg is not None and op.arg.n == -1:
                newline = data.find(b"\n", pos + 1, end)
                if newline >= 0:
                    lines.append((pos + 1, newline))
        if not lines:
            return self.insert_snippet(data)
        start, newline = self.rng.choice(lines)
        return data[:start] + self.rng.choice(LINE_VALUES) + data[newline:]

    def replace_opcode(self, data):
        ops = self._instructions(data)
        if not ops:
            return self.set_byte(data)
        pos = self.rng.choice(ops)[2]
        if self.rng.random() < 0.95:
            code = self.rng.choice(OPCODE_BYTES)
        else:
            code = bytes([self.rng.choice([b for b in range(256) if b not in ASSIGNED])])
        return data[:pos] + code + data[pos + 1 :]

    def insert_snippet(self, data):
        ops = self._instructions(data)
        pos = self.rng.choice(ops)[2] if ops else self._pos(data, 1)
        snippet = self.rng.choice(SNIPPETS) * self.rng.choice((1, 1, 1, 2, 3, 100))
        return data[:pos] + snippet + data[pos:]

    def edit_instructions(self, data):
        """Delete, duplicate, or swap whole instructions."""
        ops = self._instructions(data)
        if not ops:
            return self.delete_bytes(data)
        i = self.rng.randrange(len(ops))
        _, _, pos, end = ops[i]
        action = self.rng.randrange(3)
        if action == 0:
            return data[:pos] + data[end:]
        if action == 1:
            return data[:end] + data[pos:end] + data[end:]
        if i + 1 >= len(ops):
            return data
        _, _, pos2, end2 = ops[i + 1]
        return data[:pos] + data[pos2:end2] + data[pos:end] + data[end2:]


# --------------------------------------------------------------------------------------
# Sandbox
# --------------------------------------------------------------------------------------


class SandboxViolation(Exception):
    """An input tried something the fuzzer does not allow while it runs."""


SANDBOX = {"active": False}
_BLOCKED_PREFIXES = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.rename",
    "os.replace",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.chdir",
    "os.putenv",
    "os.unsetenv",
    "subprocess.",
    "shutil.",
    "socket.",
    "ctypes.",
    "import",
    "exec",
    "compile",
    "builtins.input",
    "webbrowser.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "sys.settrace",
    "sys.setprofile",
    "sys.addaudithook",
    "sys._getframe",
    "signal.",
    "resource.setrlimit",
    "faulthandler.",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _audit(event, args):
    if not SANDBOX["active"]:
        return
    blocked = event.startswith(_BLOCKED_PREFIXES)
    if event == "open":
        _path, mode, flags = (tuple(args) + (None, None, None))[:3]
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            blocked = True
        if isinstance(flags, int) and flags & _WRITE_FLAGS:
            blocked = True
    elif event in ("object.__setattr__", "object.__delattr__"):
        blocked = isinstance(args[0], (type, types.ModuleType))
    if blocked:
        raise SandboxViolation(f"blocked while fuzzing: {event}")


# --------------------------------------------------------------------------------------
# Judging outcomes
# --------------------------------------------------------------------------------------


def _from_called_python_code(exc):
    """Whether the exception was raised inside Python code the reader called."""
    here = os.path.abspath(__file__)
    package = os.path.dirname(os.path.abspath(sys.modules["anypickle"].__file__))
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = os.path.abspath(frame.filename) if frame.filename[:1] != "<" else ""
        if frame.filename.startswith("<frozen") or (
            filename and filename != here and not filename.startswith(package)
        ):
            return True
    return False


def judge(exc, data):
    """None if raising ``exc`` on ``data`` is acceptable, else why not."""
    message = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        if SUFFIX_RE.search(message):
            return None
        offsets = OFFSET_RE.findall(message)
        if offsets and int(offsets[-1]) < len(data) and data[int(offsets[-1])] not in ASSIGNED:
            return None  # an unassigned opcode byte has no name
        return "reader error without '(opcode NAME at offset N)'"
    if isinstance(exc, EOFError):
        return None if OFFSET_RE.search(message) else "EOFError without 'offset N'"
    if isinstance(exc, SystemError):
        return "SystemError"
    if isinstance(exc, SandboxViolation):
        return None
    if isinstance(exc, (ImportError, AttributeError, TypeError, IndexError)):
        return None
    if (type(exc), message) in BUILTIN_MESSAGES:
        return None
    if _from_called_python_code(exc) or names_a_global(data):
        return None
    return f"unexpected {type(exc).__name__}"


def _norm_repr(value):
    try:
        text = repr(value)
    except Exception:  # RecursionError for deep nesting, a broken __repr__
        return f"<{type(value).__qualname__}>"
    return ADDRESS_RE.sub("0x?", text)


def same_value(a, b):
    return type(a) is type(b) and _norm_repr(a) == _norm_repr(b)


def _run(loads, data):
    SANDBOX["active"] = True
    try:
        return ("ok", loads(data))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return ("raised", exc)
    finally:
        SANDBOX["active"] = False


def _agree(x, y):
    if x[0] != y[0]:
        return False
    return x[0] == "raised" or same_value(x[1], y[1])


def strict_framing(outcome):
    """anypickle rejected an opcode or argument that runs past the end of its frame.

    The reader checks frames more strictly than both stdlib readers (C ignores frame
    boundaries; pickle.py reads an argument that starts exactly at a frame's end from
    the stream): a documented difference, not a finding.
    """
    kind, exc = outcome
    return kind == "raised" and isinstance(exc, pickle.UnpicklingError) and "frame" in str(exc)


def _outcome_text(outcome):
    kind, value = outcome
    if kind == "ok":
        return f"returned {_norm_repr(value)[:120]}"
    return f"raised {type(value).__name__}: {str(value)[:120]}"


# --------------------------------------------------------------------------------------
# Main loop
# --------------------------------------------------------------------------------------


def _vm_size_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _load_seeds(directory, max_len):
    seeds = []
    for path in sorted(Path(directory).iterdir()):
        if path.is_file() and not path.name.startswith("."):
            data = path.read_bytes()
            if len(data) <= max_len:
                seeds.append(data)
    return seeds


def _prepare_imports(seeds, anypickle):
    """Import the modules the seeds refer to (no imports are allowed while fuzzing)."""
    import copyreg  # noqa: F401 - used by reductions of the seeds

    # C pickle prints "SystemError: deallocated bytearray object has exported buffers"
    # (through sys.excepthook) for a BYTEARRAY8 longer than memory: keep the log clean.
    hook, sys.excepthook = sys.excepthook, lambda *_: None
    for data in seeds:
        for loads in (pickle.loads, anypickle.loads):
            try:
                loads(data)
            except Exception:
                pass
    for data in (b"", b"\xff", b"(.", b"\x80\x05\x8c\x01x\x8c\x01y\x93."):
        try:
            anypickle.loads(data)
        except Exception:
            pass
    sys.excepthook = hook


class Findings:
    def __init__(self, directory):
        self.directory = Path(directory) if directory else None
        self.by_key = {}
        self.total = 0

    def add(self, kind, detail, data):
        self.total += 1
        key = (kind, re.sub(r"\d+", "N", detail)[:100])
        known = self.by_key.get(key)
        if known is None:
            self.by_key[key] = [1, data, detail]
            print(f"finding: {kind}: {detail[:200]} (input of {len(data)} bytes)", flush=True)
        else:
            known[0] += 1
            if len(data) < len(known[1]):
                known[1], known[2] = data, detail
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha1(data).hexdigest()
            (self.directory / name).write_bytes(data)

    def report(self):
        print(f"findings: {len(self.by_key)} unique, {self.total} total")
        for (kind, _), (count, data, detail) in sorted(
            self.by_key.items(), key=lambda kv: -kv[1][0]
        ):
            print(f"  {count:>6}x {kind}: {detail[:200]}")
            print(f"          smallest input ({len(data)} bytes): {data[:120].hex()}")


def _open_current_input_file(max_len):
    handle, path = tempfile.mkstemp(prefix="anypickle-fuzz-", suffix=".current")
    os.ftruncate(handle, len(HEADER) + 4 + max_len)
    mapping = mmap.mmap(handle, len(HEADER) + 4 + max_len)
    os.close(handle)
    mapping[: len(HEADER)] = HEADER
    return path, mapping


def _read_input(path):
    raw = Path(path).read_bytes()
    if raw.startswith(HEADER):
        n = int.from_bytes(raw[len(HEADER) : len(HEADER) + 4], "little")
        return raw[len(HEADER) + 4 : len(HEADER) + 4 + n]
    return raw


def _replay(path, anypickle):
    data = _read_input(path)
    print(f"input: {len(data)} bytes: {data[:200].hex()}")
    try:
        pickletools.dis(data, annotate=0)
    except Exception as exc:
        print(f"(pickletools stops: {exc!r})")
    for name, loads in (("anypickle.loads", anypickle.loads), ("pickle.loads", pickle.loads)):
        outcome = _run(loads, data)
        print(f"{name}: {_outcome_text(outcome)}")
        if outcome[0] == "raised" and loads is anypickle.loads:
            problem = judge(outcome[1], data)
            print(f"verdict: {problem or 'acceptable'}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--corpus", default=str(REPO / "fuzz" / "corpus"), help="seed directory")
    parser.add_argument("--diff", action="store_true", help="compare with C pickle.loads")
    parser.add_argument("--max-len", type=int, default=1 << 18, help="longest input (bytes)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address space headroom")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a hang")
    parser.add_argument("--findings-dir", default=None, help="save inputs of findings here")
    parser.add_argument("--replay", default=None, help="run one input file and explain it")
    args = parser.parse_args(argv)

    faulthandler.enable(all_threads=True)
    if TESTS.is_dir():
        sys.path.insert(0, str(TESTS))  # the seeds refer to classes in tests/corpus.py
    import anypickle

    try:
        import corpus

        corpus.extension_codes().__enter__()  # the seeds' EXT codes stay registered
    except ImportError:
        pass

    if args.replay:
        return _replay(args.replay, anypickle)

    seeds = _load_seeds(args.corpus, args.max_len)
    if not seeds:
        print(f"no seeds in {args.corpus} (run fuzz/make_corpus.py)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    _prepare_imports(seeds, anypickle)
    sys.addaudithook(_audit)
    current_path, current = _open_current_input_file(args.max_len)
    limit = _vm_size_bytes() + args.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    print(
        f"anypickle fuzzer: seed {seed}, {len(seeds)} seeds, {args.seconds:g} s, "
        f"diff={'on' if args.diff else 'off'}; the input being run is mirrored to "
        f"{current_path} (kept if the process dies)",
        flush=True,
    )

    mutator = Mutator(rng, seeds, args.max_len)
    findings = Findings(args.findings_dir)
    outcomes = collections.Counter()
    expected_diffs = collections.Counter()
    pool = []
    executions = 0
    start = time.monotonic()
    deadline = start + args.seconds
    armed_at = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= deadline or (args.runs and executions >= args.runs):
                break
            if now - armed_at > 1.0:  # the watchdog fires if one input takes > timeout
                faulthandler.dump_traceback_later(args.timeout + 1.0, exit=True)
                armed_at = now
            base = rng.choice(pool) if pool and rng.random() < 0.25 else rng.choice(seeds)
            data = mutator.mutate(base)
            current[4:8] = len(data).to_bytes(4, "little")
            current[8 : 8 + len(data)] = data
            executions += 1

            outcome = _run(anypickle.loads, data)
            kind, value = outcome
            if kind == "ok":
                outcomes["returns"] += 1
                if len(pool) < 512:
                    pool.append(data)
                else:
                    pool[rng.randrange(len(pool))] = data
            else:
                outcomes[type(value).__name__] += 1
                problem = judge(value, data)
                if problem:
                    findings.add(problem, f"{type(value).__name__}: {value}", data)

            if args.diff:
                if huge_memo_index(data):
                    expected_diffs["skipped: C allocates the memo index"] += 1
                    continue
                reference = _run(pickle.loads, data)
                if _agree(outcome, reference):
                    continue
                pure = _run(pickle._loads, data)
                if _agree(outcome, pure):
                    expected_diffs[f"C {_outcome_text(reference)[:60]}"] += 1
                    continue
                if strict_framing(outcome):
                    expected_diffs["anypickle's strict frame checks"] += 1
                    continue
                findings.add(
                    "differs from pickle.loads",
                    f"anypickle {_outcome_text(outcome)}; pickle {_outcome_text(reference)}",
                    data,
                )
            outcome = value = reference = None
    finally:
        faulthandler.cancel_dump_traceback_later()
        elapsed = time.monotonic() - start
        current.close()
        os.unlink(current_path)

    print(f"executions: {executions} in {elapsed:.1f} s ({executions / max(elapsed, 1e-9):.0f}/s)")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    if args.diff:
        explained = sum(expected_diffs.values())
        print(f"differences explained by pickle.py agreeing with anypickle: {explained}")
        for text, count in expected_diffs.most_common(8):
            print(f"  {count:>6}x {text}")
    findings.report()
    return 1 if findings.by_key else 0


if __name__ == "__main__":
    sys.exit(main())
