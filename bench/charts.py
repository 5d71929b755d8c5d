"""PNG charts of a run: one bar per row, ours against Distribution as a speed-up factor.

matplotlib is imported only here, and only when a chart is written (the bench extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Bar:
    label: str
    speedup: float  # > 1: ours better


def write_chart(path: Path, title: str, bars: list[Bar]) -> None:
    """A horizontal bar per row from 1 (parity) to its factor, on a logarithmic axis (factors
    from below 1 to several hundred), the factor written at its end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [bar for bar in bars if bar.speedup > 0]
    height = 0.8 + 0.32 * len(shown)
    figure, axes = plt.subplots(figsize=(10, height))
    try:
        positions = range(len(shown))
        colours = ["#2a7ab0" if bar.speedup >= 1 else "#c0392b" for bar in shown]
        widths = [bar.speedup - 1 for bar in shown]
        axes.barh(list(positions), widths, left=1.0, color=colours)
        axes.set_xscale("log")
        axes.set_yticks(list(positions), [bar.label for bar in shown], fontsize=8)
        axes.invert_yaxis()
        axes.axvline(1.0, color="black", linewidth=0.8)
        for position, bar in zip(positions, shown, strict=True):
            below = bar.speedup < 1
            axes.text(
                bar.speedup,
                position,
                f"{bar.speedup:.2f}x " if below else f" {bar.speedup:.2f}x",
                va="center",
                ha="right" if below else "left",
                fontsize=7,
            )
        axes.set_xlabel("ours vs Distribution (> 1: ours better)")
        axes.set_title(title, fontsize=10)
        factors = [bar.speedup for bar in shown] + [1.0]
        axes.set_xlim(min(factors) / 1.5, max(factors) * 2.5)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
