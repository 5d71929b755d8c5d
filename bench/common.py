"""Pieces shared by the filesystem and the S3 modes: sizes, pauses, CPU and memory figures."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.charts import Bar
from bench.servers import Server
from bench.transfer import Transfer
from testkit.process_tree import MiB, tree_cpu_seconds, tree_rss_bytes

GiB = 1 << 30
RSS_LIMIT_MIB = 200  # peak while pushing 2 GiB
IDLE_RSS_LIMIT_MIB = 100
COLD_START_LIMIT_SECONDS = 1.5
IDLE_SAMPLES = 5
IDLE_SAMPLE_INTERVAL_SECONDS = 0.1
IDLE_SETTLE_SECONDS = 3.0  # idle: no request for this long
SETTLE_PAUSE_SECONDS = 3.0


@dataclass
class RunInfo:
    """The circumstances of a run, printed under the results."""

    date: str
    distribution_version: str
    load_before: str
    started: float = field(default_factory=time.monotonic)
    machine: list[tuple[str, str]] = field(default_factory=list)
    load_after: str = "?"
    duration: str = "?"

    def finish(self, load_after: str) -> None:
        self.load_after = load_after
        self.duration = f"{time.monotonic() - self.started:.0f} s"


def size_label(size: int) -> str:
    return f"{size // GiB} GiB" if size % GiB == 0 else f"{size // MiB} MiB"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def settle() -> None:
    """Flush dirty pages, so one step's writeback does not land in the next step's timing."""
    os.sync()


def settle_before_write() -> None:
    """Flush, then wait until recently freed memory has been handed back to the host.

    On a VM with free page reporting, pages freed less than about 2 s earlier are several times
    faster to write into than reported ones; the pause keeps a file deleted just before (the
    previous round's blob, say) from speeding up whichever write comes next.
    """
    settle()
    time.sleep(SETTLE_PAUSE_SECONDS)


def timed_with_cpu(server: Server, action: Callable[[], Transfer]) -> tuple[Transfer, float]:
    """Run action; its transfer and the server's CPU seconds (user + system) meanwhile."""
    before = tree_cpu_seconds(server.pid)
    transfer = action()
    return transfer, tree_cpu_seconds(server.pid) - before


def idle_rss_mib(server: Server) -> float:
    """Median of a few samples, taken after a short pause."""
    time.sleep(IDLE_SETTLE_SECONDS)
    samples = []
    for _ in range(IDLE_SAMPLES):
        samples.append(tree_rss_bytes(server.pid) / MiB)
        time.sleep(IDLE_SAMPLE_INTERVAL_SECONDS)
    return statistics.median(samples)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


@dataclass(frozen=True)
class ModeResult:
    section: str  # Markdown
    passed: bool  # our peak RSS within RSS_LIMIT_MIB
    bars: list[Bar]  # for the chart


def verdict(value: float, limit: float) -> str:
    return "within" if value < limit else "**over**"
