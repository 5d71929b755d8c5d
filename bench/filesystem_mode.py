"""The filesystem mode: both registries on local disk.

Measures monolithic and chunked (16 MiB and 1 MiB PATCHes) blob push and blob GET throughput
(median and min-max over rounds), server CPU time per transfer, the resident memory of each
server's process tree (idle, and peak while pushing a 2 GiB blob), tag and catalog page
times over listings seeded on disk, and the shared request rows (`request_rows`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.blobs import Blob, make_blob, plain_write_seconds
from bench.charts import Bar
from bench.chunked import push_chunked
from bench.client_check import ceiling_warnings, measure_client
from bench.common import (
    RSS_LIMIT_MIB,
    GiB,
    ModeResult,
    RunInfo,
    idle_rss_mib,
    median,
    progress,
    settle,
    settle_before_write,
    size_label,
    timed_with_cpu,
)
from bench.launchers import run_distribution, run_ours
from bench.listing import (
    FileSeeder,
    KeyLayout,
    ListingCounts,
    ListingResults,
    listing_bars,
    listing_notes,
    listing_table,
    measure_listing,
)
from bench.report import (
    Row,
    key_value_table,
    load_average,
    machine_description,
    results_table,
    summarize,
)
from bench.request_rows import (
    FULL_REQUESTS,
    QUICK_REQUESTS,
    RequestPlan,
    RequestResults,
    budget_notes,
    measure_requests,
    request_bars,
    requests_table,
)
from bench.servers import DISTRIBUTION, OURS, BenchError, Server
from bench.transfer import blob_url, get_file, push_monolithic
from registry.storage.filesystem import LISTING_STABLE_SECONDS, FilesystemStorage
from testkit.process_tree import MiB, PeakRssSampler
from testkit.registry import FILESYSTEM

WARM_UP_BLOB_SIZE = 4 * MiB
CHUNK_SIZES = (16 * MiB, 1 * MiB)
DISTRIBUTION_KEY_ROOT = "docker/registry/v2/"  # below its rootdirectory


@dataclass(frozen=True)
class Plan:
    mode: str
    rounds: int
    blob_size: int
    rss_blob_size: int
    client_tries: int
    listing: ListingCounts
    requests: RequestPlan


FULL = Plan(
    "full",
    rounds=5,
    blob_size=512 * MiB,
    rss_blob_size=2 * GiB,
    client_tries=3,
    listing=ListingCounts((1_000, 50_000), (1_000, 100_000, 1_000_000), (1_000, 100_000)),
    requests=FULL_REQUESTS,
)
QUICK = Plan(
    "quick",
    rounds=2,
    blob_size=512 * MiB,
    rss_blob_size=1 * GiB,
    client_tries=2,
    listing=ListingCounts((1_000, 5_000), (1_000, 10_000), (1_000, 10_000)),
    requests=QUICK_REQUESTS,
)


@dataclass
class Figures:
    """Everything measured on one server."""

    push: list[float] = field(default_factory=list)  # MiB/s
    get: list[float] = field(default_factory=list)  # MiB/s
    push_cpu: list[float] = field(default_factory=list)  # s
    get_cpu: list[float] = field(default_factory=list)  # s
    idle_rss_start: list[float] = field(default_factory=list)  # MiB
    idle_rss_end: list[float] = field(default_factory=list)  # MiB
    peak_rss: list[float] = field(default_factory=list)  # MiB
    big_push: list[float] = field(default_factory=list)  # MiB/s
    chunked: dict[int, list[float]] = field(default_factory=dict)  # chunk size: MiB/s


@dataclass
class Ceilings:
    """What the client and the disk manage without a registry in between."""

    upload: list[float] = field(default_factory=list)  # MiB/s, curl to a null sink
    download: list[float] = field(default_factory=list)  # MiB/s, curl from a memory source
    plain_write: list[float] = field(default_factory=list)  # MiB/s, os.write to a new file
    warnings: list[str] = field(default_factory=list)


# -- measurements ------------------------------------------------------------------------------


def measure_client_ceiling(plan: Plan, blob_dir: Path) -> Ceilings:
    blob = make_blob(blob_dir, plan.blob_size)
    try:
        settle()
        uploads, downloads = measure_client(blob, plan.client_tries)
    finally:
        blob.path.unlink()
    return Ceilings(
        upload=[t.mib_per_second for t in uploads],
        download=[t.mib_per_second for t in downloads],
        warnings=ceiling_warnings(uploads, downloads),
    )


def warm_up(servers: list[Server], blob_dir: Path) -> None:
    blob = make_blob(blob_dir, WARM_UP_BLOB_SIZE)
    try:
        for server in servers:
            push_monolithic(server.url, blob)
            get_file(blob_url(server.url, blob.digest), blob.size)
    finally:
        blob.path.unlink()


def measure_push_and_get(server: Server, blob: Blob, figures: Figures) -> None:
    settle_before_write()
    push, push_cpu = timed_with_cpu(server, lambda: push_monolithic(server.url, blob))
    settle()
    url = blob_url(server.url, blob.digest)
    get, get_cpu = timed_with_cpu(server, lambda: get_file(url, blob.size))
    figures.push.append(push.mib_per_second)
    figures.push_cpu.append(push_cpu)
    figures.get.append(get.mib_per_second)
    figures.get_cpu.append(get_cpu)
    progress(
        f"    {server.name:<12} push {push.mib_per_second:7.0f} MiB/s (cpu {push_cpu:.2f} s)"
        f"   GET {get.mib_per_second:7.0f} MiB/s (cpu {get_cpu:.2f} s)"
    )


def measure_chunked(server: Server, blob_dir: Path, plan: Plan, figures: Figures) -> None:
    """A fresh blob per chunk size (a pushed blob would be recognised, not stored again)."""
    for chunk_size in CHUNK_SIZES:
        blob = make_blob(blob_dir, plan.blob_size)
        try:
            settle_before_write()
            push = push_chunked(server.url, blob, chunk_size)
        finally:
            blob.path.unlink()
        figures.chunked.setdefault(chunk_size, []).append(push.mib_per_second)
        progress(
            f"    {server.name:<12} chunked push in {size_label(chunk_size)} PATCHes"
            f" {push.mib_per_second:7.0f} MiB/s"
        )


def measure_plain_write(plan: Plan, blob_dir: Path, ceilings: Ceilings) -> None:
    settle_before_write()
    seconds = plain_write_seconds(blob_dir, plan.blob_size)
    ceilings.plain_write.append(plan.blob_size / MiB / seconds)
    progress(f"    {'plain write':<12} {ceilings.plain_write[-1]:7.0f} MiB/s (baseline)")


def run_rounds(
    plan: Plan,
    servers: list[Server],
    blob_dir: Path,
    figures: dict[str, Figures],
    ceilings: Ceilings,
) -> None:
    """A fresh blob per round; the server that goes first alternates between rounds."""
    for index in range(plan.rounds):
        progress(f"  round {index + 1}/{plan.rounds}")
        blob = make_blob(blob_dir, plan.blob_size)
        try:
            order = servers if index % 2 == 0 else servers[::-1]
            for server in order:
                measure_push_and_get(server, blob, figures[server.name])
            for server in order:
                measure_chunked(server, blob_dir, plan, figures[server.name])
            measure_plain_write(plan, blob_dir, ceilings)
        finally:
            blob.path.unlink()


def measure_peak_rss(
    plan: Plan, servers: list[Server], blob_dir: Path, figures: dict[str, Figures]
) -> None:
    blob = make_blob(blob_dir, plan.rss_blob_size)
    try:
        for server in servers:
            settle_before_write()
            with PeakRssSampler(server.pid) as sampler:
                push = push_monolithic(server.url, blob)
            figures[server.name].peak_rss.append(sampler.peak / MiB)
            figures[server.name].big_push.append(push.mib_per_second)
            progress(
                f"    {server.name:<12} peak RSS {sampler.peak / MiB:6.1f} MiB over "
                f"{sampler.samples} samples, push {push.mib_per_second:.0f} MiB/s"
            )
    finally:
        blob.path.unlink()


# -- orchestration -----------------------------------------------------------------------------


def check_disk_space(plan: Plan, workdir: Path) -> None:
    servers = 2
    per_round = plan.blob_size * (1 + len(CHUNK_SIZES)) * (servers + 1)
    needed = (plan.rounds + 1) * per_round + plan.rss_blob_size * (servers + 1)
    free = shutil.disk_usage(workdir).free
    if free < needed * 1.2:
        raise BenchError(f"{workdir}: {free / GiB:.1f} GiB free, about {needed / GiB:.1f} needed")


@dataclass
class Results:
    figures: dict[str, Figures]
    ceilings: Ceilings
    listing: ListingResults
    requests: RequestResults


OURS_DATA, DISTRIBUTION_ROOT = "ours", "distribution-storage"


def run_ours_fs(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    return run_ours(workdir, OURS, FILESYSTEM.environment(workdir / OURS_DATA))


def run_distribution_fs(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    root = workdir / DISTRIBUTION_ROOT
    root.mkdir()
    return run_distribution(workdir, DISTRIBUTION, ["  filesystem:", f"    rootdirectory: {root}"])


def measure_file_listing(plan: Plan, workdir: Path, ours: Server, theirs: Server) -> ListingResults:
    """Tag and catalog entries written as files where each registry's driver keeps them."""
    ours_storage = FilesystemStorage(FILESYSTEM.root(workdir / OURS_DATA))
    theirs_root = workdir / DISTRIBUTION_ROOT
    seeder = FileSeeder({OURS: ours_storage.path_of, DISTRIBUTION: lambda key: theirs_root / key})
    layouts = {
        OURS: KeyLayout(OURS, "", distribution=False),
        DISTRIBUTION: KeyLayout(DISTRIBUTION, DISTRIBUTION_KEY_ROOT, distribution=True),
    }
    # Our driver caches the sorted listing of a large directory once it has been unchanged
    # for LISTING_STABLE_SECONDS: time the pages of listings that are not being changed.
    pause = LISTING_STABLE_SECONDS + 0.5
    return measure_listing(plan.listing, ours, theirs, seeder, layouts, pause)


