"""Resource bounds of anypickle's reader on hostile input (each check in a child process).

* **Lying lengths and indices**: every ~20-byte input of the catalogue that claims
  gigabytes (LONG4, BINUNICODE(8), BINBYTES(8), BYTEARRAY8, BINSTRING, FRAME) or a
  memo index of 2**32 - 1 must be rejected (or, for a memo PUT, may load) in under
  a second, with peak RSS under +50 MiB, in a child whose address space is capped
  at 512 MiB above its size at start: a reader that allocates the claimed size
  before checking the bytes present gets a MemoryError, or aborts, instead of
  getting away with untouched pages.  (C ``pickle`` does exactly that for
  BINBYTES/BINBYTES8/BYTEARRAY8: it allocates the claimed size first, so a 2 GiB
  claim costs it 2 GiB of address space, a 1 TiB claim a MemoryError, and on
  3.11 a BYTEARRAY8 claim also prints "SystemError: deallocated bytearray object
  has exported buffers".  For LONG_BINPUT 2**32 - 1 it asks for 64 GiB of memo:
  MemoryError; for 2**27 it allocates and zeroes 2 GiB, taking 7 s on this VM, for
  2**29 8 GiB and 33 s - from a 9-byte pickle.)
* **Depth**: 1,000,000 levels of nesting in several shapes (lists through APPEND,
  APPENDS and LIST, tuples through TUPLE and TUPLE1, dicts through SETITEM and
  SETITEMS, frozensets, REDUCE and BUILD chains, and a deep structure abandoned
  by an error or by the end of the input) must load, or fail with a clear
  RecursionError/UnpicklingError, and the result (or the half-built stack) must
  be dropped without a native stack overflow.  C ``pickle`` loads all of these
  (0.2-1 s, 100-400 MB) and CPython's deallocator handles the depth.
* **Work** (measured, not asserted): a dict or set whose int keys all hash to 0
  (``k * (2**61 - 1)``) costs quadratic time in any reader that builds a real
  dict.  On this VM (CPython 3.11.7) C ``pickle.loads`` takes 0.03 s for 2,000
  keys (25 KB of pickle), 0.14 s for 4,000, 0.47 s for 8,000 and 1.5 s for
  16,000 (200 KB): a 1 MB pickle would take about 40 s.  anypickle, which
  fills the dict with the same CPython calls, takes about the same (the test
  prints both).  Int literals of 1,000,000 digits are refused in
  milliseconds by both (CPython's int max_str_digits limit).
"""

from __future__ import annotations

import json
import pickle
import textwrap
import time

import anypickle
import pytest
import test_reader_malformed as catalogue
from conftest import assert_clean_exit, describe_returncode, run_python

HEADROOM_MIB = 512
RSS_LIMIT_MIB = 50
TIME_LIMIT_S = 1.0

# --------------------------------------------------------------------------------------
# Lying lengths and indices
# --------------------------------------------------------------------------------------

_EXTRA_LYING = {
    # C pickle allocates and zeroes 16 bytes per index for these 9-byte pickles: on this VM
    # 2 GiB and 7 s for 2**27, 8 GiB and 33 s for 2**29 (then returns None).
    "memo:long-binput-2**27": catalogue.proto(2)
    + pickle.NONE
    + pickle.LONG_BINPUT
    + catalogue.u32(2**27)
    + pickle.STOP,
    "memo:long-binput-2**29": catalogue.proto(2)
    + pickle.NONE
    + pickle.LONG_BINPUT
    + catalogue.u32(2**29)
    + pickle.STOP,
    "memo:long-binput-2**31-1": catalogue.proto(2)
    + pickle.NONE
    + pickle.LONG_BINPUT
    + catalogue.u32(2**31 - 1)
    + pickle.STOP,
    "memo:binput-then-long-binget-max": catalogue.proto(2)
    + pickle.NONE
    + pickle.BINPUT
    + b"\x00"
    + pickle.LONG_BINGET
    + catalogue.u32(2**32 - 1)
    + pickle.STOP,
    "len:long1-255": catalogue.proto(2) + pickle.LONG1 + b"\xff" + b"\x01" * 10 + pickle.STOP,
    "len:binbytes8-2GB-in-frame": catalogue.proto(4)
    + catalogue.framed(pickle.BINBYTES8 + catalogue.u64(2**31) + b"abc")
    + pickle.STOP,
    "len:binunicode8-2GB-in-frame": catalogue.proto(4)
    + catalogue.framed(pickle.BINUNICODE8 + catalogue.u64(2**31) + b"abc")
    + pickle.STOP,
}


