"""anypickle demo: pickle a realistic inventory, read it back with the standard library.

The inventory holds products with Decimal prices, timezone-aware datetimes, dates, bytes,
tuples and nested dicts; suppliers shared by many products (shared references) which list
their products in turn (cycles); an index dict pointing at the same product dicts; and a
back-pointer from the metadata to the root.

The demo pickles it with ``anypickle.dumps`` (default protocol 5), then checks that

* the bytes are exactly those of ``pickle.dumps(obj, 5)``;
* the standard ``pickle.loads`` gives back an equal structure whose sharing and cycles
  survived (every shared object is still one object, every cycle still closes);
* ``anypickle.loads``, ``anypickle.dump`` and ``deterministic=False`` agree as well;

prints the sizes and a small dumps/loads timing table against ``pickle``, and exits with
status 1 if any check failed (2 if anypickle cannot be imported).

Run it with::

    python examples/demo.py
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import itertools
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

try:
    import anypickle
except ImportError as exc:  # the Rust extension is not built or not installed
    print(f"cannot import anypickle: {exc}", file=sys.stderr)
    print("build it first, e.g. `maturin develop --release` in the repository", file=sys.stderr)
    sys.exit(2)

UTC = dt.timezone.utc
#: Timing samples per variant (each a loop of calls sized to ~20 ms for pickle).
REPEATS = 15
CET = dt.timezone(dt.timedelta(hours=1), "CET")

# ----------------------------------------------------------------------------- the data


def build_inventory(n_products: int = 2_000, n_orders: int = 600) -> dict[str, Any]:
    """Build a warehouse inventory with shared references and cycles (deterministic)."""
    warehouses = [
        {"code": "AMS-1", "city": "Amsterdam", "opened": dt.date(2014, 3, 3), "dock_doors": 12},
        {"code": "KRK-2", "city": "Kraków", "opened": dt.date(2019, 9, 16), "dock_doors": 8},
        {"code": "MLM-1", "city": "Malmö", "opened": dt.date(2021, 1, 11), "dock_doors": 5},
    ]
    countries = ["NL", "PL", "SE", "DE", "PT", "JP"]
    suppliers: list[dict[str, Any]] = [
        {
            "id": f"SUP-{i:03d}",
            "name": f"Supplier Nº{i} — {['Møller', 'Żabka', 'Ōta', 'Ferreira'][i % 4]} & Co",
            "country": countries[i % len(countries)],
            "rating": Decimal(f"{3 + i % 3}.{(i * 7) % 10}"),
            "products": [],  # filled below: supplier -> product -> supplier is a cycle
        }
        for i in range(24)
    ]
    # A few tag lists shared by many products: one list object, many references.
    tag_sets = [
        ["fragile", "handle-with-care"],
        ["bulk"],
        ["cold-chain", "perishable", "priority"],
        [],
    ]
    base_time = dt.datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    products: list[dict[str, Any]] = []
    for i in range(n_products):
        supplier = suppliers[(i * 5) % len(suppliers)]
        product = {
            "sku": f"SKU-{i:06d}",
            "name": f"Item {i} ({['blue', 'grün', 'żółty', '赤'][i % 4]})",
            "price": Decimal(f"{1 + (i * 37) % 500}.{(i * 13) % 100:02d}"),
            "currency": "EUR",
            "supplier": supplier,
            "tags": tag_sets[i % len(tag_sets)],
            "stock": {w["code"]: (i * (j + 3)) % 250 for j, w in enumerate(warehouses)},
            "dims_cm": (10.0 + i % 7, 4.5 + i % 3, 2.25 * (1 + i % 4)),
            "weight_kg": round(0.05 + (i % 90) * 0.137, 3),
            "added": base_time + dt.timedelta(hours=7 * i),
            "discontinued": i % 17 == 0,
            "barcode": (4_000_000_000_000 + i).to_bytes(8, "big"),
            "note": None if i % 5 else "ships in original packaging ✓",
        }
        supplier["products"].append(product)
        products.append(product)

    orders = []
    for n in range(n_orders):
        lines = []
        for k in range(1 + n % 4):
            product = products[(n * 31 + k * 7) % n_products]
            lines.append((product, 1 + (n + k) % 6, product["price"]))
        orders.append(
            {
                "order_id": 900_000 + n,
                "placed": dt.datetime(2024, 6, 1, 9, 30, tzinfo=CET) + dt.timedelta(minutes=n),
                "status": ["new", "picked", "shipped", "delivered"][n % 4],
                "lines": lines,
                "total": sum((qty * price for _, qty, price in lines), Decimal("0.00")),
                "warehouse": warehouses[n % len(warehouses)],
            }
        )

    inventory: dict[str, Any] = {
        "schema": 3,
        "generated": dt.datetime(2024, 6, 30, 23, 59, 59, 123456, tzinfo=UTC),
        "warehouses": warehouses,
        "suppliers": suppliers,
        "products": products,
        "by_sku": {p["sku"]: p for p in products},  # an index of the same dicts
        "orders": orders,
        "categories": frozenset({"tools", "garden", "kitchen", "office"}),
        "meta": {"source": "demo", "root": None},
    }
    inventory["meta"]["root"] = inventory  # a cycle through the top-level dict
    return inventory


# ----------------------------------------------------------------------------- checks

_CONTAINERS = (dict, list, tuple, set, frozenset)


def same_graph(a: Any, b: Any) -> bool:
    """Deep equality of two object graphs that also requires the same sharing pattern.

    Walks both graphs in step, pairing containers.  A container of ``a`` met again must
    be paired with the very same container of ``b`` (and vice versa), so shared objects
    must still be shared and cycles must still close; everything else compares with ``==``.
    Iterative, so deep structures cannot hit the recursion limit.
    """
    forward: dict[int, Any] = {}
    backward: dict[int, Any] = {}
    keep: list[Any] = []  # keep visited objects alive so their ids stay unique
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if not isinstance(x, _CONTAINERS):
            if x != y:
                return False
            continue
        if id(x) in forward or id(y) in backward:
            if forward.get(id(x)) is not y or backward.get(id(y)) is not x:
                return False
            continue
        forward[id(x)] = y
        backward[id(y)] = x
        keep.append((x, y))
        if isinstance(x, dict):
            if list(x) != list(y):  # same keys, in the same order
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, (list, tuple)):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif x != y:  # sets hold hashable (so immutable) items: == is enough
            return False
    return True


class Checks:
    """Collects pass/fail results and prints one line per check."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def attempt(self, name: str, make: Callable[[], Any]) -> Any:
        """Run ``make`` and return its value; an exception is a failure and gives None."""
        result: list[Any] = [None]

        def run() -> bool:
            result[0] = make()
            return True

        self.check(name, run)
        return result[0]

    def check(self, name: str, test: Callable[[], bool]) -> None:
        """Run ``test``; an exception counts as a failure."""
        try:
            ok = bool(test())
            detail = ""
        except Exception as exc:
            ok = False
            detail = f"  ({type(exc).__name__}: {exc})"
        print(f"  [{'ok' if ok else 'FAIL'}] {name}{detail}")
        if not ok:
            self.failures.append(name)


