"""The request rows' figures, their table and chart bars. Every figure is reported as a
speed-up: Distribution's time / ours, or our rate / Distribution's, so above 1 always means ours
is better; a row with a budget (cold start) is judged against it instead."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.budgets import verdict
from bench.charts import Bar
from bench.servers import DISTRIBUTION, OURS
from bench.tables import summarize


@dataclass(frozen=True)
class RowKind:
    label: str
    unit: str
    higher_is_better: bool
    decimals: int = 0
    budget: float | None = None  # judged against this absolute limit, not against Distribution


@dataclass
class RequestResults:
    """Per row label: the kind, and every figure of ours and of Distribution."""

    kinds: dict[str, RowKind] = field(default_factory=dict)
    figures: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, kind: RowKind, server: str, value: float) -> None:
        self.kinds.setdefault(kind.label, kind)
        self.figures.setdefault(kind.label, {OURS: [], DISTRIBUTION: []})[server].append(value)

    def speedup(self, label: str) -> float | None:
        """Above 1: ours better (faster, or more per second)."""
        ours, theirs = (self.figures[label][name] for name in (OURS, DISTRIBUTION))
        if not ours or not theirs:
            return None
        mine, other = statistics.median(ours), statistics.median(theirs)
        if self.kinds[label].higher_is_better:
            return mine / other if other else None
        return other / mine if mine else None


def requests_table(results: RequestResults, their_name: str) -> str:
    lines = [
        f"| | ours | {their_name} | speed-up (> 1: ours better) |",
        "|---|---:|---:|---:|",
    ]
    for label, kind in results.kinds.items():
        ours, theirs = (results.figures[label][name] for name in (OURS, DISTRIBUTION))
        speedup = results.speedup(label)
        shown = "-" if speedup is None else f"{speedup:.2f}"
        if kind.budget is not None and ours:
            worst = max(ours)
            shown = f"budget {kind.budget:g} {kind.unit}: {verdict(worst, kind.budget)}"
        lines.append(
            f"| {label} | {summarize(ours, kind.decimals)} | {summarize(theirs, kind.decimals)}"
            f" | {shown} |"
        )
    return "\n".join(lines)


def request_bars(results: RequestResults) -> list[Bar]:
    bars = []
    for label, kind in results.kinds.items():
        speedup = results.speedup(label)
        if speedup is not None and kind.budget is None:
            bars.append(Bar(label, speedup))
    return bars