def measure_all(plan: Plan, workdir: Path) -> Results:
    blob_dir = workdir / "blobs"
    blob_dir.mkdir()
    progress("client ceiling: curl against a trivial loopback server")
    ceilings = measure_client_ceiling(plan, blob_dir)
    with run_ours_fs(workdir) as ours, run_distribution_fs(workdir) as theirs:
        servers = [ours, theirs]
        figures = {server.name: Figures() for server in servers}
        warm_up(servers, blob_dir)
        for server in servers:
            figures[server.name].idle_rss_start.append(idle_rss_mib(server))
        progress(f"push and GET of {size_label(plan.blob_size)}, {plan.rounds} rounds")
        run_rounds(plan, servers, blob_dir, figures, ceilings)
        progress(f"peak RSS while pushing {size_label(plan.rss_blob_size)}")
        measure_peak_rss(plan, servers, blob_dir, figures)
        for server in servers:
            figures[server.name].idle_rss_end.append(idle_rss_mib(server))
        progress("tag and catalog pages")
        listing = measure_file_listing(plan, workdir, ours, theirs)
        progress("request rows")
        requests = measure_requests(
            plan.requests, servers, workdir, {OURS: run_ours_fs, DISTRIBUTION: run_distribution_fs}
        )
        return Results(figures, ceilings, listing, requests)


