"""Shared constants, helpers and fixtures of the anypickle writer tests.

Test modules import the helpers directly (``from conftest import ...``); this
works because pytest puts this directory on ``sys.path`` (rootdir-relative
"prepend" import mode, the default) and registers this file as ``conftest``.

* ``PROTOCOLS``: every pickle protocol anypickle writes.
* ``run_python(code)``: run a snippet in a fresh interpreter (same
  ``sys.executable``), return ``(returncode, stdout, stderr)``.  Crash-prone
  checks (deep nesting, mutating reducers, leak loops) run there so that a
  crash fails one test instead of killing the whole session.
* ``assert_equivalent(expected, actual)``: structural equality that handles nan,
  -0.0, cycles, and the identity of shared mutable parts.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import math
import os
import pickle
import pickletools
import signal
import subprocess
import sys
import textwrap
import types

import anypickle
import pytest

try:
    import numpy
except ImportError:  # pragma: no cover - optional dependency
    numpy = None

#: Every protocol anypickle writes (and the stdlib can compare against).
PROTOCOLS = range(0, 6)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------
# Subprocess runner
# --------------------------------------------------------------------------------------


def run_python(code, *, timeout=600, env=None):
    """Run ``code`` with ``sys.executable -X faulthandler -c`` and return (rc, out, err).

    The child sees this directory on ``PYTHONPATH`` (so it can import ``corpus``
    and ``conftest``) in front of the parent's own ``PYTHONPATH``.  ``env``
    adds or overrides environment variables.
    """
    child_env = dict(os.environ)
    paths = [TESTS_DIR]
    if child_env.get("PYTHONPATH"):
        paths.append(child_env["PYTHONPATH"])
    child_env["PYTHONPATH"] = os.pathsep.join(paths)
    child_env.pop("PYTHONSTARTUP", None)
    if env:
        child_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def describe_returncode(rc):
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def assert_clean_exit(rc, out, err):
    """Fail with the child's output unless it exited with status 0."""
    assert rc == 0, (
        f"child interpreter failed ({describe_returncode(rc)})\n"
        f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}"
    )


@pytest.fixture
def python_subprocess():
    """The ``run_python`` helper as a fixture."""
    return run_python


@pytest.fixture(params=list(PROTOCOLS), ids=lambda p: f"proto{p}")
def protocol(request):
    """Each pickle protocol, 0 to 5."""
    return request.param


# --------------------------------------------------------------------------------------
# Structural equivalence
# --------------------------------------------------------------------------------------

# Objects of these types are compared by value; their identity is not tracked
# (pickle only guarantees the identity of shared *mutable* parts; immutable
# atoms may or may not be memoized).
_VALUE_TYPES = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    tuple,
    frozenset,
    range,
    slice,
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.tzinfo,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)

_MUTABLE_TYPES = (list, dict, set, bytearray, collections.deque)

# Objects pickled by reference: a round trip must give back the very same object.
_BY_REFERENCE_TYPES = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
)


class NotEquivalent(AssertionError):
    pass


