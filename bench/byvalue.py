"""Benchmark of pickling by value: anypickle vs cloudpickle vs dill.

Run as a script, so that what it defines lives in ``__main__`` (the case by-value
pickling exists for)::

    python bench/byvalue.py            # full run
    python bench/byvalue.py --quick    # smoke test

For each workload it prints the dumps time, the loads time in this process (after a
warm-up: classes may come from each library's class cache) and in fresh processes
(the first load, where no class is cached; median over several processes), the
output size, and anypickle's speed-up over cloudpickle. Each library loads with
its own ``loads`` (cloudpickle's is ``pickle.loads``); anypickle's output also
loads with ``pickle.loads`` (checked by the test suite). Timings are interleaved
between libraries and the minimum over repeats is kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import anypickle
import cloudpickle
import dill

PROTOCOL = 5


# ----------------------------------------------------------------------------- workloads


def lambdas(n: int) -> list[Any]:
    """``n`` distinct lambdas (each with its own code object)."""
    return [eval(f"lambda x: x * 2 + {i}") for i in range(n)]  # noqa: S307 - fixed text


def closures(n: int) -> list[Any]:
    """``n`` closures over two cells each, sharing one code object."""

    def make(i: int) -> Callable[[int], int]:
        offset, scale = i, i % 7

        def scaled(x: int) -> int:
            return x * scale + offset

        return scaled

    return [make(i) for i in range(n)]


def class_with_methods(n: int) -> type:
    """A ``__main__`` class with ``n`` distinct methods."""
    source = "class Wide:\n" + "".join(
        f"    def method_{i}(self, x):\n        return x + {i} + len(str(self))\n" for i in range(n)
    )
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(source, namespace)  # noqa: S102 - fixed text
    return namespace["Wide"]


def local_instances(n: int) -> list[Any]:
    """``n`` instances of a class defined inside a function."""

    def make() -> type:
        class Point:
            def __init__(self, x: int, y: float, label: str) -> None:
                self.x, self.y, self.label = x, y, label

            def norm(self) -> float:
                return (self.x**2 + self.y**2) ** 0.5

        return Point

    point = make()
    return [point(i, i / 2, f"p{i}") for i in range(n)]


def dynamic_enum(n: int) -> type:
    """An Enum made with the functional API (``n`` members)."""
    return enum.Enum("Dynamic", " ".join(f"M{i}" for i in range(n)))


@dataclasses.dataclass
class Order:
    """A dataclass defined in ``__main__``."""

    ident: int
    customer: str
    amount: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)

    def total(self, tax: float = 0.2) -> float:
        return self.amount * (1 + tax)


WORKLOADS: list[tuple[str, str, Callable[[int], Any], tuple[int, int]]] = [
    ("lambdas", "{n} distinct lambdas", lambdas, (1000, 200)),
    ("closures", "{n} closures", closures, (1000, 200)),
    ("class_50", "a __main__ class with {n} methods", class_with_methods, (50, 50)),
    ("instances", "{n} instances of a local class", local_instances, (10_000, 1000)),
    ("enum", "a functional-API Enum with {n} members", dynamic_enum, (50, 50)),
    ("dataclass", "a dataclass defined in __main__", lambda _n: Order, (1, 1)),
]

LIBRARIES: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "anypickle": (lambda o: anypickle.dumps(o, PROTOCOL), anypickle.loads),
    "cloudpickle": (lambda o: cloudpickle.dumps(o, PROTOCOL), pickle.loads),
    "dill": (lambda o: dill.dumps(o, PROTOCOL), dill.loads),
}


# ----------------------------------------------------------------------------- timing


def best_of(run: Callable[[], Any], repeats: int, budget: float = 0.05) -> float:
    """Seconds per call: a calibrated loop, minimum over ``repeats``."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            run()
        if time.perf_counter() - start >= budget or loops >= 1 << 16:
            break
        loops *= 2
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            run()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


# The stdlib modules the workloads' pickles refer to are imported before timing,
# so that no library is charged for importing them.
_FRESH_LOAD = """
import sys, time, pickle, abc, dataclasses, enum, functools, typing
import {module}
data = open(sys.argv[1], "rb").read()
load = {loader}
start = time.perf_counter()
load(data)
print(time.perf_counter() - start)
"""


