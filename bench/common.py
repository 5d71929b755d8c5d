"""Small pieces every part of the benchmark uses: sizes, progress lines, pauses, medians."""

from __future__ import annotations

import os
import statistics
import sys
import time

from testkit.process_tree import MiB

GiB = 1 << 30
SETTLE_PAUSE_SECONDS = 3.0

__all__ = ["GiB", "MiB", "median", "progress", "settle", "settle_before_write", "size_label"]


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


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