def result_rows(plan: Plan, ours: Figures, theirs: Figures) -> list[Row]:
    size, rss_size = size_label(plan.blob_size), size_label(plan.rss_blob_size)
    return [
        Row(f"monolithic push, {size} (MiB/s)", ours.push, theirs.push),
        *(
            Row(
                f"chunked push, {size} in {size_label(chunk)} PATCHes (MiB/s)",
                ours.chunked.get(chunk, []),
                theirs.chunked.get(chunk, []),
            )
            for chunk in CHUNK_SIZES
        ),
        Row(f"blob GET, {size} (MiB/s)", ours.get, theirs.get),
        Row(f"server CPU per {size} push (s)", ours.push_cpu, theirs.push_cpu, 2),
        Row(f"server CPU per {size} GET (s)", ours.get_cpu, theirs.get_cpu, 2),
        Row(f"peak RSS while pushing {rss_size} (MiB)", ours.peak_rss, theirs.peak_rss, 1),
        Row("idle RSS after warm-up (MiB)", ours.idle_rss_start, theirs.idle_rss_start, 1),
        Row("idle RSS after the run (MiB)", ours.idle_rss_end, theirs.idle_rss_end, 1),
        Row(f"monolithic push, {rss_size}, one run (MiB/s)", ours.big_push, theirs.big_push),
    ]


