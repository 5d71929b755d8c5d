"""The S3 mode: ours and Distribution on one SeaweedFS, next to the bucket's raw speed.

Each round pushes a fresh blob monolithically and another one in 16 MiB chunks to ours,
to Distribution and (one multipart PUT) straight into a bucket, and GETs it back proxied and
through a redirect; which of the three goes first rotates between rounds. Buckets are emptied
and SeaweedFS's volumes compacted between rounds (not timed). Then peak memory during a big
push, and the time of tag and catalog pages over seeded listings.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.blobs import Blob, make_blob
from bench.chunked import chunk_ceiling, push_chunked
from bench.client_check import TrivialServer, ceiling_warnings, measure_client
from bench.common import (
    RSS_LIMIT_MIB,
    GiB,
    ModeResult,
    RunInfo,
    idle_rss_mib,
    progress,
    settle,
    settle_before_write,
    size_label,
)
from bench.listing import KeyLayout, Seeder, measure_listing
from bench.raw_s3 import raw_get, raw_put
from bench.report import load_average, machine_description
from bench.request_rows import FULL_REQUESTS, QUICK_REQUESTS, measure_requests
from bench.s3_report import S3Ceilings, S3Figures, S3Plan, S3Results, chart_bars, render
from bench.s3_servers import (
    DISTRIBUTION_BUCKET,
    DISTRIBUTION_ROOT,
    OURS_BUCKET,
    OURS_PREFIX,
    PART_SIZE,
    RAW_BUCKET,
    run_distribution_s3,
    run_ours_s3,
    running_s3_servers,
    running_seaweedfs,
)
from bench.servers import DISTRIBUTION, OURS, BenchError, Server
from bench.transfer import Transfer, blob_url, get_file, push_monolithic
from testkit.process_tree import MiB, PeakRssSampler, tree_cpu_seconds
from testkit.seaweed import SeaweedFS, version

RAW = "raw S3"
WARM_UP_BLOB_SIZE = 20 * MiB  # two chunks: 16 MiB and 4 MiB
SMALL_CHUNK_SIZE = 1 * MiB
# Distribution's S3 driver re-uploads the whole upload so far for every chunk under 5 MiB:
# its time grows with the square of the size (5 s for 64 MiB here, minutes for 512 MiB).
SMALL_CHUNK_BLOB_SIZE = 64 * MiB
REDIRECT_STATUSES = (302, 307)


FULL = S3Plan(
    "full",
    rounds=5,
    blob_size=512 * MiB,
    rss_blob_size=2 * GiB,
    client_tries=3,
    catalog_counts=(1_000, 50_000),
    tag_counts=(1_000, 10_000, 100_000),
    distribution_tag_counts=(1_000, 10_000),
    distribution_rss=True,
    requests=FULL_REQUESTS,
)
QUICK = S3Plan(
    "quick",
    rounds=2,
    blob_size=512 * MiB,
    rss_blob_size=1 * GiB,
    client_tries=2,
    catalog_counts=(1_000, 5_000),
    tag_counts=(1_000, 10_000),
    distribution_tag_counts=(1_000, 10_000),
    distribution_rss=False,
    requests=QUICK_REQUESTS,
)


@dataclass(frozen=True)
class Target:
    """A registry under test: its redirect-off server and its redirect-on twin."""

    name: str
    server: Server
    redirect_server: Server


# -- timing helpers ----------------------------------------------------------------------------


def _timed(
    action: Callable[[], Transfer], client_pid: int | None, store_pid: int
) -> tuple[Transfer, float, float]:
    """The transfer, the CPU seconds of client_pid's tree (None: this process) and of the store."""

    def client_cpu() -> float:
        return time.process_time() if client_pid is None else tree_cpu_seconds(client_pid)

    client_before, store_before = client_cpu(), tree_cpu_seconds(store_pid)
    transfer = action()
    return transfer, client_cpu() - client_before, tree_cpu_seconds(store_pid) - store_before


# -- measurements ------------------------------------------------------------------------------


def measure_client_ceiling(plan: S3Plan, blob_dir: Path) -> S3Ceilings:
    blob = make_blob(blob_dir, plan.blob_size)
    try:
        settle()
        uploads, downloads = measure_client(blob, plan.client_tries)
        with TrivialServer(0) as sink:
            chunked = [chunk_ceiling(f"{sink.url}/sink", blob) for _ in range(plan.client_tries)]
    finally:
        blob.path.unlink()
    warnings = ceiling_warnings(uploads, downloads)
    chunked_speeds = [t.mib_per_second for t in chunked]
    if min(chunked_speeds) < 1.5e9 / MiB:
        warnings.append(
            f"the chunked-push client reaches only {min(chunked_speeds):.0f} MiB/s against a"
            " trivial server (< 1.5 GB/s): it may be the bottleneck"
        )
    return S3Ceilings(
        upload=[t.mib_per_second for t in uploads],
        download=[t.mib_per_second for t in downloads],
        chunked=chunked_speeds,
        warnings=warnings,
    )


