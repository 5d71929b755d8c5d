"""The garbage-collection mode of `bench.run` (`--gc`): which rows each storage measures, in
one temporary directory, and the section they make (`bench.gc` has the rows' description).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import GiB, progress
from bench.doc import GC_MARKERS, GC_S3_MARKERS, Markers
from bench.gc import (
    RSS_BUDGET_MIB,
    SIDE_ROOT,
    GcPlan,
    GcResults,
    large_collection,
    plan_for,
    s3_collections,
    side_by_side,
)
from bench.gc_render import render_filesystem, render_s3
from bench.gc_traffic import protocol_overhead, reads_during_collection
from bench.machine import RunInfo, load_average, machine_description
from bench.servers import BenchError
from testkit.seaweed import version as seaweed_version


@dataclass(frozen=True)
class GcOutcome:
    section: str  # Markdown
    markers: Markers  # its generated section of the benchmarks page
    passed: bool  # every row measured, our collector's peak RSS within budget
    results: GcResults


def check_disk_space(plan: GcPlan, workdir: Path) -> None:
    free = shutil.disk_usage(workdir).free
    if free < plan.disk_needed:
        raise BenchError(
            f"{workdir}: {free / GiB:.1f} GiB free, {plan.disk_needed / GiB:.0f} GiB needed"
        )


def run_gc(
    storage: str,
    quick: bool,
    rounds: int | None,
    workdir: Path,
    info: RunInfo,
    checkpoint: Path | None = None,
) -> GcOutcome:
    """Measure one storage's rows in workdir: filesystem (a), (b), (d), (e); s3 (c). After
    each row, the results so far go to `checkpoint` (JSON), if given."""
    plan = plan_for(quick, rounds)
    check_disk_space(plan, workdir)
    results = GcResults(plan, checkpoint=checkpoint)
    if storage == "s3":
        info.machine = machine_description(
            workdir, info.distribution_version, "Disk (SeaweedFS's data)"
        )
        info.machine.append(("SeaweedFS", f"{seaweed_version()} (`weed server`, one process)"))
        _row(results, "(c)", lambda: s3_collections(results, workdir))
        info.finish(load_average())
        outcome = GcOutcome(render_s3(results, info), GC_S3_MARKERS, not results.failures, results)
        return outcome
    info.machine = machine_description(
        workdir, info.distribution_version, "Disk (both storage roots)"
    )
    side_root = workdir / SIDE_ROOT
    if _row(results, "(b)", lambda: side_by_side(results, workdir)):
        _row(results, "(d)", lambda: reads_during_collection(results, workdir, side_root))
    _row(results, "(e)", lambda: protocol_overhead(results, workdir))
    _row(results, "(a)", lambda: large_collection(results, workdir))
    info.finish(load_average())
    peak = max((run.peak_rss_mib for run in results.large), default=0.0)
    passed = not results.failures and peak < RSS_BUDGET_MIB
    return GcOutcome(render_filesystem(results, info), GC_MARKERS, passed, results)


def _row(results: GcResults, label: str, measure: Callable[[], object]) -> bool:
    """Measure one row; a failure is noted in the results (the other rows still run)."""
    try:
        measure()
        if results.checkpoint is not None:
            results.checkpoint.write_text(json.dumps(results.as_json(), indent=1, default=str))
    except BenchError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[0] + (f" ... {lines[-1]}" if len(lines) > 1 else "")
        results.failures.append(f"{label} failed: {detail}")
        progress(f"{label} failed: {exc}")
        return False
    return True