def render(plan: Plan, results: Results, info: RunInfo) -> str:
    figures, ceilings = results.figures, results.ceilings
    ours, theirs = figures[OURS], figures[DISTRIBUTION]
    their_name = f"Distribution {info.distribution_version}"
    lines = [
        f"### Results: {plan.mode} mode, {info.date}",
        "",
        results_table(result_rows(plan, ours, theirs), their_name),
        "",
        f"Median of {plan.rounds} rounds with (min-max); one run for the"
        f" {size_label(plan.rss_blob_size)} push. A ratio above 1 means ours is faster"
        " (throughput) or uses more (CPU, memory).",
        "",
        requests_table(results.requests, their_name),
        "",
        f"Median of {plan.requests.rounds} round(s) (cold start: {plan.requests.cold_starts}"
        " starts) with (min-max).",
        "",
        listing_table(results.listing.rows, their_name),
        "",
        *budget_notes(ours.peak_rss, ours.idle_rss_start + ours.idle_rss_end, results.requests),
        f"- Client ceiling (curl against a trivial loopback server, median of"
        f" {plan.client_tries}): upload {median(ceilings.upload):,.0f} MiB/s,"
        f" download {median(ceilings.download):,.0f} MiB/s.",
        f"- Plain write baseline (this process writing {size_label(plan.blob_size)} to a new file"
        f" on the same disk, once per round): {summarize(ceilings.plain_write, 0)} MiB/s.",
        f"- Listings: {results.listing.seeded_objects:,} files seeded in"
        f" {results.listing.seeding_seconds:.0f} s; page times are the median (min-max) of"
        f" {results.listing.repeats()} GETs, starting {LISTING_STABLE_SECONDS + 0.5:.1f} s after"
        " the seeding: our driver caches a large directory's sorted listing once it has been"
        f" unchanged for {LISTING_STABLE_SECONDS:.0f} s, so the first GET (the max) scans the"
        " directory and the others page the cached listing.",
        *listing_notes(results.listing, plan.listing),
        f"- Load average before / after: {info.load_before} / {info.load_after};"
        f" the run took {info.duration}.",
    ]
    if plan.mode == "quick":
        lines.append(
            f"- Quick mode: {plan.rounds} rounds, peak RSS measured while pushing"
            f" {size_label(plan.rss_blob_size)} instead of 2 GiB, shorter request rows"
            f" ({plan.requests.wrk_seconds} s per wrk run) and smaller listings."
        )
    lines.extend(f"- Warning: {warning}" for warning in ceilings.warnings)
    lines += ["", "### Machine", "", key_value_table([("Date", info.date), *info.machine])]
    return "\n".join(lines)


def chart_bars(plan: Plan, results: Results) -> list[Bar]:
    """Throughput rows (ours / Distribution), then the request and listing speed-ups."""
    ours, theirs = results.figures[OURS], results.figures[DISTRIBUTION]
    throughput = [row for row in result_rows(plan, ours, theirs) if "MiB/s" in row.label]
    bars = [
        Bar(row.label, statistics.median(row.ours) / statistics.median(row.theirs))
        for row in throughput
        if row.ours and row.theirs and statistics.median(row.theirs) > 0
    ]
    return bars + request_bars(results.requests) + listing_bars(results.listing)


def plan_for(quick: bool, rounds: int | None) -> Plan:
    plan = QUICK if quick else FULL
    return plan if rounds is None else dataclasses.replace(plan, rounds=rounds)


def run(quick: bool, rounds: int | None, workdir: Path, info: RunInfo) -> ModeResult:
    """Measure everything in workdir: the Markdown section, chart bars, and whether our RSS
    stayed in limit."""
    plan = plan_for(quick, rounds)
    check_disk_space(plan, workdir)
    info.machine = machine_description(workdir, info.distribution_version)
    results = measure_all(plan, workdir)
    info.finish(load_average())
    return ModeResult(
        render(plan, results, info),
        max(results.figures[OURS].peak_rss, default=0.0) < RSS_LIMIT_MIB,
        chart_bars(plan, results),
    )
