"""The rows of the transfer table both storages share: monolithic and chunked push, and
memory; each storage adds its GET and CPU rows (`bench.*_backend`)."""

from __future__ import annotations

from bench.common import size_label
from bench.figures import Figures
from bench.plan import Plan
from bench.tables import Row


def monolithic_row(plan: Plan, ours: Figures, theirs: Figures, baseline: Figures | None) -> Row:
    label = f"monolithic push, {size_label(plan.blob_size)} (MiB/s)"
    return Row(label, ours.push, theirs.push, baseline.push if baseline else [])


def chunked_rows(
    plan: Plan, sizes: dict[int, int], ours: Figures, theirs: Figures, baseline: Figures | None
) -> list[Row]:
    """One row per chunk size; the baseline's push where the blob is as large as its own."""
    return [
        Row(
            f"chunked push, {size_label(blob_size)} in {size_label(chunk)} PATCHes (MiB/s)",
            ours.chunked.get(chunk, []),
            theirs.chunked.get(chunk, []),
            baseline.push if baseline and blob_size == plan.blob_size else [],
        )
        for chunk, blob_size in sizes.items()
    ]


def memory_rows(plan: Plan, ours: Figures, theirs: Figures, after_run: bool) -> list[Row]:
    """Peak RSS during the big push, idle RSS (after the warm-up, and after the run when
    measured), and the big push's own speed."""
    rss_size = size_label(plan.rss_blob_size)
    idle_after = [
        Row("idle RSS after the run (MiB)", ours.idle_rss_end, theirs.idle_rss_end, [], 1)
    ]
    return [
        Row(f"peak RSS while pushing {rss_size} (MiB)", ours.peak_rss, theirs.peak_rss, [], 1),
        Row("idle RSS after warm-up (MiB)", ours.idle_rss_start, theirs.idle_rss_start, [], 1),
        *(idle_after if after_run else []),
        Row(f"monolithic push, {rss_size}, one run (MiB/s)", ours.big_push, theirs.big_push),
    ]
