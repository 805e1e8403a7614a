"""The benchmark workloads: what gets pickled, at which size, and how results are compared.

Each :class:`Workload` has a full size and a ``--quick`` size, a builder that makes the
object from that size, and flags for how it is timed:

* ``per_call`` workloads are tiny; each timing sample runs a calibrated loop of many calls
  and the harness reports the time per call.
* ``out_of_band`` workloads pickle with a ``buffer_callback`` collecting
  :class:`pickle.PickleBuffer` objects and load with ``buffers=``.
* ``memcpy`` workloads also get a reference row: one copy of the payload into fresh memory.

:class:`Item` lives here, at module level, so that every library pickles its instances by
reference (``workloads.Item``) rather than by value.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
#: ``--quick`` size of the big-buffer workloads.  It stays above glibc's largest dynamic
#: mmap threshold (32 MiB), so, as at full size, every such buffer is freshly mapped
#: memory; at a few MiB the timings would depend on the allocator's recent history.
QUICK_BIG = 40 * MIB


class Item:
    """A plain class with an instance ``__dict__``; pickled by reference by all libraries."""

    def __init__(self, ident: int, name: str, price: float, quantity: int, tags: list[str]):
        self.ident = ident
        self.name = name
        self.price = price
        self.quantity = quantity
        self.tags = tags

    def __eq__(self, other: object) -> bool:
        return type(other) is Item and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _numpy_equal(a: Any, b: Any) -> bool:
    import numpy as np

    return type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@dataclass(frozen=True)
class Workload:
    """One thing to pickle, with its sizes, its builder and how to time and compare it."""

    name: str
    #: Human description; ``{n}`` is replaced by the size (with thousands separators) and
    #: ``{mib}`` by the size in MiB.
    template: str
    sizes: tuple[int, int]  # (full, --quick)
    build: Callable[[int], Any]
    per_call: bool = False
    out_of_band: bool = False
    memcpy: bool = False
    requires: str | None = None  # an importable module the workload needs, e.g. "numpy"
    equal: Callable[[Any, Any], bool] = _equal

    def size(self, quick: bool) -> int:
        """The size parameter for a full or a ``--quick`` run."""
        return self.sizes[1] if quick else self.sizes[0]

    def describe(self, quick: bool) -> str:
        """The description with the actual size filled in."""
        n = self.size(quick)
        return self.template.format(n=f"{n:,}", mib=f"{n / MIB:g}")

    def available(self) -> bool:
        """Whether the module this workload needs (if any) can be imported."""
        if self.requires is None:
            return True
        try:
            importlib.import_module(self.requires)
        except Exception:  # missing or broken: either way the workload cannot run
            return False
        return True


# --------------------------------------------------------------------------- builders

_FIRST_NAMES = ["Ana", "Zoë", "Łukasz", "Søren", "José", "Ngọc", "Amélie", "Jürgen", "Ken", "Ola"]
_CITIES = ["São Paulo", "Kraków", "Malmö", "Zürich", "Reykjavík", "Osaka", "Lagos", "Lima"]
_WORDS = ["jazz", "chess", "hiking", "rust", "python", "tea", "bikes", "café", "origami", "film"]


def _profile(rng: random.Random, i: int) -> dict[str, Any]:
    """A social-network style user profile: the kind of dict web services pickle a lot."""
    return {
        "user_id": 40_000_000 + i * 7_919,
        "handle": f"member_{i:05d}",
        "display_name": f"{rng.choice(_FIRST_NAMES)} {rng.choice('ABCDEFGHJKLMNPRSTVWZ')}.",
        "city": rng.choice(_CITIES),
        "country": rng.choice(["BR", "PL", "SE", "CH", "IS", "JP", "NG", "PE"]),
        "age": rng.randint(16, 90),
        "karma": rng.randint(-50, 250_000),
        "balance": round(rng.uniform(-100.0, 9_000.0), 2),
        "verified": rng.random() < 0.25,
        "referrer": None,
        "joined": 1_500_000_000 + rng.randint(0, 200_000_000),
        "interests": rng.sample(_WORDS, 4),
        "bio": "Ich wohne in " + rng.choice(_CITIES) + " — 日本語も少し話せます ✓",
        "prefs": {"theme": rng.choice(["dark", "light"]), "digest": True, "volume": 0.6},
    }


def pyperf_mix(n: int) -> list[Any]:
    """A pyperformance-style mixed payload: profile dicts, an id tuple, a group, scalars.

    ``n`` is the number of profiles in the group.  The mix (small dicts of short and
    non-ASCII strings, ints of several widths, floats, bools, None, nested lists and dicts,
    a tuple holding a list of large ints) resembles what that benchmark pickles.
    """
    rng = random.Random(1234)
    group = [_profile(rng, i) for i in range(n)]
    ids = ([rng.getrandbits(40) for _ in range(16)], 60)
    return [
        group[0],
        ids,
        group,
        "Ünïcödé summary line with some prose in it, long enough to be a real field.",
        3.141592653589793,
        2**62 + 12_345,
        (True, False, None),
    ]


def small_ints(n: int) -> list[int]:
    """``list(range(n))``: one-, two- and four-byte ints in the pickle."""
    return list(range(n))


def floats(n: int) -> list[float]:
    """``n`` pseudo-random floats (no two equal, so nothing is memoized)."""
    rng = random.Random(42)
    return [rng.random() * 1e6 for _ in range(n)]


def short_strings(n: int) -> list[str]:
    """``n`` distinct short strings, one in eight with non-ASCII characters."""
    return [f"grüße-{i}" if i % 8 == 0 else f"key:{i:06d}" for i in range(n)]


_TAGS = ["new", "vip", "beta", "eu", "us", "mobile", "web"]


def records(n: int) -> list[dict[str, Any]]:
    """``n`` user-record dicts with an int, strings, a float, a list of tags and a bool."""
    return [
        {
            "id": i,
            "name": f"user{i}",
            "email": f"user{i}@example.com",
            "score": (i * 37 % 1000) / 8.0 + 0.125,
            "tags": [_TAGS[i % 7], _TAGS[(i * 3 + 1) % 7]],
            "active": i % 3 != 0,
        }
        for i in range(n)
    ]


def items(n: int) -> list[Item]:
    """``n`` :class:`Item` instances (class pickled by reference, state is the __dict__)."""
    return [
        Item(i, f"item-{i}", round(0.99 + (i % 500) * 0.25, 2), i % 97, [_TAGS[i % 7]])
        for i in range(n)
    ]


def raw_bytes(n: int) -> bytes:
    """``n`` bytes of a repeating 0..255 pattern (content does not matter to pickle)."""
    return bytes(range(256)) * (n // 256)


def float_array(n: int) -> Any:
    """A C-contiguous numpy float64 array of ``n`` bytes."""
    import numpy as np

    return np.arange(n // 8, dtype=np.float64) * 0.5


def _const(value: Any) -> Callable[[int], Any]:
    return lambda _n: value


# --------------------------------------------------------------------------- registry

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "pyperf_mix",
        "pyperformance-style mix: {n} profile dicts + id tuple + scalars (per call)",
        (3, 3),
        pyperf_mix,
        per_call=True,
    ),
    Workload("ints", "list of {n} small ints (range)", (1_000_000, 100_000), small_ints),
    Workload("floats", "list of {n} random floats", (1_000_000, 100_000), floats),
    Workload("strings", "list of {n} short distinct strings", (100_000, 10_000), short_strings),
    Workload("records_10k", "list of {n} record dicts", (10_000, 1_000), records),
    Workload("records_100k", "list of {n} record dicts", (100_000, 10_000), records),
    Workload("instances", "list of {n} workloads.Item instances", (100_000, 10_000), items),
    Workload("bytes", "{mib} MiB bytes object", (64 * MIB, QUICK_BIG), raw_bytes, memcpy=True),
    Workload(
        "numpy_inband",
        "{mib} MiB numpy float64 array, in-band (protocol 5, no buffer_callback)",
        (64 * MIB, QUICK_BIG),
        float_array,
        memcpy=True,
        requires="numpy",
        equal=_numpy_equal,
    ),
    Workload(
        "numpy_oob",
        "{mib} MiB numpy float64 array, out-of-band (buffer_callback + buffers=)",
        (64 * MIB, QUICK_BIG),
        float_array,
        out_of_band=True,
        memcpy=True,
        requires="numpy",
        equal=_numpy_equal,
    ),
    Workload("tiny_none", "None (per call)", (1, 1), _const(None), per_call=True),
    Workload("tiny_int", "the int 42 (per call)", (1, 1), _const(42), per_call=True),
    Workload(
        "tiny_dict",
        "3-field dict {{'op': 'put', 'key': 'k1', 'value': 3}} (per call)",
        (1, 1),
        _const({"op": "put", "key": "k1", "value": 3}),
        per_call=True,
    ),
)


def select(patterns: list[str] | None) -> list[Workload]:
    """Workloads matching ``patterns`` (exact name, glob, or prefix such as ``tiny``).

    Raises ``ValueError`` naming the pattern when one matches nothing.
    """
    if not patterns:
        return list(WORKLOADS)
    from fnmatch import fnmatchcase

    chosen: list[Workload] = []
    for pattern in patterns:
        hits = [
            w
            for w in WORKLOADS
            if w.name == pattern or fnmatchcase(w.name, pattern) or w.name.startswith(pattern + "_")
        ]
        if not hits:
            names = ", ".join(w.name for w in WORKLOADS)
            raise ValueError(f"no workload matches {pattern!r}; known: {names}")
        chosen.extend(w for w in hits if w not in chosen)
    return [w for w in WORKLOADS if w in chosen]