# ----------------------------------------------------------------------------- timing


def _sample(fn: Callable[[], Any], loops: int, samples: list[float]) -> None:
    """Append the time per call of ``loops`` calls of ``fn`` to ``samples``.

    Results stay alive until the clock stops, and the cyclic garbage left by earlier
    samples (the inventory has cycles) is collected first, so no sample pays for another.
    """
    gc.collect()
    t0 = time.perf_counter_ns()
    results = [fn() for _ in itertools.repeat(None, loops)]
    samples.append((time.perf_counter_ns() - t0) / loops)
    del results


def time_table(obj: Any, repeats: int = REPEATS) -> list[tuple[str, float, float, int]]:
    """Median dumps and loads times (ns) of each variant, samples interleaved."""
    variants: list[tuple[str, Callable[[Any], bytes], Callable[[bytes], Any]]] = [
        ("pickle", lambda o: pickle.dumps(o, 5), pickle.loads),
        ("anypickle", anypickle.dumps, anypickle.loads),
        (
            "anypickle (deterministic=False)",
            lambda o: anypickle.dumps(o, deterministic=False),
            anypickle.loads,
        ),
    ]
    data = {name: dumps(obj) for name, dumps, _ in variants}
    # One loop count for all, so that each takes about 20 ms for pickle.
    t0 = time.perf_counter_ns()
    pickle.loads(pickle.dumps(obj, 5))
    loops = max(1, int(20e6 / max(time.perf_counter_ns() - t0, 1)))
    dumps_ns: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    loads_ns: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for round_no in range(repeats):
        shift = round_no % len(variants)
        for name, dumps, loads in variants[shift:] + variants[:shift]:
            blob = data[name]
            _sample(lambda dumps=dumps: dumps(obj), loops, dumps_ns[name])
            _sample(lambda loads=loads, blob=blob: loads(blob), loops, loads_ns[name])
    return [
        (
            name,
            statistics.median(dumps_ns[name]),
            statistics.median(loads_ns[name]),
            len(data[name]),
        )
        for name, _, _ in variants
    ]


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