def _status_without_following(url: str) -> int:
    with (
        httpx.Client(trust_env=False, timeout=30.0) as client,
        client.stream("GET", url) as response,
    ):
        return response.status_code


def warm_up(targets: list[Target], s3: Any, blob_dir: Path) -> None:
    """A small push (both kinds) and GETs everywhere; checks that exactly the twins redirect."""
    blob, chunked_blob = (
        make_blob(blob_dir, WARM_UP_BLOB_SIZE),
        make_blob(blob_dir, WARM_UP_BLOB_SIZE),
    )
    try:
        for target in targets:
            push_monolithic(target.server.url, blob)
            push_chunked(target.server.url, chunked_blob)
            for server, redirects in ((target.server, False), (target.redirect_server, True)):
                for digest in (blob.digest, chunked_blob.digest):
                    url = blob_url(server.url, digest)
                    status = _status_without_following(url)
                    if status not in (REDIRECT_STATUSES if redirects else (200,)):
                        raise BenchError(f"{server.name}: GET {url} answered {status}")
                    get_file(url, blob.size, follow_redirects=redirects)
        raw_put(s3, RAW_BUCKET, blob, PART_SIZE)
        raw_get(s3, RAW_BUCKET, blob)
    finally:
        blob.path.unlink()
        chunked_blob.path.unlink()


def measure_registry(
    target: Target,
    seaweed: SeaweedFS,
    blobs: tuple[Blob, Blob, Blob],
    figures: S3Figures,
) -> None:
    """Monolithic push, GETs, then chunked pushes of the other two blobs (16 and 1 MiB)."""
    blob, chunked_blob, small_chunked_blob = blobs
    url = target.server.url
    settle_before_write()
    push, push_cpu, push_store = _timed(
        lambda: push_monolithic(url, blob), target.server.pid, seaweed.pid
    )
    settle()
    get, get_cpu, _ = _timed(
        lambda: get_file(blob_url(url, blob.digest), blob.size), target.server.pid, seaweed.pid
    )
    redirect_url = blob_url(target.redirect_server.url, blob.digest)
    redirected = get_file(redirect_url, blob.size, follow_redirects=True)
    settle()  # only GETs since the pause before the push: nothing big was freed
    chunked, chunked_cpu, chunked_store = _timed(
        lambda: push_chunked(url, chunked_blob), target.server.pid, seaweed.pid
    )
    figures.push.append(push.mib_per_second)
    figures.push_cpu.append(push_cpu)
    figures.push_store_cpu.append(push_store)
    figures.get.append(get.mib_per_second)
    figures.get_cpu.append(get_cpu)
    figures.get_redirect.append(redirected.mib_per_second)
    figures.chunked.append(chunked.mib_per_second)
    figures.chunked_cpu.append(chunked_cpu)
    figures.chunked_store_cpu.append(chunked_store)
    settle_before_write()
    small_chunks = push_chunked(url, small_chunked_blob, SMALL_CHUNK_SIZE)
    figures.chunked_small.append(small_chunks.mib_per_second)
    progress(
        f"    {target.name:<12} push {push.mib_per_second:5.0f} MiB/s"
        f"  chunked {chunked.mib_per_second:5.0f} / {small_chunks.mib_per_second:5.0f}"
        f"  GET {get.mib_per_second:5.0f}"
        f"  redirected {redirected.mib_per_second:5.0f}"
        f"  (cpu push {push_cpu:.2f} s, SeaweedFS {push_store:.2f} s)"
    )


def measure_raw(seaweed: SeaweedFS, s3: Any, blob: Blob, figures: S3Figures) -> None:
    settle_before_write()
    put, put_cpu, put_store = _timed(
        lambda: raw_put(s3, RAW_BUCKET, blob, PART_SIZE), None, seaweed.pid
    )
    settle()
    get = raw_get(s3, RAW_BUCKET, blob)
    figures.push.append(put.mib_per_second)
    figures.push_cpu.append(put_cpu)
    figures.push_store_cpu.append(put_store)
    figures.get.append(get.mib_per_second)
    progress(
        f"    {RAW:<12} PUT  {put.mib_per_second:5.0f} MiB/s  GET {get.mib_per_second:5.0f}"
        f"  (cpu boto3 {put_cpu:.2f} s, SeaweedFS {put_store:.2f} s)"
    )


def clean_up_store(seaweed: SeaweedFS) -> None:
    """Empty the buckets and compact the volumes (SeaweedFS frees disk space only then)."""
    seaweed.empty_buckets()
    seaweed.vacuum()
    settle()


def run_rounds(
    plan: S3Plan,
    targets: list[Target],
    seaweed: SeaweedFS,
    s3: Any,
    blob_dir: Path,
    figures: dict[str, S3Figures],
) -> None:
    """Fresh blobs per round; who goes first (ours, Distribution, raw) rotates."""
    names = [*(target.name for target in targets), RAW]
    by_name = {target.name: target for target in targets}
    for index in range(plan.rounds):
        progress(f"  round {index + 1}/{plan.rounds}")
        blobs = (
            make_blob(blob_dir, plan.blob_size),
            make_blob(blob_dir, plan.blob_size),
            make_blob(blob_dir, SMALL_CHUNK_BLOB_SIZE),
        )
        try:
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                if name == RAW:
                    measure_raw(seaweed, s3, blobs[0], figures[RAW])
                else:
                    measure_registry(by_name[name], seaweed, blobs, figures[name])
        finally:
            for blob in blobs:
                blob.path.unlink()
        clean_up_store(seaweed)


