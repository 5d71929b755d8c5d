"""Garbage collection (issue 12): ours (`python -m registry gc`) next to Distribution's
`docker-registry garbage-collect`, on content seeded straight into storage (`bench.gc_seed`).

    .venv/bin/python -m bench.run --gc [--quick] [--storage filesystem|s3|both]

Filesystem rows, in this order:
(b) both collectors on the same content in their own layouts (100k blobs; 2k in quick mode),
    alternating, the garbage seeded again before each round; both layouts are first checked
    through their servers;
(d) manifest and blob GETs against our server on that seed, with and without a collection
    running (`bench.gc_traffic`);
(e) blob HEAD, blob mount and manifest PUT rates of our server with the collector's protocol
    (this checkout) and without it (the commit before it) (`bench.gc_traffic`);
(a) our collection of the large seed (1M blobs; 5k in quick mode): wall time and the
    collector's peak RSS (budget 300 MiB).
S3 rows (c): both collectors on one SeaweedFS (100k blobs), seeded with unsigned PUTs.

Every collection must delete exactly the seeded garbage, or the run fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import GiB, progress, settle
from bench.gc_meters import (
    distribution_gc_command,
    distribution_summary,
    ours_gc_command,
    ours_gc_environment,
    ours_summary,
    run_measured,
)
from bench.gc_seed import (
    DISTRIBUTION_KEY_ROOT,
    Image,
    Scale,
    garbage_count,
    layout_objects,
    repository_images,
    seed_files_parallel,
)
from bench.launchers import distribution_config, run_distribution, run_ours
from bench.machine import PROJECT_ROOT
from bench.s3_servers import (
    DISTRIBUTION_BUCKET,
    OURS_BUCKET,
    OURS_PREFIX,
    distribution_s3_storage,
    running_seaweedfs,
)
from bench.seeding import HttpSeeder
from bench.servers import DISTRIBUTION, OURS, BenchError, base_environment
from testkit.oci import OCI_MANIFEST
from testkit.ports import free_port
from testkit.registry import S3Backend, s3_environment
from testkit.seaweed import SeaweedFS

SEED = 12
RSS_BUDGET_MIB = 300.0
BEFORE_GC_COMMIT = "ce82af8"  # the code before the collector: row (e)'s baseline
LARGE_ROOT, SIDE_ROOT, DISTRIBUTION_ROOT = "large", "side-ours", "side-distribution"


@dataclass(frozen=True)
class GcPlan:
    mode: str
    large: Scale  # row (a)
    side: Scale  # rows (b), (c), (d) and (e)
    rounds: int  # collections of each in (b) and (c); rounds of (e)
    read_rounds: int  # (d): collections under load
    window_seconds: int  # (d): one wrk window
    baseline_windows: int  # (d): windows without a collection, per round
    max_windows: int  # (d): windows with one, at most, per round
    read_targets: int  # (d): distinct manifests, and blobs, the GETs walk
    read_connections: int  # (d): per wrk process (one for manifests, one for blobs)
    protocol_seconds: float  # (e): at most, per server, kind and round
    heads: int  # (e): at most, per server and round
    mounts: int
    puts: int
    connections: int  # (e)
    gc_timeout: float  # seconds, any one collection
    disk_needed: int  # bytes free before the run


FULL_PLAN = GcPlan(
    "full",
    large=Scale(10_000),
    side=Scale(1_000),
    rounds=3,
    read_rounds=2,
    window_seconds=2,
    baseline_windows=10,
    max_windows=300,
    read_targets=1_000,
    read_connections=4,
    protocol_seconds=20.0,
    heads=20_000,
    mounts=2_000,
    puts=1_000,
    connections=8,
    gc_timeout=3_600.0,
    disk_needed=12 * GiB,
)
QUICK_PLAN = GcPlan(
    "quick",
    large=Scale(50),
    side=Scale(20),
    rounds=1,
    read_rounds=1,
    window_seconds=1,
    baseline_windows=1,
    max_windows=10,
    read_targets=200,
    read_connections=2,
    protocol_seconds=5.0,
    heads=1_000,
    mounts=100,
    puts=50,
    connections=8,
    gc_timeout=300.0,
    disk_needed=1 * GiB,
)


def plan_for(quick: bool, rounds: int | None) -> GcPlan:
    plan = QUICK_PLAN if quick else FULL_PLAN
    return plan if rounds is None else dataclasses.replace(plan, rounds=rounds)


@dataclass(frozen=True)
class GcRun:
    """One collection: wall time (Popen to exit), the collector's peak RSS, what it deleted."""

    seconds: float
    peak_rss_mib: float
    blobs_deleted: int
    expected: int  # the garbage seeded
    summary: dict[str, Any]  # ours: its JSON line; Distribution: its count line