def _may_return(expect):
    if isinstance(expect, catalogue.Either):
        return any(_may_return(option) for option in expect.options)
    return isinstance(expect, catalogue.Returns)


#: name -> (data, whether loading may succeed)
LYING = {
    **{
        c.name: (c.data, _may_return(c.expect))
        for c in catalogue.CASES
        if c.name.startswith(("len:", "memo:long-"))
    },
    **{name: (data, name.startswith("memo:long-binput")) for name, data in _EXTRA_LYING.items()},
}

LYING_CHILD = r"""
import gc, json, resource, time
import anypickle, pickle

def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])

data = bytes.fromhex(DATA_HEX)
# Warm up (lazy imports, first-call caches) before measuring.
for warm in (b"\x80\x05N.", b"", b"\x80\x04\x95"):
    try:
        anypickle.loads(warm)
    except Exception:
        pass
gc.collect()
limit = (status_kib("VmSize") + HEADROOM_MIB * 1024) * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
vm_before = status_kib("VmPeak")
start = time.perf_counter()
try:
    value = anypickle.loads(data)
    outcome = {"kind": "returns", "type": type(value).__name__}
except BaseException as exc:
    outcome = {
        "kind": "raises",
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": str(exc)[:300],
    }
outcome["seconds"] = time.perf_counter() - start
outcome["rss_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
outcome["vm_peak_mib"] = (status_kib("VmPeak") - vm_before) / 1024
print(json.dumps(outcome))
"""


@pytest.mark.parametrize("name", sorted(LYING))
def test_lying_length_is_cheap(name):
    data, may_return = LYING[name]
    assert len(data) < 64
    code = (
        textwrap.dedent(LYING_CHILD)
        .replace("DATA_HEX", repr(data.hex()))
        .replace("HEADROOM_MIB", str(HEADROOM_MIB))
    )
    rc, out, err = run_python(code, timeout=120)
    assert rc == 0, (
        f"child {describe_returncode(rc)} on {data!r}: an allocation above the "
        f"{HEADROOM_MIB} MiB headroom (allocating before checking the bytes present?)\n"
        f"{err[-3000:]}"
    )
    result = json.loads(out.strip().splitlines()[-1])
    if result["kind"] == "returns":
        assert may_return, f"loaded {data!r} as a {result['type']}"
    else:
        assert "UnpicklingError" in result["mro"], f"{data!r}: raised {result}"
    assert result["seconds"] < TIME_LIMIT_S, result
    assert result["rss_mib"] < RSS_LIMIT_MIB, result


# --------------------------------------------------------------------------------------
# 1,000,000 levels of nesting
# --------------------------------------------------------------------------------------

N = 1_000_000

