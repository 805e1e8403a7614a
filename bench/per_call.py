"""Per-call cost of dumps and loads on tiny objects, timeit-style.

Run from the repository root::

    python bench/per_call.py               # about 30 s
    python bench/per_call.py --rounds 50   # steadier

``bench/run.py`` times its per-call workloads (``tiny_*``) in loops that keep every
result alive until the clock stops, as it does for every workload; for a call of
~100 ns, growing the list of results and touching fresh memory for each output costs
as much as the call itself, and it costs the same for every library, which pulls the
ratios towards 1. This script measures what a message loop pays instead: each result
is dropped before the next call (the way ``timeit`` measures). It prints, per object:

* the time per call of each library, best of ``--rounds`` interleaved rounds;
* ``raw``: the ratio of those times to pickle's (below 1 is faster);
* ``net``: the same ratio after subtracting the cost of calling an empty built-in in
  the same loop (``id(data)`` for loads, ``isinstance(obj, int)`` for dumps, which
  takes two arguments as ``dumps(obj, 5)`` does), i.e. the library's own work per call.

Both libraries are called the way their users call them: ``dumps(obj, 5)`` and
``loads(data)``.
"""

from __future__ import annotations

import argparse
import pickle
import timeit
from collections.abc import Callable
from typing import Any

import anypickle

OBJECTS: dict[str, Any] = {
    "None": None,
    "int": 42,
    "dict3": {"op": "put", "key": "k1", "value": 3},
    "tuple": ("task", 17, 2.5, b"payload"),
}
PROTOCOL = 5


def best_ns(func: Callable[..., Any], args: tuple[Any, ...], number: int) -> float:
    """Nanoseconds per call of one timed loop of ``number`` calls of ``func(*args)``."""
    names = ", ".join(f"a{i}" for i in range(len(args)))
    env = {"f": func, **{f"a{i}": a for i, a in enumerate(args)}}
    return timeit.timeit(f"f({names})", globals=env, number=number) / number * 1e9


def ratios(best: dict[str, float], lib: str, base: str, empty: str) -> tuple[float, float]:
    """(raw, net) ratio of ``lib``'s time to ``base``'s; net subtracts ``empty`` from both."""
    raw = best[lib] / best[base]
    net = (best[lib] - best[empty]) / (best[base] - best[empty])
    return raw, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds (best is kept)")
    parser.add_argument("--number", type=int, default=100_000, help="calls per timed loop")
    opts = parser.parse_args()

    print(f"per-call cost, best of {opts.rounds} rounds of {opts.number:,} calls; ns per call")
    header = (
        f"{'object':6}  {'empty':>5} {'pickle':>7} {'anypickle':>9} {'raw':>5} {'net':>5}"
        f"  |  {'empty':>5} {'pickle':>7} {'anypickle':>9} {'raw':>5} {'net':>5}"
    )
    print(f"{'':6}  {'dumps':^35}  |  {'loads':^35}")
    print(header)
    for name, obj in OBJECTS.items():
        data = pickle.dumps(obj, PROTOCOL)
        # "empty" and "empty2": a built-in that does (almost) nothing, called with
        # one and with two arguments, as loads and dumps are.
        cases: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
            "empty": (id, (data,)),
            "empty2": (isinstance, (obj, int)),
            "p.dumps": (pickle.dumps, (obj, PROTOCOL)),
            "a.dumps": (anypickle.dumps, (obj, PROTOCOL)),
            "p.loads": (pickle.loads, (data,)),
            "a.loads": (anypickle.loads, (data,)),
        }
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(opts.rounds):
            for key, (func, args) in cases.items():
                best[key] = min(best[key], best_ns(func, args, opts.number))

        d_raw, d_net = ratios(best, "a.dumps", "p.dumps", "empty2")
        l_raw, l_net = ratios(best, "a.loads", "p.loads", "empty")
        print(
            f"{name:6}  {best['empty2']:5.0f} {best['p.dumps']:7.0f} {best['a.dumps']:9.0f}"
            f" {d_raw:5.2f} {d_net:5.2f}  |  {best['empty']:5.0f} {best['p.loads']:7.0f}"
            f" {best['a.loads']:9.0f} {l_raw:5.2f} {l_net:5.2f}"
        )


if __name__ == "__main__":
    main()