def _same_float(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _has_identity_eq(obj):
    return type(obj).__eq__ is object.__eq__


def _is_tracked(obj):
    """Whether ``obj``'s identity (sharing, cycles) must survive a round trip."""
    if isinstance(obj, _MUTABLE_TYPES):
        return True
    if numpy is not None and isinstance(obj, numpy.ndarray):
        return True
    if isinstance(obj, _VALUE_TYPES):
        return False
    return _has_identity_eq(obj)


def _materialize_reduce(rv):
    """A __reduce_ex__ result with its iterators turned into lists (comparable twice)."""
    if isinstance(rv, tuple):
        items = list(rv)
        for i in (3, 4):
            if i < len(items) and items[i] is not None:
                items[i] = list(items[i])
        return tuple(items)
    return rv


def _instance_state(obj):
    """Attributes stored in a __dict__ of an instance of a builtin subclass, if any."""
    try:
        return vars(obj)
    except TypeError:
        return None


def assert_equivalent(expected, actual, *, check_identity=True, _visited=None):
    """Assert that ``actual`` (e.g. ``pickle.loads(dumps(expected))``) matches ``expected``.

    * Types must match exactly (a ``PickleBuffer`` matches the bytes/bytearray it wraps).
    * Floats: nan matches nan, -0.0 does not match 0.0.
    * Containers are compared element by element, dicts in insertion order,
      instances through their ``__reduce_ex__(4)`` output (so __dict__,
      __slots__, __getstate__ state are all covered).
    * Shared mutable parts and cycles: with ``check_identity`` (the default)
      each mutable part of ``expected`` must correspond to exactly one part of
      ``actual`` and vice versa, so ``[a, a]`` must load as two references to
      one list, and ``[[], []]`` as two distinct lists.

    The traversal is iterative, so deep structures do not hit the recursion limit.
    """
    forward = {}  # id(expected part) -> actual part
    backward = {}  # id(actual part) -> expected part
    # Pairs already compared (or being compared: co-inductive, so cycles terminate).
    visited = set() if _visited is None else _visited
    keep_alive = []  # temporaries (reduce tuples, key lists) must keep their ids unique
    stack = [(expected, actual, "obj")]

    def fail(path, why):
        raise NotEquivalent(f"at {path}: {why}")

    while stack:
        e, a, path = stack.pop()
        if e is a:
            continue
        te, ta = type(e), type(a)

        if te is pickle.PickleBuffer:
            raw = e.raw()
            want = bytearray if not raw.readonly else bytes
            if ta is pickle.PickleBuffer:
                got = bytes(a.raw())
            elif ta is want:
                got = bytes(a)
            else:
                fail(path, f"PickleBuffer loaded as {ta.__name__}, expected {want.__name__}")
            if got != bytes(raw):
                fail(path, "PickleBuffer contents differ")
            continue

        if te is not ta:
            fail(path, f"type {ta.__qualname__} != expected {te.__qualname__}")

        pair = (id(e), id(a))
        if pair in visited:
            continue
        visited.add(pair)
        keep_alive.append((e, a))

        if _is_tracked(e):
            if check_identity:
                seen = forward.get(id(e))
                if seen is not None and seen is not a:
                    fail(path, "a shared object was loaded as two distinct objects")
                other = backward.get(id(a))
                if other is not None and other is not e:
                    fail(path, "two distinct objects were loaded as one shared object")
            forward[id(e)] = a
            backward[id(a)] = e

        if isinstance(e, float):
            if not _same_float(e, a):
                fail(path, f"{a!r} != expected {e!r}")
        elif isinstance(e, complex):
            if not (_same_float(e.real, a.real) and _same_float(e.imag, a.imag)):
                fail(path, f"{a!r} != expected {e!r}")
        elif isinstance(e, decimal.Decimal):
            if str(e) != str(a):
                fail(path, f"{a!r} != expected {e!r}")
        elif isinstance(e, (datetime.datetime, datetime.time, datetime.tzinfo)):
            # == ignores the tzinfo of equal instants, fold and timezone names.
            if e != a or repr(e) != repr(a):
                fail(path, f"{a!r} != expected {e!r}")
        elif isinstance(e, (list, tuple)):
            if len(e) != len(a):
                fail(path, f"length {len(a)} != expected {len(e)}")
            stack.extend((x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(e, a, strict=True)))
        elif isinstance(e, dict):
            if len(e) != len(a):
                fail(path, f"length {len(a)} != expected {len(e)}")
            ekeys, akeys = list(e), list(a)
            keep_alive.append((ekeys, akeys))
            for i, (ke, ka) in enumerate(zip(ekeys, akeys, strict=True)):
                stack.append((ke, ka, f"{path}.keys()[{i}]"))
                stack.append((e[ke], a[ka], f"{path}[{ke!r:.40}]"))
            if isinstance(e, collections.defaultdict):
                stack.append((e.default_factory, a.default_factory, f"{path}.default_factory"))
        elif isinstance(e, collections.deque):
            if e.maxlen != a.maxlen or len(e) != len(a):
                fail(path, f"{a!r:.200} != expected {e!r:.200}")
            stack.extend((x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(e, a, strict=True)))
        elif isinstance(e, (set, frozenset)):
            _compare_sets(e, a, path, stack, fail, visited)
        elif isinstance(e, (bytes, bytearray, str, int, range, slice)):
            if e != a:
                fail(path, f"{a!r:.200} != expected {e!r:.200}")
        elif numpy is not None and isinstance(e, numpy.ndarray):
            if e.dtype != a.dtype or e.shape != a.shape:
                fail(path, f"array {a.dtype}{a.shape} != expected {e.dtype}{e.shape}")
            if (e.flags.c_contiguous or e.flags.f_contiguous) and (
                e.flags.c_contiguous,
                e.flags.f_contiguous,
            ) != (a.flags.c_contiguous, a.flags.f_contiguous):
                fail(path, "memory order differs")
            if e.dtype.hasobject:
                pairs = enumerate(zip(e.flat, a.flat, strict=True))
                stack.extend((x, y, f"{path}.flat[{i}]") for i, (x, y) in pairs)
            elif e.tobytes() != a.tobytes():
                fail(path, "array contents differ")
        elif numpy is not None and isinstance(e, numpy.generic):
            if e.dtype != a.dtype or e.tobytes() != a.tobytes():
                fail(path, f"{a!r} != expected {e!r}")
        elif isinstance(e, (types.MethodType, types.BuiltinMethodType)) and not isinstance(
            e.__self__, (type, types.ModuleType)
        ):
            # A method bound to an instance: the instance is pickled by value.
            if e.__name__ != a.__name__:
                fail(path, f"method {a.__name__} != expected {e.__name__}")
            stack.append((e.__self__, a.__self__, f"{path}.__self__"))
        elif isinstance(e, _BY_REFERENCE_TYPES):
            fail(path, f"{a!r:.200} is not the same object as expected {e!r:.200}")
        elif not _has_identity_eq(e):
            if not (e == a):
                fail(path, f"{a!r:.200} != expected {e!r:.200}")
        else:
            # Identity-compared objects (plain instances, exceptions, partials, ...):
            # compare what pickle itself sees of them.
            try:
                re_, ra = e.__reduce_ex__(4), a.__reduce_ex__(4)
            except Exception as exc:  # pragma: no cover - diagnostic
                fail(path, f"cannot compare {te.__qualname__} objects: {exc!r}")
            re_, ra = _materialize_reduce(re_), _materialize_reduce(ra)
            keep_alive.append((re_, ra))
            stack.append((re_, ra, f"{path}.__reduce_ex__(4)"))
            continue

        # Instances of subclasses of builtins (and of value types with a __dict__)
        # carry attributes beside their value.
        if te.__module__ != "builtins":
            state_e, state_a = _instance_state(e), _instance_state(a)
            if state_e is not None or state_a is not None:
                stack.append((state_e, state_a, f"{path}.__dict__"))

    return True


def _compare_sets(e, a, path, stack, fail, visited):
    if len(e) != len(a):
        fail(path, f"length {len(a)} != expected {len(e)}")
    by_value = {y: y for y in a}
    used = set()
    unmatched = []
    for x in e:
        y = by_value.get(x, by_value) if _has_value_hash(x) else by_value
        if y is not by_value and id(y) not in used:
            used.add(id(y))
            stack.append((x, y, f"{path}{{{x!r:.40}}}"))
        else:
            unmatched.append(x)
    rest = [y for y in a if id(y) not in used]
    # Elements hashed by identity (instances) or holding a nan: pair them up by trial.
    for x in unmatched:
        for j, y in enumerate(rest):
            try:
                assert_equivalent(x, y, check_identity=False, _visited=set(visited))
            except NotEquivalent:
                continue
            stack.append((x, y, f"{path}{{{x!r:.40}}}"))
            del rest[j]
            break
        else:
            fail(path, f"no element matches {x!r:.80}")


def _has_value_hash(x):
    """Whether equal-by-value lookups can find ``x``'s counterpart in a set."""
    if isinstance(x, float):
        return not math.isnan(x)
    if isinstance(x, (tuple, frozenset)):
        return all(_has_value_hash(y) for y in x)
    if isinstance(x, (str, bytes, int, type(None), complex, decimal.Decimal)):
        return not (isinstance(x, complex) and (math.isnan(x.real) or math.isnan(x.imag)))
    return not _has_identity_eq(x)


def is_equivalent(expected, actual, *, check_identity=True):
    try:
        assert_equivalent(expected, actual, check_identity=check_identity)
    except NotEquivalent:
        return False
    return True


def roundtrip_reference(obj, protocol):
    """What a correct pickle of ``obj`` at ``protocol`` loads as.

    Normally ``obj`` itself; but a few objects do not survive even the stdlib's
    own round trip unchanged (``datetime.fold`` is dropped below protocol 4, a
    non-contiguous numpy array loads contiguous, ...).  For those the stdlib's
    round trip is the reference.
    """
    stdlib_copy = pickle.loads(pickle.dumps(obj, protocol))
    return obj if is_equivalent(obj, stdlib_copy) else stdlib_copy


# --------------------------------------------------------------------------------------
# Pickle comparison with a readable failure message
# --------------------------------------------------------------------------------------


def _ops_near(data, offset, radius=4):
    """Disassembled opcodes around byte ``offset`` of ``data`` (best effort)."""
    ops = []
    try:
        for op in pickletools.genops(data):
            ops.append(op)
    except Exception as exc:  # the data may be malformed: that is what we report on
        ops.append((None, repr(exc), None))
    index = 0
    for i, (_, _, pos) in enumerate(ops):
        if pos is not None and pos <= offset:
            index = i
    lines = []
    for i in range(max(0, index - radius), min(len(ops), index + radius + 1)):
        op, arg, pos = ops[i]
        name = op.name if op is not None else "<error>"
        mark = ">>" if i == index else "  "
        lines.append(f"  {mark} {pos if pos is not None else '?':>8}: {name:<16} {arg!r:.80}")
    return "\n".join(lines)


def assert_same_pickle(got, expected, what="anypickle output"):
    """Assert byte equality; on failure show where and what differs (as opcodes)."""
    assert isinstance(got, bytes), f"{what} is {type(got).__name__}, not bytes"
    if got == expected:
        return
    offset = next(
        (i for i, (x, y) in enumerate(zip(got, expected, strict=False)) if x != y),
        min(len(got), len(expected)),
    )
    raise AssertionError(
        f"{what} differs from the stdlib's at byte {offset} "
        f"(got {len(got)} bytes, expected {len(expected)})\n"
        f"expected: {expected[max(0, offset - 24) : offset + 24]!r}\n"
        f"got:      {got[max(0, offset - 24) : offset + 24]!r}\n"
        f"expected opcodes:\n{_ops_near(expected, offset)}\n"
        f"got opcodes:\n{_ops_near(got, offset)}"
    )


def exception_matches_stdlib(got, expected):
    """Whether anypickle's exception ``got`` is acceptable where the stdlib raised ``expected``.

    The class must be the same, with two allowances: at the nesting limit
    anypickle may raise PicklingError instead of RecursionError, and a nested
    "cannot pickle" TypeError comes as ``anypickle.PicklingTypeError`` (a
    TypeError and a PicklingError) naming the path to the refused part.
    """
    if type(got) is type(expected):
        return True
    if type(expected) is TypeError and type(got) is anypickle.PicklingTypeError:
        # The same refusal, with the path to the refused part in the message.
        return True
    return isinstance(expected, RecursionError) and isinstance(
        got, (RecursionError, pickle.PicklingError)
    )