def measure_peak_rss(
    plan: S3Plan, targets: list[Target], blob_dir: Path, figures: dict[str, S3Figures]
) -> None:
    measured = targets if plan.distribution_rss else [t for t in targets if t.name == OURS]
    blob = make_blob(blob_dir, plan.rss_blob_size)
    try:
        for target in measured:
            settle_before_write()
            with PeakRssSampler(target.server.pid) as sampler:
                push = push_monolithic(target.server.url, blob)
            figures[target.name].peak_rss.append(sampler.peak / MiB)
            figures[target.name].big_push.append(push.mib_per_second)
            progress(
                f"    {target.name:<12} peak RSS {sampler.peak / MiB:6.1f} MiB over "
                f"{sampler.samples} samples, push {push.mib_per_second:.0f} MiB/s"
            )
    finally:
        blob.path.unlink()


# -- orchestration -----------------------------------------------------------------------------


def check_disk_space(plan: S3Plan, workdir: Path) -> None:
    """Two local blobs and the big one; one round in SeaweedFS (about 11 blob sizes written,
    some twice: Distribution copies each blob into place) plus the big pushes."""
    needed = 13 * plan.blob_size + 6 * plan.rss_blob_size
    free = shutil.disk_usage(workdir).free
    if free < needed * 1.2:
        raise BenchError(f"{workdir}: {free / GiB:.1f} GiB free, about {needed / GiB:.1f} needed")


def measure_all(plan: S3Plan, workdir: Path) -> S3Results:
    blob_dir = workdir / "blobs"
    blob_dir.mkdir()
    progress("client ceiling: curl and the chunked-push client against a trivial server")
    results = S3Results(
        {name: S3Figures() for name in (OURS, DISTRIBUTION, RAW)},
        measure_client_ceiling(plan, blob_dir),
    )
    progress("starting SeaweedFS and four registry servers")
    with (
        running_seaweedfs(workdir) as seaweed,
        running_s3_servers(workdir, seaweed) as servers,
        seaweed.client(timeout=300) as s3,
    ):
        targets = [
            Target(OURS, servers.ours, servers.ours_redirect),
            Target(DISTRIBUTION, servers.distribution, servers.distribution_redirect),
        ]
        figures = results.figures
        warm_up(targets, s3, blob_dir)
        clean_up_store(seaweed)
        for target in targets:
            figures[target.name].idle_rss_start.append(idle_rss_mib(target.server))
        progress(
            f"monolithic and chunked push, GET of {size_label(plan.blob_size)},"
            f" {plan.rounds} rounds"
        )
        run_rounds(plan, targets, seaweed, s3, blob_dir, figures)
        progress(f"peak RSS while pushing {size_label(plan.rss_blob_size)}")
        measure_peak_rss(plan, targets, blob_dir, figures)
        clean_up_store(seaweed)
        progress("tag and catalog pages")
        layouts = {
            OURS: KeyLayout(OURS_BUCKET, OURS_PREFIX + "/", distribution=False),
            DISTRIBUTION: KeyLayout(DISTRIBUTION_BUCKET, DISTRIBUTION_ROOT, distribution=True),
        }
        seeder = Seeder(seaweed.endpoint_url)
        try:
            results.listing = measure_listing(
                plan.listing, targets[0].server, targets[1].server, seeder, layouts
            )
        finally:
            seeder.close()
        progress("request rows")
        results.requests = measure_requests(
            plan.requests,
            [target.server for target in targets],
            workdir,
            {
                OURS: lambda directory: run_ours_s3(directory, seaweed, redirect=False),
                DISTRIBUTION: lambda directory: run_distribution_s3(directory, seaweed, False),
            },
        )
    return results


def plan_for(quick: bool, rounds: int | None) -> S3Plan:
    plan = QUICK if quick else FULL
    return plan if rounds is None else dataclasses.replace(plan, rounds=rounds)


def run(quick: bool, rounds: int | None, workdir: Path, info: RunInfo) -> ModeResult:
    """Measure everything in workdir: the Markdown section, chart bars, and whether our RSS
    stayed in limit."""
    plan = plan_for(quick, rounds)
    check_disk_space(plan, workdir)
    info.machine = machine_description(
        workdir, info.distribution_version, "Disk (SeaweedFS data and the blob files)"
    )
    info.machine.append(("SeaweedFS", f"{version()} (`weed server`, one process)"))
    results = measure_all(plan, workdir)
    info.finish(load_average())
    return ModeResult(
        render(plan, results, info),
        max(results.figures[OURS].peak_rss, default=0.0) < RSS_LIMIT_MIB,
        chart_bars(plan, results),
    )