#: name -> (expression building the pickle from N, how to measure the depth of the
#: result, the depth expected).  The measures are loops: nothing here recurses.
DEEP_SHAPES = {
    "lists-APPEND": (
        r'b"\x80\x02" + b"]" * N + b"a" * (N - 1) + b"."',
        "list",
        N - 1,
    ),
    "lists-APPENDS": (
        r'b"\x80\x02]" + b"(]" * (N - 1) + b"e" * (N - 1) + b"."',
        "list",
        N - 1,
    ),
    "lists-MARK-LIST": (r'b"(" * N + b"l" * N + b"."', "list", N - 1),
    "tuples-MARK-TUPLE": (r'b"(" * N + b"t" * N + b"."', "tuple", N - 1),
    "tuples-TUPLE1": (r'b"\x80\x02)" + b"\x85" * N + b"."', "tuple", N),
    "dicts-SETITEM": (
        r'b"\x80\x02" + b"}K\x00" * N + b"N" + b"s" * N + b"."',
        "dict",
        N,
    ),
    "dicts-SETITEMS": (
        r'b"\x80\x02" + b"}(K\x00" * N + b"N" + b"u" * N + b"."',
        "dict",
        N,
    ),
    "frozensets-FROZENSET": (r'b"\x80\x04" + b"(" * N + b"\x91" * N + b"."', "frozenset", N - 1),
    "lists-REDUCE-chain": (
        # list(((...),)) N times: N copies of builtins.list, then () and REDUCEs.
        r'b"\x80\x02cbuiltins\nlist\nq\x00" + b"h\x00" * (N - 1) + b")R"'
        r' + b"\x85\x85R" * (N - 1) + b"."',
        "list",
        N - 1,
    ),
    "namespaces-BUILD-chain": (
        # SimpleNamespace(a=SimpleNamespace(a=...)) set through BUILD with a state dict.
        r'b"\x80\x04\x8c\x05types\x8c\x0fSimpleNamespace\x93\x940"'
        r' + b"h\x00)R}\x8c\x01a" * N + b"N" + b"sb" * N + b"."',
        "namespace",
        N,
    ),
    "lists-then-bad-opcode": (r'b"\x80\x02" + b"]" * N + b"a" * (N - 1) + b"\xff"', "error", None),
    "lists-then-end-of-input": (r'b"\x80\x02" + b"]" * N + b"a" * (N - 1)', "error", None),
}

DEEP_CHILD = r"""
import gc, json, pickle, resource, sys, time, types
import anypickle

N = NESTING
data = DATA_EXPR
KIND = KIND_NAME

def depth_of(obj):
    depth = 0
    while True:
        if KIND == "list" and type(obj) is list and obj:
            obj = obj[0]
        elif KIND == "tuple" and type(obj) is tuple and obj:
            obj = obj[0]
        elif KIND == "dict" and type(obj) is dict and obj:
            obj = obj[0]
        elif KIND == "frozenset" and type(obj) is frozenset and obj:
            obj = next(iter(obj))
        elif KIND == "namespace" and type(obj) is types.SimpleNamespace:
            obj = obj.a
        else:
            return depth
        depth += 1

start = time.perf_counter()
try:
    obj = anypickle.loads(data)
except (RecursionError, EOFError, pickle.UnpicklingError) as exc:
    del data
    result = {"kind": "raises", "mro": [c.__name__ for c in type(exc).__mro__],
              "message": str(exc)[:300]}
    del exc
    gc.collect()  # the half-built structure is gone by now
else:
    loaded = time.perf_counter() - start
    del data
    depth = depth_of(obj)
    start = time.perf_counter()
    del obj
    gc.collect()
    result = {"kind": "returns", "depth": depth, "load_s": loaded,
              "drop_s": time.perf_counter() - start}
result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


@pytest.mark.parametrize("shape", list(DEEP_SHAPES))
def test_deep_nesting_loads_and_drops(shape):
    expr, kind, depth = DEEP_SHAPES[shape]
    code = (
        textwrap.dedent(DEEP_CHILD)
        .replace("NESTING", str(N))
        .replace("DATA_EXPR", expr)
        .replace("KIND_NAME", repr(kind))
    )
    rc, out, err = run_python(code, timeout=300)
    assert_clean_exit(rc, out, err)
    result = json.loads(out.strip().splitlines()[-1])
    if kind == "error":
        expected = "EOFError" if shape.endswith("end-of-input") else "UnpicklingError"
        assert result["kind"] == "raises" and expected in result["mro"], result
    elif result["kind"] == "raises":
        # A clear refusal is acceptable: RecursionError or a reader error with a message.
        assert {"RecursionError", "UnpicklingError"} & set(result["mro"]), result
        assert result["message"], result
    else:
        assert result["depth"] == depth, result


NESTED_LOADS_CHILD = r"""
import json, struct
import anypickle