def _size(blob: bytes | None) -> str:
    return "n/a" if blob is None else f"{len(blob):,}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print an aligned table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in widths], *rows]:
        cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        print("  " + "  ".join(cells).rstrip())


# ----------------------------------------------------------------------------- main


def main() -> int:
    """Run the demo; return the exit status (0 when every check passed)."""
    print(f"anypickle demo (anypickle from {anypickle.__file__}, Python {sys.version.split()[0]})")
    inventory = build_inventory()
    print(
        f"inventory: {len(inventory['products']):,} products, "
        f"{len(inventory['suppliers'])} suppliers, {len(inventory['orders']):,} orders, "
        "shared references and cycles\n"
    )

    checks = Checks()
    print("checks:")
    expected = pickle.dumps(inventory, 5)
    data = checks.attempt("anypickle.dumps(obj) runs", lambda: anypickle.dumps(inventory))
    fast = checks.attempt(
        "anypickle.dumps(obj, deterministic=False) runs",
        lambda: anypickle.dumps(inventory, deterministic=False),
    )
    checks.check("default protocol is 5 (PROTO 5 header)", lambda: data[:2] == b"\x80\x05")
    checks.check("bytes are identical to pickle.dumps(obj, 5)", lambda: data == expected)
    back = checks.attempt("pickle.loads reads anypickle's output", lambda: pickle.loads(data))
    checks.check(
        "pickle.loads gives back an equal graph (sharing kept)",
        lambda: same_graph(inventory, back),
    )
    products = back["products"] if back else []
    suppliers = back["suppliers"] if back else []
    checks.check(
        "a supplier shared by products is still one object",
        lambda: products[0]["supplier"] is products[len(suppliers)]["supplier"],
    )
    checks.check(
        "cycle supplier -> product -> supplier still closes",
        lambda: (
            bool(suppliers) and all(p["supplier"] is s for s in suppliers for p in s["products"])
        ),
    )
    checks.check(
        "index by_sku points at the same product dicts",
        lambda: bool(products) and all(back["by_sku"][p["sku"]] is p for p in products),
    )
    checks.check(
        "order lines share the product dicts",
        lambda: (
            back["orders"][0]["lines"][0][0]
            is back["by_sku"][back["orders"][0]["lines"][0][0]["sku"]]
        ),
    )
    checks.check("root back-pointer cycle closes", lambda: back["meta"]["root"] is back)
    checks.check(
        "Decimal and aware datetime values survive",
        lambda: (
            isinstance(products[1]["price"], Decimal)
            and products[1]["added"].tzinfo is not None
            and back["orders"][0]["total"] == inventory["orders"][0]["total"]
        ),
    )
    checks.check(
        "anypickle.loads reads it back too",
        lambda: same_graph(inventory, anypickle.loads(data)),
    )

    def dump_matches() -> bool:
        ours, theirs = io.BytesIO(), io.BytesIO()
        anypickle.dump(inventory, ours)
        pickle.dump(inventory, theirs, 5)
        return ours.getvalue() == theirs.getvalue()

    checks.check("anypickle.dump to a file writes the same bytes as pickle.dump", dump_matches)
    checks.check(
        "deterministic=False output loads back equal with pickle.loads",
        lambda: same_graph(inventory, pickle.loads(fast)),
    )

    print("\nsizes:")
    print_table(
        ["call", "bytes"],
        [
            ["pickle.dumps(obj, 5)", _size(expected)],
            ["anypickle.dumps(obj)", _size(data)],
            ["anypickle.dumps(obj, deterministic=False)", _size(fast)],
        ],
    )

    print(f"\ntiming (median of {REPEATS} interleaved samples; speedup = pickle time / time):")
    if data is None or fast is None:
        print("  skipped: anypickle.dumps failed")
    else:
        try:
            rows = time_table(inventory)
        except Exception as exc:
            print(f"  skipped: {type(exc).__name__}: {exc}")
            checks.failures.append("timing run")
        else:
            base_dumps, base_loads = rows[0][1], rows[0][2]
            print_table(
                ["library", "dumps", "speedup", "loads", "speedup", "size"],
                [
                    [
                        name,
                        _ms(d),
                        f"{base_dumps / d:.2f}x",
                        _ms(ld),
                        f"{base_loads / ld:.2f}x",
                        f"{size:,}",
                    ]
                    for name, d, ld, size in rows
                ],
            )

    print()
    if checks.failures:
        print(f"FAILED: {len(checks.failures)} check(s): {'; '.join(checks.failures)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
