"""CPU time and resident memory of the processes around a measured action, from /proc."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.transfer import Transfer
from testkit.process_tree import MiB, tree_cpu_seconds, tree_rss_bytes

IDLE_SAMPLES = 5
IDLE_SAMPLE_INTERVAL_SECONDS = 0.1
IDLE_SETTLE_SECONDS = 3.0  # idle: no request for this long


@dataclass(frozen=True)
class Timed:
    transfer: Transfer
    cpu: float  # s, user + system of the serving tree (None as pid: this process)
    store_cpu: float | None  # s, the storage service's process tree, if it has one


def timed(action: Callable[[], Transfer], pid: int | None, store_pid: int | None) -> Timed:
    """Run action; its transfer, and the CPU seconds of pid's tree and of the store's meanwhile."""

    def cpu() -> float:
        return time.process_time() if pid is None else tree_cpu_seconds(pid)

    def store_cpu() -> float:
        return 0.0 if store_pid is None else tree_cpu_seconds(store_pid)

    cpu_before, store_before = cpu(), store_cpu()
    transfer = action()
    store_used = store_cpu() - store_before
    return Timed(transfer, cpu() - cpu_before, None if store_pid is None else store_used)


def idle_rss_mib(pid: int) -> float:
    """Median of a few samples of pid's tree, taken after a short pause."""
    time.sleep(IDLE_SETTLE_SECONDS)
    samples = []
    for _ in range(IDLE_SAMPLES):
        samples.append(tree_rss_bytes(pid) / MiB)
        time.sleep(IDLE_SAMPLE_INTERVAL_SECONDS)
    return statistics.median(samples)
