"""Figures about a process tree, read from /proc: resident memory and CPU time."""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

MiB = 1 << 20
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_TREE_SIZE = 256
SAMPLE_INTERVAL_SECONDS = 0.02
MAX_SAMPLING_SECONDS = 900.0


def _children(pid: int) -> list[int]:
    """Direct children of pid (every thread may have forked some)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return []
    children: list[int] = []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children


def tree_pids(root: int) -> list[int]:
    """root and all its descendants (bounded to MAX_TREE_SIZE processes)."""
    found: list[int] = []
    pending = [root]
    while pending and len(found) < MAX_TREE_SIZE:
        pid = pending.pop()
        found.append(pid)
        pending.extend(_children(pid))
    return found


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError):
        return 0


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / CLOCK_TICKS


def tree_rss_bytes(root: int) -> int:
    """Resident memory summed over root and its descendants."""
    return sum(_rss_bytes(pid) for pid in tree_pids(root))


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time consumed so far by root and its live descendants."""
    return sum(_cpu_seconds(pid) for pid in tree_pids(root))


class PeakRssSampler:
    """Samples a tree's RSS every SAMPLE_INTERVAL_SECONDS in a thread; `peak` holds the maximum."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        self.peak = max(self.peak, tree_rss_bytes(self.root))
        self.samples += 1

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SAMPLING_SECONDS
        while not self._stop.wait(SAMPLE_INTERVAL_SECONDS) and time.monotonic() < deadline:
            self._sample()

    def __enter__(self) -> PeakRssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