@dataclass(frozen=True)
class Seeding:
    label: str
    objects: int
    seconds: float


@dataclass
class ReadRound:
    """(d): requests/s of each wrk window, without and with a collection running."""

    manifest_alone: list[float] = field(default_factory=list)
    blob_alone: list[float] = field(default_factory=list)
    manifest_during: list[float] = field(default_factory=list)
    blob_during: list[float] = field(default_factory=list)
    windows_past_gc: int = 0  # windows that ended after the collection (not counted)
    collection: GcRun | None = None


@dataclass
class GcResults:
    plan: GcPlan
    seeding: list[Seeding] = field(default_factory=list)
    large: list[GcRun] = field(default_factory=list)  # (a)
    side: dict[str, list[GcRun]] = field(default_factory=dict)  # (b)
    reads: list[ReadRound] = field(default_factory=list)  # (d)
    protocol: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # (e)
    s3: dict[str, list[GcRun]] = field(default_factory=dict)  # (c)
    s3_seeding: list[Seeding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # rows that could not be measured
    checkpoint: Path | None = None  # where the results so far are written after each row
    validated: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- seeding --------------------------------------------------------------------------------------


def seed_root(
    results: GcResults, root: Path, scale: Scale, distribution: bool, garbage_only: bool = False
) -> None:
    """Seed one layout as files (in two processes), then flush it to disk (not timed)."""
    what = "Distribution" if distribution else "ours"
    label = f"{what}, {'garbage of ' if garbage_only else ''}{scale.short()}, files"
    started = time.perf_counter()
    objects = seed_files_parallel(root, scale, SEED, distribution, garbage_only)
    seconds = time.perf_counter() - started
    if results.plan.mode == "full":
        settle()  # no writeback of the seed during the timed steps (quick mode: not worth it)
    results.seeding.append(Seeding(label, objects, seconds))
    progress(f"  seeded {label}: {objects:,} in {seconds:.1f} s ({objects / seconds:,.0f}/s)")


def kept_images(scale: Scale, count: int) -> list[Image]:
    """`count` tagged images spread over the repositories (the first of each, then the
    second, ...)."""
    per_repository = scale.images - scale.garbage_images
    chosen: list[Image] = []
    step = max(1, scale.repositories // max(1, count))
    for index in range(per_repository):
        for number in range(0, scale.repositories, step):
            if len(chosen) == count:
                return chosen
            chosen.append(repository_images(scale, SEED, number)[index])
    return chosen


def garbage_image(scale: Scale) -> Image:
    return repository_images(scale, SEED, 0)[-1]


# -- collections ----------------------------------------------------------------------------------


def ours_gc(
    results: GcResults,
    name: str,
    storage_env: dict[str, str],
    log_dir: Path,
    expected: int,
) -> GcRun:
    env = ours_gc_environment(base_environment(), storage_env)
    finished = run_measured(
        name, ours_gc_command(), env, PROJECT_ROOT, log_dir, results.plan.gc_timeout
    )
    return checked_ours_run(
        name, finished.seconds, finished.peak_rss_mib, finished.stdout_path, expected
    )


def checked_ours_run(
    name: str, seconds: float, peak_rss_mib: float, stdout_path: Path, expected: int
) -> GcRun:
    summary = ours_summary(stdout_path)
    if summary["dry_run"] is not False or summary["blobs_deleted"] != expected:
        raise BenchError(
            f"{name}: deleted {summary['blobs_deleted']} blobs, {expected} garbage were seeded"
            f" (summary {summary})"
        )
    progress(
        f"    {name}: {seconds:.2f} s, peak RSS {peak_rss_mib:.0f} MiB,"
        f" {summary['blobs_deleted']:,} blobs deleted"
    )
    return GcRun(seconds, peak_rss_mib, summary["blobs_deleted"], expected, summary)


def distribution_gc(
    results: GcResults, name: str, config: Path, log_dir: Path, expected: int
) -> GcRun:
    finished = run_measured(
        name,
        distribution_gc_command(config),
        base_environment(),
        PROJECT_ROOT,
        log_dir,
        results.plan.gc_timeout,
    )
    counts = distribution_summary(finished.stdout_path)
    finished.stdout_path.unlink()  # a line for every blob: megabytes
    if counts.blobs_deleted != expected:
        raise BenchError(
            f"{name}: {counts.blobs_deleted} blobs eligible for deletion, {expected} expected"
        )
    progress(
        f"    {name}: {finished.seconds:.2f} s, peak RSS {finished.peak_rss_mib:.0f} MiB,"
        f" {counts.blobs_deleted:,} blobs deleted"
    )
    return GcRun(
        finished.seconds,
        finished.peak_rss_mib,
        counts.blobs_deleted,
        expected,
        dataclasses.asdict(counts),
    )


def write_distribution_config(path: Path, storage_lines: list[str]) -> Path:
    path.write_text(distribution_config(storage_lines, free_port()))
    return path


# -- checking the seeded layouts through their servers -------------------------------------------


def check_served(base_url: str, kept: Image, garbage: Image, garbage_present: bool) -> None:
    """A kept image's manifest by tag and one of its blobs come back byte for byte; a garbage
    blob is there before a collection and gone after it."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30.0) as client:
        answer = client.get(
            f"/v2/{kept.repository}/manifests/{kept.tag}", headers={"Accept": OCI_MANIFEST}
        )
        if answer.status_code != 200 or answer.content != kept.manifest:
            raise BenchError(f"{base_url}: manifest {kept.repository}:{kept.tag} not served")
        if answer.headers.get("docker-content-digest") != kept.manifest_digest:
            raise BenchError(f"{base_url}: wrong Docker-Content-Digest for {kept.repository}")
        hex_digest, content = kept.blobs[-1]
        answer = client.get(f"/v2/{kept.repository}/blobs/sha256:{hex_digest}")
        if answer.status_code != 200 or answer.content != content:
            raise BenchError(f"{base_url}: blob of {kept.repository} not served")
        gone = client.get(f"/v2/{garbage.repository}/blobs/sha256:{garbage.blobs[-1][0]}")
        if gone.status_code != (200 if garbage_present else 404):
            raise BenchError(
                f"{base_url}: garbage blob answered {gone.status_code}"
                f" {'before' if garbage_present else 'after'} the collection"
            )


@contextlib.contextmanager
def both_servers(workdir: Path, ours_root: Path, theirs_root: Path) -> Iterator[tuple[str, str]]:
    with (
        run_ours(workdir, OURS, root_env(ours_root)) as ours,
        run_distribution(workdir, DISTRIBUTION, filesystem_lines(theirs_root)) as theirs,
    ):
        yield ours.url, theirs.url


def root_env(root: Path) -> dict[str, str]:
    return {"REGISTRY_STORAGE_FILESYSTEM_ROOT": str(root)}


def filesystem_lines(root: Path) -> list[str]:
    return ["  filesystem:", f"    rootdirectory: {root}"]


# -- the filesystem rows ------------------------------------------------------------------------


def large_collection(results: GcResults, workdir: Path) -> Path:
    """(a): seed the large root, collect it once; the root (garbage gone)."""
    scale = results.plan.large
    progress(f"(a) our collection of {scale.describe()} (the longest step)")
    root = workdir / LARGE_ROOT
    seed_root(results, root, scale, distribution=False)
    results.large.append(
        ours_gc(results, "ours gc, large", root_env(root), workdir, scale.garbage_blobs)
    )
    return root


def side_by_side(results: GcResults, workdir: Path) -> Path:
    """(b): both collectors on the same content, alternating, garbage seeded again before
    every round after the first; both layouts checked through their servers first and after
    the first collections."""
    scale = results.plan.side
    progress(f"(b) side by side: {scale.describe()}")
    ours_root, theirs_root = workdir / SIDE_ROOT, workdir / DISTRIBUTION_ROOT
    seed_root(results, ours_root, scale, distribution=False)
    seed_root(results, theirs_root, scale, distribution=True)
    config = write_distribution_config(
        workdir / "distribution-gc.yml", filesystem_lines(theirs_root)
    )
    kept, garbage = kept_images(scale, 1)[0], garbage_image(scale)
    with both_servers(workdir, ours_root, theirs_root) as urls:
        for url in urls:
            check_served(url, kept, garbage, garbage_present=True)
    results.validated.append(
        f"before: both servers returned {kept.repository}:{kept.tag} and its blob byte for"
        " byte, and a garbage blob"
    )
    runs: dict[str, list[GcRun]] = {OURS: [], DISTRIBUTION: []}
    collect: dict[str, Callable[[int], GcRun]] = {
        OURS: lambda n: ours_gc(
            results, f"ours gc, side {n}", root_env(ours_root), workdir, scale.garbage_blobs
        ),
        DISTRIBUTION: lambda n: distribution_gc(
            results, f"distribution gc, side {n}", config, workdir, garbage_count(scale, True)
        ),
    }
    for index in range(results.plan.rounds):
        if index > 0:
            seed_root(results, ours_root, scale, distribution=False, garbage_only=True)
            seed_root(results, theirs_root, scale, distribution=True, garbage_only=True)
        order = [OURS, DISTRIBUTION] if index % 2 == 0 else [DISTRIBUTION, OURS]
        for name in order:
            runs[name].append(collect[name](index))
        if index == 0:
            with both_servers(workdir, ours_root, theirs_root) as urls:
                for url in urls:
                    check_served(url, kept, garbage, garbage_present=False)
            results.validated.append(
                "after: both still returned them, and answered 404 for the garbage blob"
            )
    results.side = runs
    return ours_root


# -- S3 ------------------------------------------------------------------------------------------


def seed_bucket(
    results: GcResults,
    seeder: HttpSeeder,
    bucket: str,
    root: str,
    distribution: bool,
    garbage_only: bool = False,
) -> None:
    scale = results.plan.side
    what = "Distribution" if distribution else "ours"
    label = f"{what}, {'garbage of ' if garbage_only else ''}{scale.short()}, S3 objects"
    started = time.perf_counter()
    objects = (
        (root + key, body) for key, body in layout_objects(scale, SEED, distribution, garbage_only)
    )
    count = seeder.put_all(bucket, objects)
    seconds = time.perf_counter() - started
    results.s3_seeding.append(Seeding(label, count, seconds))
    progress(f"  seeded {label}: {count:,} in {seconds:.1f} s ({count / seconds:,.0f}/s)")


def s3_collections(results: GcResults, workdir: Path) -> None:
    """(c): both collectors on one SeaweedFS, alternating; Distribution's failure is noted,
    not fatal."""
    scale = results.plan.side
    progress(f"(c) S3: {scale.describe()}")
    with running_seaweedfs(workdir) as seaweed:
        seeder = HttpSeeder(seaweed.endpoint_url)
        try:
            _s3_rounds(results, workdir, seaweed, seeder, scale)
        finally:
            seeder.close()


def _s3_rounds(
    results: GcResults, workdir: Path, seaweed: SeaweedFS, seeder: HttpSeeder, scale: Scale
) -> None:
    ours_root = OURS_PREFIX + "/"
    seed_bucket(results, seeder, OURS_BUCKET, ours_root, distribution=False)
    seed_bucket(results, seeder, DISTRIBUTION_BUCKET, DISTRIBUTION_KEY_ROOT, distribution=True)
    ours_env = s3_environment(S3Backend(seaweed, OURS_BUCKET).config(OURS_PREFIX))
    config = write_distribution_config(
        workdir / "distribution-gc-s3.yml", distribution_s3_storage(seaweed, redirect=False)
    )
    runs: dict[str, list[GcRun]] = {OURS: [], DISTRIBUTION: []}
    theirs_failed = False
    for index in range(results.plan.rounds):
        if index > 0:
            seed_bucket(results, seeder, OURS_BUCKET, ours_root, False, garbage_only=True)
            if not theirs_failed:
                seed_bucket(results, seeder, DISTRIBUTION_BUCKET, DISTRIBUTION_KEY_ROOT, True, True)
        order = [OURS, DISTRIBUTION] if index % 2 == 0 else [DISTRIBUTION, OURS]
        for name in order:
            if name == OURS:
                try:
                    runs[OURS].append(
                        ours_gc(
                            results, f"ours gc, s3 {index}", ours_env, workdir, scale.garbage_blobs
                        )
                    )
                except BenchError as exc:  # noted; Distribution's collection still runs
                    lines = [line for line in str(exc).splitlines() if line.strip()]
                    results.failures.append(f"(c) ours failed: {lines[0]} ... {lines[-1]}")
                    progress(f"    our collector failed: {exc}")
            elif not theirs_failed:
                try:
                    runs[DISTRIBUTION].append(
                        distribution_gc(
                            results,
                            f"distribution gc, s3 {index}",
                            config,
                            workdir,
                            garbage_count(scale, True),
                        )
                    )
                except BenchError as exc:
                    theirs_failed = True
                    first = str(exc).splitlines()[0]
                    results.notes.append(
                        f"Distribution's garbage-collect failed on SeaweedFS: {first}"
                    )
                    progress(f"    Distribution's collector failed: {exc}")
    results.s3 = runs
