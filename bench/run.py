"""Benchmark anypickle against pickle (C), cloudpickle and dill, dumps and loads.

Run from the repository root::

    python bench/run.py                      # full run (a few minutes at most)
    python bench/run.py --quick              # smoke test: small sizes, few repeats
    python bench/run.py --only ints,tiny     # some workloads (names, globs or prefixes)
    python bench/run.py --json out.json      # also save every sample as JSON

All libraries run in one process on the same object.  Samples are interleaved: each round
times every library once (starting from a different library each round), so machine noise
hits all of them alike.  A cell (workload x library) reports the median of its samples;
slow cells stop after ``--min-repeats`` samples once they have used ``--budget`` seconds.
Speedups are ``pickle_time / library_time`` (above 1 means faster than pickle).

See bench/README.md for the workloads and the meaning of every column.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import pickle
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from libraries import (
    ALL_LIBRARIES,
    PROTOCOL,
    Library,
    describe_anypickle,
    load_libraries,
    memcpy_reference,
)
from report import fmt_ratio, fmt_size, fmt_time, ratio, table
from workloads import WORKLOADS, Workload, select

perf_counter_ns = time.perf_counter_ns

#: Most calls one per-call sample may loop over.
MAX_LOOPS = 1 << 22
#: A checking (warm-up) call slower than this also counts as the cell's first sample.
SLOW_NS = 500_000_000
#: Samples of calls faster than this are loops of calls (see _set_loops).
LOOP_BELOW_NS = 1_000_000
#: A looped sample of a slow library is cut to this many times the per-call target.
MAX_SAMPLE_TARGETS = 50


@dataclass
class Options:
    """Settings of one run, after applying ``--quick`` defaults."""

    quick: bool
    repeats: int
    min_repeats: int
    budget_s: float
    per_call_target_ms: float
    gc_pause: bool
    libraries: list[str]


@dataclass
class Cell:
    """Everything measured for one library on one workload (times are ns per call)."""

    library: str
    reference: bool = False
    dumps_ns: list[float] = field(default_factory=list)
    loads_ns: list[float] = field(default_factory=list)
    dumps_loops: int = 1
    loads_loops: int = 1
    size: int | None = None
    oob_bytes: int | None = None
    dumps_error: str | None = None
    loads_error: str | None = None
    spent_ns: int = 0
    #: Set when a correctness check on this library's output failed (see the warnings).
    suspect: bool = False

    @property
    def dumps_median(self) -> float | None:
        """Median dumps time per call, or None if there is no sample."""
        return statistics.median(self.dumps_ns) if self.dumps_ns else None

    @property
    def loads_median(self) -> float | None:
        """Median loads time per call, or None if there is no sample."""
        return statistics.median(self.loads_ns) if self.loads_ns else None

    def noise(self) -> float | None:
        """Worse of dumps/loads median absolute deviation, relative to the median."""
        worst: float | None = None
        for samples in (self.dumps_ns, self.loads_ns):
            if len(samples) < 2:
                continue
            med = statistics.median(samples)
            if med <= 0:
                continue
            mad = statistics.median(abs(s - med) for s in samples) / med
            worst = mad if worst is None else max(worst, mad)
        return worst

    def samples(self) -> int:
        """How many timing samples this cell holds (the larger of dumps and loads)."""
        return max(len(self.dumps_ns), len(self.loads_ns))


@dataclass
class WorkloadResult:
    """The cells of one workload, plus the warnings its correctness checks raised."""

    workload: Workload
    description: str
    cells: dict[str, Cell]
    warnings: list[str]
    seconds: float


# ----------------------------------------------------------------------------- timing


def _time_dumps(
    dumps: Callable[..., Any], obj: Any, loops: int, oob: bool
) -> tuple[int, Any, list]:
    """Time ``loops`` dumps calls; return (elapsed ns, first output, its buffers).

    Outputs are kept until the clock has stopped, so freeing them is never timed (the
    same rule holds whether a sample is one call or a loop of many).
    """
    buffers: list[Any] = []
    if oob:
        collect = buffers.append
        if loops == 1:
            t0 = perf_counter_ns()
            out = dumps(obj, buffer_callback=collect)
            t1 = perf_counter_ns()
            return t1 - t0, out, buffers
        repeat = itertools.repeat(None, loops)
        t0 = perf_counter_ns()
        outs = [dumps(obj, buffer_callback=collect) for _ in repeat]
        t1 = perf_counter_ns()
        return t1 - t0, outs[0], buffers[: len(buffers) // loops]
    if loops == 1:
        t0 = perf_counter_ns()
        out = dumps(obj)
        t1 = perf_counter_ns()
        return t1 - t0, out, buffers
    repeat = itertools.repeat(None, loops)
    t0 = perf_counter_ns()
    outs = [dumps(obj) for _ in repeat]
    t1 = perf_counter_ns()
    return t1 - t0, outs[0], buffers


def _time_loads(
    loads: Callable[..., Any], data: Any, buffers: list, loops: int, oob: bool, gc_pause: bool
) -> tuple[int, Any]:
    """Time ``loops`` loads calls; return (elapsed ns, first result).

    Results are kept until the clock has stopped, so freeing them is never timed.  With
    ``gc_pause`` the cyclic garbage collector is off while the clock runs.
    """
    paused = gc_pause and gc.isenabled()
    if paused:
        gc.disable()
    try:
        repeat = itertools.repeat(None, loops)
        if oob:
            t0 = perf_counter_ns()
            outs = [loads(data, buffers=buffers) for _ in repeat]
            t1 = perf_counter_ns()
        elif loops == 1:
            t0 = perf_counter_ns()
            out = loads(data)
            t1 = perf_counter_ns()
            outs = [out]
        else:
            t0 = perf_counter_ns()
            outs = [loads(data) for _ in repeat]
            t1 = perf_counter_ns()
    finally:
        if paused:
            gc.enable()
    return t1 - t0, outs[0]


def _calibrate(run: Callable[[int], int], target_ns: float) -> int:
    """Smallest loop count (roughly) whose run takes at least ``target_ns``."""
    loops = 1
    while loops < MAX_LOOPS:
        elapsed = run(loops)
        if elapsed >= target_ns:
            break
        grow = target_ns / elapsed * 1.2 if elapsed > 0 else 10.0
        loops = min(MAX_LOOPS, max(loops * 2, int(loops * grow)))
    return loops


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 160 else text[:157] + "..."


# ----------------------------------------------------------------------------- checks


def _check(
    lib: Library,
    w: Workload,
    obj: Any,
    cell: Cell,
    reference: tuple[bytes, list] | None,
    warnings: list[str],
) -> tuple[Any, list, int, int]:
    """Dump and load once (the warm-up) and check; return (data, buffers, dumps ns, loads ns).

    Checks: the output loads back equal with ``pickle.loads``; the library's own loads
    reads its output and pickle's output back equal; anypickle (deterministic) writes
    exactly the bytes ``pickle.dumps(obj, 5)`` writes.  Failures become warning lines;
    an exception in dumps or loads marks that side of the cell n/a (time 0 is returned).
    """
    oob = w.out_of_band

    def flag(message: str) -> None:
        cell.suspect = True
        warnings.append(f"{lib.name}: {message}")

    try:
        dumps_ns, data, buffers = _time_dumps(lib.dumps, obj, 1, oob)
    except Exception as exc:
        cell.dumps_error = cell.loads_error = _short(exc)
        flag(f"dumps failed: {cell.dumps_error}")
        return None, [], 0, 0
    cell.size = len(data)
    if oob:
        cell.oob_bytes = sum(memoryview(b).nbytes for b in buffers)

    try:
        if not w.equal(obj, pickle.loads(data, buffers=buffers)):
            flag("output does not load back equal with pickle.loads")
    except Exception as exc:
        flag(f"pickle.loads cannot read its output: {_short(exc)}")

    loads_ns = 0
    try:
        loads_ns, back = _time_loads(lib.loads, data, buffers, 1, oob, False)
        if not w.equal(obj, back):
            flag("its own loads does not give back an equal object")
        del back
    except Exception as exc:
        cell.loads_error = _short(exc)
        flag(f"loads of its own output failed: {cell.loads_error}")

    if reference is not None:
        ref_data, ref_buffers = reference
        try:
            _, back = _time_loads(lib.loads, ref_data, ref_buffers, 1, oob, False)
            if not w.equal(obj, back):
                flag("loads of pickle's output is not equal")
            del back
        except Exception as exc:
            flag(f"loads of pickle's output failed: {_short(exc)}")
        if lib.name == "anypickle" and data != ref_data:
            flag(
                "deterministic output differs from pickle.dumps(obj, 5) "
                f"({len(data):,} vs {len(ref_data):,} bytes)"
            )
    return data, buffers, dumps_ns, loads_ns


# ----------------------------------------------------------------------------- runner


def _set_loops(
    w: Workload,
    participants: list[Library],
    cells: dict[str, Cell],
    single: dict[str, tuple[int, int]],
    loaded: dict[str, tuple[Any, list]],
    obj: Any,
    opts: Options,
) -> None:
    """Choose how many calls each timing sample makes, per side (dumps, loads).

    Per-call workloads, and workloads whose single call is under LOOP_BELOW_NS, are timed
    in loops.  The loop count is calibrated once on the baseline library (pickle when it
    runs) and shared by all libraries, because how many results a loop keeps alive changes
    the memory (and so the time) of every call.  Only a library so slow that the shared
    count would take over MAX_SAMPLE_TARGETS x the target gets fewer calls.
    """
    target_ns = opts.per_call_target_ms * 1e6
    cap_ns = MAX_SAMPLE_TARGETS * target_ns
    oob = w.out_of_band
    contenders = [lib for lib in participants if not lib.reference]
    ordered = sorted(contenders, key=lambda lib: lib.name != "pickle")
    for side in ("dumps", "loads"):
        index = 0 if side == "dumps" else 1
        ok = [lib for lib in ordered if getattr(cells[lib.name], f"{side}_error") is None]
        if not ok:
            continue
        base = ok[0]
        if not (w.per_call or single[base.name][index] < LOOP_BELOW_NS):
            continue
        if side == "dumps":

            def run(k: int, lib: Library = base) -> int:
                return _time_dumps(lib.dumps, obj, k, oob)[0]

        else:

            def run(k: int, lib: Library = base) -> int:
                data, buffers = loaded[lib.name]
                return _time_loads(lib.loads, data, buffers, k, oob, opts.gc_pause)[0]

        loops = _calibrate(run, target_ns)
        for lib in ok:
            per_call = max(single[lib.name][index], 1)
            if lib is not base and per_call * loops > cap_ns:
                # The check call was the first (cold) one; time a warm call before cutting.
                per_call = max(min(per_call, run(1, lib)), 1)
            fitted = loops if per_call * loops <= cap_ns else max(1, int(cap_ns // per_call))
            setattr(cells[lib.name], f"{side}_loops", fitted)


def run_workload(w: Workload, libs: list[Library], opts: Options) -> WorkloadResult:
    """Check and time every library on one workload, interleaving their samples.

    The object is built once and frozen out of the garbage collector's sight (gc.freeze),
    so a collection triggered by one library's loads does not walk the benchmark's own
    data; a gc.collect() before each sample gives every library the same starting state.
    Very fast calls are timed in calibrated loops (see _set_loops).
    """
    started = time.monotonic()
    n = w.size(opts.quick)
    obj = w.build(n)
    gc.collect()
    gc.freeze()
    oob = w.out_of_band
    participants = list(libs)
    if w.memcpy:
        participants.append(memcpy_reference(n))
    cells = {lib.name: Cell(lib.name, reference=lib.reference) for lib in participants}
    warnings: list[str] = []

    reference: tuple[bytes, list] | None
    try:
        ref_buffers: list[Any] = []
        callback = ref_buffers.append if oob else None
        reference = (pickle.dumps(obj, PROTOCOL, buffer_callback=callback), ref_buffers)
    except Exception as exc:
        warnings.append(f"pickle.dumps itself fails on this workload: {_short(exc)}")
        reference = None

    # Correctness checks double as the warm-up; their output is what loads is timed on.
    loaded: dict[str, tuple[Any, list]] = {}
    single: dict[str, tuple[int, int]] = {}  # name -> (dumps ns, loads ns) of the check call
    for lib in participants:
        cell = cells[lib.name]
        if lib.reference:
            cell.size = n
            loaded[lib.name] = (None, [])
            dumps_ns = loads_ns = 0
        else:
            data, buffers, dumps_ns, loads_ns = _check(lib, w, obj, cell, reference, warnings)
            if data is not None:
                loaded[lib.name] = (data, buffers)
        # A call that takes longer than SLOW_NS is its own warm-up: keep it as a sample.
        if cell.dumps_error is None and dumps_ns >= SLOW_NS and not w.per_call:
            cell.dumps_ns.append(dumps_ns)
            cell.spent_ns += dumps_ns
        if cell.loads_error is None and loads_ns >= SLOW_NS and not w.per_call:
            cell.loads_ns.append(loads_ns)
            cell.spent_ns += loads_ns
        single[lib.name] = (dumps_ns, loads_ns)
    _set_loops(w, participants, cells, single, loaded, obj, opts)
    del reference

    budget_ns = opts.budget_s * 1e9

    def finished(cell: Cell) -> bool:
        if cell.dumps_error is not None and cell.loads_error is not None:
            return True
        taken = cell.samples()
        return taken >= opts.repeats or (taken >= opts.min_repeats and cell.spent_ns >= budget_ns)

    for round_no in range(opts.repeats):
        if all(finished(c) for c in cells.values()):
            break
        start = round_no % len(participants)
        for lib in participants[start:] + participants[:start]:
            cell = cells[lib.name]
            if finished(cell):
                continue
            if cell.dumps_error is None:
                gc.collect()
                try:
                    elapsed, _, _ = _time_dumps(lib.dumps, obj, cell.dumps_loops, oob)
                    cell.dumps_ns.append(elapsed / cell.dumps_loops)
                    cell.spent_ns += elapsed
                except Exception as exc:
                    cell.dumps_error = _short(exc)
                    warnings.append(f"{lib.name}: dumps failed while timing: {cell.dumps_error}")
            if cell.loads_error is None:
                data, buffers = loaded[lib.name]
                gc.collect()
                try:
                    elapsed, _ = _time_loads(
                        lib.loads, data, buffers, cell.loads_loops, oob, opts.gc_pause
                    )
                    cell.loads_ns.append(elapsed / cell.loads_loops)
                    cell.spent_ns += elapsed
                except Exception as exc:
                    cell.loads_error = _short(exc)
                    warnings.append(f"{lib.name}: loads failed while timing: {cell.loads_error}")
    del obj, loaded
    gc.unfreeze()
    gc.collect()
    return WorkloadResult(w, w.describe(opts.quick), cells, warnings, time.monotonic() - started)


# ----------------------------------------------------------------------------- output


def machine_info(libs: list[Library], notes: list[str]) -> dict[str, Any]:
    """Facts about the machine, Python and the libraries, for the header and the JSON."""
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        nproc = os.cpu_count()
    try:
        load = os.getloadavg()
    except (AttributeError, OSError):
        load = None
    return {
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "loadavg": load,
        "platform": platform.platform(),
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "libraries": {lib.name: lib.version for lib in libs},
        "anypickle": describe_anypickle() if any("anypickle" in lib.name for lib in libs) else None,
        "notes": notes,
    }


def print_header(info: dict[str, Any], opts: Options) -> None:
    """Print machine, Python and library versions, and the run settings."""
    load = info["loadavg"]
    print("anypickle benchmark")
    print(f"machine : nproc={info['nproc']} (cpu_count={info['cpu_count']}), {info['cpu_model']}")
    if load is not None:
        print(f"load    : {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
        if info["nproc"] and load[0] >= 0.5 * info["nproc"]:
            print("  note: the machine is busy (1-min load >= half the CPUs); expect noisy timings")
    print(f"platform: {info['platform']}")
    print(f"python  : {info['implementation']} {info['python']}")
    for name, version in info["libraries"].items():
        print(f"  {name:<13} {version}")
    if info["anypickle"]:
        print(f"  anypickle is {info['anypickle']}")
    for note in info["notes"]:
        print(f"  note: {note}")
    mode = "quick" if opts.quick else "full"
    print(
        f"settings: {mode} run, protocol {PROTOCOL}, up to {opts.repeats} interleaved rounds, "
        f"median; a cell stops after {opts.min_repeats} samples once it used {opts.budget_s:g} s; "
        f"per-call samples ~{opts.per_call_target_ms:g} ms; "
        f"gc during loads: {'paused' if opts.gc_pause else 'on'}"
    )
    print(
        "legend  : speedup = pickle time / library time (>1 is faster); anypickle-nd is "
        "deterministic=False; noise = median abs. deviation / median (worse of dumps, loads)"
    )
    print(flush=True)


def print_workload(res: WorkloadResult) -> None:
    """Print the table of one workload, then its warnings."""
    w = res.workload
    cells = res.cells
    base = cells.get("pickle")
    memcpy = cells.get("memcpy")
    unit = "/call" if w.per_call else ""
    headers = [
        "library",
        f"dumps{unit}",
        "speedup",
        f"loads{unit}",
        "speedup",
        "size (bytes)",
        "size ratio",
    ]
    if memcpy is not None:
        headers += ["dumps/memcpy", "loads/memcpy"]
    headers += ["noise", "n"]
    rows = []
    for cell in cells.values():
        row = [
            cell.library + (" (!)" if cell.suspect else ""),
            fmt_time(cell.dumps_median),
            fmt_ratio(ratio(base and base.dumps_median, cell.dumps_median)),
            fmt_time(cell.loads_median),
            fmt_ratio(ratio(base and base.loads_median, cell.loads_median)),
            fmt_size(cell.size),
            fmt_ratio(ratio(cell.size, base and base.size)) if not cell.reference else "",
        ]
        if memcpy is not None:
            row += [
                fmt_ratio(ratio(cell.dumps_median, memcpy.dumps_median)),
                fmt_ratio(ratio(cell.loads_median, memcpy.loads_median)),
            ]
        noise = cell.noise()
        row.append("n/a" if noise is None else f"{noise * 100:.1f}%")
        d_loops, l_loops = cell.dumps_loops, cell.loads_loops
        loops = "" if max(d_loops, l_loops) == 1 else f" x{d_loops}"
        if loops and l_loops != d_loops:
            loops += f"/{l_loops}"
        row.append(f"{cell.samples()}{loops}")
        rows.append(row)
    extra = ""
    if w.out_of_band:
        oob = next((c.oob_bytes for c in cells.values() if c.oob_bytes), None)
        extra = f"; size is the in-band pickle, plus {fmt_size(oob)} bytes out of band"
    print(f"== {w.name}: {res.description}{extra}  [{res.seconds:.1f} s]")
    print(table(headers, rows))
    for warning in res.warnings:
        print(f"WARNING [{w.name}] {warning}")
    if any(c.suspect for c in cells.values()):
        print("(!) = that library's output failed a correctness check; its times may mislead")
    print(flush=True)


def _geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def print_summary(results: list[WorkloadResult], libs: list[Library]) -> None:
    """Print the dumps and loads speedups of every library on every workload."""
    others = [lib.name for lib in libs if lib.name != "pickle"]
    for side in ("dumps", "loads"):
        headers = ["workload", f"pickle {side}", *others]
        rows = []
        per_lib: dict[str, list[float]] = {name: [] for name in others}
        for res in results:
            base = res.cells.get("pickle")
            base_t = getattr(base, f"{side}_median") if base else None
            row = [
                res.workload.name,
                fmt_time(base_t) + (" /call" if res.workload.per_call else ""),
            ]
            for name in others:
                cell = res.cells.get(name)
                speed = ratio(base_t, getattr(cell, f"{side}_median") if cell else None)
                if speed is not None:
                    per_lib[name].append(speed)
                row.append(fmt_ratio(speed) + ("!" if cell is not None and cell.suspect else ""))
            rows.append(row)
        if len(results) > 1:
            rows.append(["geometric mean", "", *(fmt_ratio(_geomean(per_lib[n])) for n in others)])
        print(f"== summary: {side} speedup vs pickle (pickle = 1.00x; higher is faster)")
        print(table(headers, rows))
        if any(c.suspect for res in results for c in res.cells.values()):
            print("(! = that library's output failed a correctness check: see WARNING lines)")
        print()


def to_json(
    info: dict[str, Any], opts: Options, results: list[WorkloadResult], seconds: float
) -> dict[str, Any]:
    """Everything measured, as plain JSON-able data."""
    out = []
    for res in results:
        cells = []
        for cell in res.cells.values():
            entry = asdict(cell)
            entry["dumps_median_ns"] = cell.dumps_median
            entry["loads_median_ns"] = cell.loads_median
            cells.append(entry)
        w = res.workload
        out.append(
            {
                "name": w.name,
                "description": res.description,
                "size_param": w.size(opts.quick),
                "per_call": w.per_call,
                "out_of_band": w.out_of_band,
                "seconds": res.seconds,
                "warnings": res.warnings,
                "cells": cells,
            }
        )
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": seconds,
        "machine": info,
        "options": asdict(opts),
        "protocol": PROTOCOL,
        "workloads": out,
    }


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description="Benchmark anypickle against pickle, cloudpickle and dill.",
        epilog="workloads: " + ", ".join(w.name for w in WORKLOADS),
    )
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    p.add_argument("--only", help="comma-separated workload names, globs or prefixes")
    p.add_argument("--libs", help=f"comma-separated libraries (default: {','.join(ALL_LIBRARIES)})")
    p.add_argument("--repeats", type=int, help="max interleaved rounds (default 11; quick 5)")
    p.add_argument("--min-repeats", type=int, help="samples a slow cell always gets (default 3)")
    p.add_argument(
        "--budget", type=float, help="seconds a cell may use before it stops at min-repeats"
    )
    p.add_argument("--gc-pause", action="store_true", help="disable gc while timing loads")
    p.add_argument("--json", metavar="PATH", help="also write all results to PATH as JSON")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    args = parse_args(argv)
    if args.list:
        for w in WORKLOADS:
            print(f"{w.name:<14} {w.describe(False)}")
        return 0
    try:
        chosen = select(args.only.split(",") if args.only else None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wanted = args.libs.split(",") if args.libs else list(ALL_LIBRARIES)
    unknown = [name for name in wanted if name not in ALL_LIBRARIES]
    if unknown:
        print(f"error: unknown libraries {unknown}; known: {ALL_LIBRARIES}", file=sys.stderr)
        return 2
    repeats = args.repeats or (5 if args.quick else 11)
    opts = Options(
        quick=args.quick,
        repeats=max(1, repeats),
        min_repeats=max(1, min(repeats, args.min_repeats or (2 if args.quick else 3))),
        budget_s=args.budget if args.budget is not None else (0.3 if args.quick else 3.0),
        per_call_target_ms=2.0 if args.quick else 10.0,
        gc_pause=args.gc_pause,
        libraries=wanted,
    )

    libs, notes = load_libraries(wanted)
    for w in chosen:
        if not w.available():
            notes.append(f"workload {w.name} skipped: cannot import {w.requires}")
    chosen = [w for w in chosen if w.available()]
    info = machine_info(libs, notes)
    print_header(info, opts)
    if not libs:
        print("error: no library to benchmark", file=sys.stderr)
        return 2

    started = time.monotonic()
    results = []
    aborted = 0
    for w in chosen:
        try:
            res = run_workload(w, libs, opts)
        except Exception as exc:  # a harness or builder failure: report it, go on
            gc.unfreeze()
            aborted += 1
            print(f"WARNING [{w.name}] workload aborted: {_short(exc)}\n", flush=True)
            continue
        print_workload(res)
        results.append(res)
    if "pickle" in [lib.name for lib in libs] and results:
        print_summary(results, libs)
    n_warn = aborted + sum(len(r.warnings) for r in results)
    seconds = time.monotonic() - started
    try:
        load_now = f" (1-min load average now {os.getloadavg()[0]:.2f})"
    except (AttributeError, OSError):
        load_now = ""
    print(f"total {seconds:.1f} s, {n_warn} warning(s){load_now}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(to_json(info, opts, results, seconds), f, indent=1)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