def fresh_process_load(lib: str, data: bytes, processes: int) -> float:
    """Median seconds of the first load of ``data`` in a new interpreter."""
    module = lib
    loader = {"dill": "dill.loads", "anypickle": "anypickle.loads"}.get(lib, "pickle.loads")
    code = _FRESH_LOAD.format(module=module, loader=loader)
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        f.write(data)
    try:
        times = []
        for _ in range(processes):
            out = subprocess.run(
                [sys.executable, "-c", code, f.name], capture_output=True, text=True, check=True
            )
            times.append(float(out.stdout))
        return statistics.median(times)
    finally:
        os.unlink(f.name)


Row = tuple[float, float, float, int]


def measure(obj: Any, repeats: int, processes: int) -> dict[str, Row | None]:
    """(dumps, loads, fresh-process loads, size) per library; None if it cannot pickle ``obj``."""
    data: dict[str, bytes] = {}
    for lib, (dumps, _) in LIBRARIES.items():
        try:
            data[lib] = dumps(obj)
        except Exception as exc:  # a library that cannot pickle the workload
            print(f"  ({lib}: {type(exc).__name__}: {str(exc)[:80]})")
    dumps_t = dict.fromkeys(data, float("inf"))
    loads_t = dict.fromkeys(data, float("inf"))
    for _ in range(repeats):  # interleaved rounds
        for lib in data:
            dumps, loads = LIBRARIES[lib]
            blob = data[lib]
            dumps_t[lib] = min(dumps_t[lib], best_of(lambda d=dumps: d(obj), 1))
            loads_t[lib] = min(loads_t[lib], best_of(lambda ld=loads, b=blob: ld(b), 1))
    results: dict[str, Row | None] = dict.fromkeys(LIBRARIES)
    for lib, blob in data.items():
        fresh = fresh_process_load(lib, blob, processes)
        results[lib] = (dumps_t[lib], loads_t[lib], fresh, len(blob))
    return results


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.1f} µs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument(
        "--only", help="comma-separated workload names (default: all)", type=lambda s: s.split(",")
    )
    args = parser.parse_args(argv)
    unknown = set(args.only or ()) - {w[0] for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    repeats, processes = (3, 3) if args.quick else (7, 7)
    print(
        f"Python {sys.version.split()[0]}, anypickle, cloudpickle {cloudpickle.__version__}, "
        f"dill {dill.__version__}; protocol {PROTOCOL}; min of {repeats} (in-process), "
        f"median of {processes} processes (fresh loads)\n"
    )
    header = (
        f"{'workload':10} {'library':11} {'dumps':>11} {'loads':>11} "
        f"{'fresh loads':>12} {'size':>9}"
    )
    summary = []
    for name, template, build, sizes in WORKLOADS:
        if args.only and name not in args.only:
            continue
        n = sizes[1] if args.quick else sizes[0]
        obj = build(n)
        print(template.format(n=f"{n:,}"))
        print(header)
        results = measure(obj, repeats, processes)
        for lib, row in results.items():
            if row is None:
                print(f"{'':10} {lib:11} {'cannot pickle it':>11}")
                continue
            d, lo, fr, size = row
            print(f"{'':10} {lib:11} {fmt(d)} {fmt(lo)} {fmt(fr):>12} {size:9,}")
        a, c = results["anypickle"], results["cloudpickle"]
        sizes = [r[3] for lib, r in results.items() if lib != "anypickle" and r is not None]
        if a is not None and c is not None:
            summary.append((name, c[0] / a[0], c[1] / a[1], c[2] / a[2], a[3], min(sizes)))
        print()
    print("anypickle vs cloudpickle (× faster) and size vs the smaller of cloudpickle/dill")
    print(
        f"{'workload':10} {'dumps':>7} {'loads':>7} {'fresh':>7} {'size':>9} {'min(cp,dill)':>13}"
    )
    for name, d, lo, fr, size, other in summary:
        print(f"{name:10} {d:6.1f}× {lo:6.1f}× {fr:6.1f}× {size:9,} {other:13,}")


if __name__ == "__main__":
    main()
