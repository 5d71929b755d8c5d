"""Markdown tables: the transfer table (ours, Distribution, and the storage's own baseline
where it has a column), and key-value tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.charts import Bar


@dataclass(frozen=True)
class Row:
    label: str
    ours: list[float]
    theirs: list[float]
    baseline: list[float] = field(default_factory=list)  # raw S3: the bucket without a registry
    decimals: int = 0


@dataclass(frozen=True)
class BaselineColumn:
    heading: str  # its column: `raw S3`
    short: str  # in its ratio column: `ours / raw`


def summarize(values: list[float], decimals: int) -> str:
    """`median (min-max)`, or the single value."""
    if not values:
        return "-"
    median = f"{statistics.median(values):,.{decimals}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):,.{decimals}f}-{max(values):,.{decimals}f})"


def ratio(ours: list[float], other: list[float]) -> str:
    if not ours or not other or statistics.median(other) == 0:
        return "-"
    return f"{statistics.median(ours) / statistics.median(other):.2f}"


def transfer_table(rows: list[Row], their_name: str, baseline: BaselineColumn | None) -> str:
    """ours, Distribution[, baseline], ours / Distribution[, ours / baseline]."""
    if baseline is None:
        lines = [f"| | ours | {their_name} | ours / Distribution |", "|---|---:|---:|---:|"]
    else:
        lines = [
            f"| | ours | {their_name} | {baseline.heading} | ours / Distribution"
            f" | ours / {baseline.short} |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    for row in rows:
        columns = [row.ours, row.theirs] + ([row.baseline] if baseline else [])
        cells = [summarize(values, row.decimals) for values in columns]
        cells.append(ratio(row.ours, row.theirs))
        if baseline is not None:
            cells.append(ratio(row.ours, row.baseline))
        lines.append(f"| {row.label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def throughput_bars(rows: list[Row]) -> list[Bar]:
    """ours / Distribution for every throughput row (MiB/s) measured on both."""
    return [
        Bar(row.label, statistics.median(row.ours) / statistics.median(row.theirs))
        for row in rows
        if "MiB/s" in row.label and row.ours and row.theirs and statistics.median(row.theirs)
    ]


def key_value_table(pairs: list[tuple[str, str]]) -> str:
    lines = ["| | |", "|---|---|"]
    lines.extend(f"| {key} | {value} |" for key, value in pairs)
    return "\n".join(lines)
