"""Plain-text formatting for the benchmark harness: units, ratios and aligned tables."""

from __future__ import annotations

from collections.abc import Sequence

NA = "n/a"


def fmt_time(ns: float | None) -> str:
    """Format a duration in nanoseconds with a unit that keeps 3-4 significant digits."""
    if ns is None:
        return NA
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.2f} us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.3f} s"


def fmt_ratio(value: float | None) -> str:
    """Format a ratio such as a speedup as ``1.23x``."""
    if value is None:
        return NA
    if value >= 100:
        return f"{value:.0f}x"
    if value < 0.01:
        return "<0.01x"
    return f"{value:.2f}x"


def fmt_size(nbytes: int | None) -> str:
    """Format a byte count exactly, with thousands separators."""
    return NA if nbytes is None else f"{nbytes:,}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None if either is missing or the divisor is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Render an aligned table; the first ``left`` columns are left-aligned, others right."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
