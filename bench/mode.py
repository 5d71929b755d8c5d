"""The benchmark mode, one for every storage: the storage's backend (`bench.backend`) starts
the servers and brings its baseline, listings and rows; the rest is the same everywhere.

Before any server starts, the clients' ceiling against a trivial server. Then a warm-up,
idle memory, the transfer rounds (`bench.rounds`), peak memory during a big push, tag and
catalog pages over seeded listings (`bench.listing`), and the request rows
(`bench.request_rows`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.backend import Stand, StorageBackend
from bench.budgets import RSS_LIMIT_MIB
from bench.charts import Bar
from bench.client_check import measure_client_ceiling
from bench.common import GiB, progress, size_label
from bench.figures import Figures, Results
from bench.listing import measure_listing
from bench.machine import RunInfo, load_average, machine_description
from bench.meters import idle_rss_mib
from bench.plan import Plan
from bench.render import chart_bars, render
from bench.request_rows import measure_requests
from bench.rounds import measure_peak_rss, run_rounds, warm_up
from bench.servers import OURS, BenchError


@dataclass(frozen=True)
class ModeResult:
    section: str  # Markdown
    passed: bool  # our peak RSS within RSS_LIMIT_MIB
    bars: list[Bar]  # for the chart


def check_disk_space(backend: StorageBackend, plan: Plan, workdir: Path) -> None:
    needed = backend.disk_needed(plan)
    free = shutil.disk_usage(workdir).free
    if free < needed * 1.2:
        raise BenchError(f"{workdir}: {free / GiB:.1f} GiB free, about {needed / GiB:.1f} needed")


def _idle_rss(stand: Stand, figures: dict[str, Figures], at_start: bool) -> None:
    for target in stand.targets:
        figures_of = figures[target.name]
        rss = idle_rss_mib(target.server.pid)
        (figures_of.idle_rss_start if at_start else figures_of.idle_rss_end).append(rss)


def measure_with(
    backend: StorageBackend, plan: Plan, stand: Stand, workdir: Path, results: Results
) -> None:
    blob_dir = workdir / "blobs"
    figures = results.figures
    warm_up(stand, blob_dir)
    stand.clean_up()
    _idle_rss(stand, figures, at_start=True)
    progress(f"push and GET of {size_label(plan.blob_size)}, {plan.rounds} rounds")
    run_rounds(plan, stand, backend.chunked_blob_sizes(plan), blob_dir, figures)
    progress(f"peak RSS while pushing {size_label(plan.rss_blob_size)}")
    measured = [t.server for t in stand.targets if plan.distribution_rss or t.name == OURS]
    measure_peak_rss(plan, measured, blob_dir, figures)
    stand.clean_up()
    if backend.idle_rss_after_run:
        _idle_rss(stand, figures, at_start=False)
    progress("tag and catalog pages")
    ours, theirs = (target.server for target in stand.targets)
    results.listing = measure_listing(plan.listing, ours, theirs, stand.listing)
    progress("request rows")
    servers = [target.server for target in stand.targets]
    results.requests = measure_requests(plan.requests, servers, workdir, stand.launchers)


def measure_all(backend: StorageBackend, plan: Plan, workdir: Path) -> Results:
    blob_dir = workdir / "blobs"
    blob_dir.mkdir()
    progress("client ceiling: curl and the chunked-push client against a trivial server")
    ceilings = measure_client_ceiling(plan.blob_size, plan.client_tries, blob_dir)
    with backend.start(workdir) as stand:
        names = [*(target.name for target in stand.targets), stand.baseline.name]
        results = Results({name: Figures() for name in names}, ceilings)
        measure_with(backend, plan, stand, workdir, results)
    return results


def run(
    backend: StorageBackend, quick: bool, rounds: int | None, workdir: Path, info: RunInfo
) -> ModeResult:
    """Measure everything in workdir: the Markdown section, chart bars, and whether our RSS
    stayed in limit."""
    plan = backend.plan(quick, rounds)
    check_disk_space(backend, plan, workdir)
    info.machine = machine_description(workdir, info.distribution_version, backend.disk_label)
    info.machine += backend.machine_rows()
    results = measure_all(backend, plan, workdir)
    info.finish(load_average())
    return ModeResult(
        render(backend, plan, results, info),
        max(results.figures[OURS].peak_rss, default=0.0) < RSS_LIMIT_MIB,
        chart_bars(backend, plan, results),
    )