# Each level is builtins-free: anypickle.loads(<the level below>) through REDUCE.
p = b"N."
for _ in range(LEVELS):
    p = b"canypickle\nloads\n" + b"B" + struct.pack("<I", len(p)) + p + b"\x85R."
try:
    result = {"kind": "returns", "repr": repr(anypickle.loads(p))}
except RecursionError as exc:
    result = {"kind": "raises", "type": "RecursionError", "message": str(exc)[:200]}
print(json.dumps(result))
"""


def test_nested_loads_through_reduce():
    """A pickle whose REDUCE calls anypickle.loads on a pickle that does the same, 3,000 deep.

    The reader is re-entered from inside itself; past the recursion limit that must
    be a RecursionError (C pickle raises one at the limit), never a stack overflow.
    """
    code = textwrap.dedent(NESTED_LOADS_CHILD).replace("LEVELS", "3000")
    rc, out, err = run_python(code, timeout=120)
    assert_clean_exit(rc, out, err)
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"kind": "returns", "repr": "None"} or result["kind"] == "raises", result


# --------------------------------------------------------------------------------------
# Work bounds: measured and printed, not asserted
# --------------------------------------------------------------------------------------

MERSENNE_61 = 2**61 - 1  # hash(k * (2**61 - 1)) == 0 for every int k


def _int_ops(keys):
    return [pickle.dumps(k, 2)[2:-1] for k in keys]


def _dict_pickle(keys):
    return b"\x80\x02}(" + b"".join(k + b"N" for k in _int_ops(keys)) + b"u."


def _set_pickle(keys):
    return b"\x80\x04\x8f(" + b"".join(_int_ops(keys)) + b"\x90."


def _timed(loads, data):
    start = time.perf_counter()
    value = loads(data)
    return time.perf_counter() - start, value


@pytest.mark.parametrize("n", [4000, 8000])
def test_hash_flood_is_measured(n):
    colliding = [k * MERSENNE_61 for k in range(1, n + 1)]
    assert len({hash(k) for k in colliding}) == 1
    rows = []
    for what, data, size in [
        ("dict, colliding keys", _dict_pickle(colliding), n),
        ("set, colliding keys", _set_pickle(colliding), n),
        ("dict, distinct hashes", _dict_pickle(range(n)), n),
    ]:
        t_std, v_std = _timed(pickle.loads, data)
        t_any, v_any = _timed(anypickle.loads, data)
        assert len(v_std) == len(v_any) == size
        assert sorted(v_std) == sorted(v_any)  # not ==: that would probe the collisions again
        rows.append(f"{what:<24} n={n:<6} {len(data):>8} B  pickle {t_std:7.3f} s  ")
        rows[-1] += f"anypickle {t_any:7.3f} s"
    print("\n" + "\n".join(rows))


@pytest.mark.parametrize("opcode", [b"I", b"L"])
def test_million_digit_int_literal_is_measured(opcode):
    data = opcode + b"9" * 1_000_000 + (b"L" if opcode == b"L" else b"") + b"\n."
    rows = []
    for name, loads in [("pickle", pickle.loads), ("anypickle", anypickle.loads)]:
        start = time.perf_counter()
        try:
            loads(data)
            outcome = "returns"
        except ValueError as exc:  # CPython's int max_str_digits limit
            outcome = f"{type(exc).__name__}: {str(exc)[:60]}"
        rows.append(f"{name:<10} {time.perf_counter() - start:7.3f} s  {outcome}")
    print("\n" + "\n".join(rows))
