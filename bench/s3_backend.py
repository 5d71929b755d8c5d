"""S3: both registries on one SeaweedFS started for the run, next to the bucket's raw speed
(boto3 multipart PUT, curl on a presigned URL), each registry also with a twin that answers
blob GETs with a redirect. Buckets are emptied and volumes compacted between rounds; listings
are seeded with unsigned PUTs straight into the buckets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from bench.backend import Stand
from bench.common import MiB, progress, settle, size_label
from bench.doc import S3_MARKERS
from bench.figures import Figures, Results
from bench.listing import MAX_REPEATS, REPEAT_BUDGET_SECONDS, ListingCounts, ListingSetup
from bench.plan import CHUNK_SIZE, SMALL_CHUNK_SIZE, Plan, plan_for
from bench.raw_s3 import RAW_CONCURRENCY, RawS3
from bench.s3_servers import (
    DISTRIBUTION_BUCKET,
    DISTRIBUTION_ROOT,
    OURS_BUCKET,
    OURS_PREFIX,
    PART_SIZE,
    RAW_BUCKET,
    run_distribution_s3,
    run_ours_s3,
    running_s3_targets,
    running_seaweedfs,
)
from bench.seeding import SEED_THREADS, HttpSeeder, KeyLayout
from bench.servers import DISTRIBUTION, OURS, BenchError
from bench.tables import BaselineColumn, Row
from bench.transfer_rows import chunked_rows, memory_rows, monolithic_row
from testkit.seaweed import SeaweedFS, version

# Distribution's S3 driver re-uploads the whole upload so far for every chunk under 5 MiB:
# its time grows with the square of the size (5 s for 64 MiB here, minutes for 512 MiB).
SMALL_CHUNK_BLOB_SIZE = 64 * MiB
S3_MIN_PART_SIZE = 5 * MiB
FULL_LISTING = ListingCounts((1_000, 50_000), (1_000, 10_000, 100_000), (1_000, 10_000))
QUICK_LISTING = ListingCounts((1_000, 5_000), (1_000, 10_000), (1_000, 10_000))
STORE_TIMEOUT_SECONDS = 300


def clean_up_store(seaweed: SeaweedFS) -> None:
    """Empty the buckets and compact the volumes (SeaweedFS frees disk space only then)."""
    try:
        seaweed.empty_buckets()
        seaweed.vacuum()
    except OSError as exc:
        raise BenchError(f"SeaweedFS clean-up failed: {exc}") from exc
    settle()


class S3Bench:
    name = "s3"
    markers = S3_MARKERS
    title = "S3 results"
    machine_heading = "Machine (S3 run)"
    disk_label = "Disk (SeaweedFS data and the blob files)"
    baseline_column: BaselineColumn | None = BaselineColumn(RawS3.name, "raw")
    idle_rss_after_run = False
    requests_caption = "; on S3, every manifest GET and small push makes requests to SeaweedFS"

    def plan(self, quick: bool, rounds: int | None) -> Plan:
        # Distribution's peak RSS only in full mode: its 1 GiB push takes long on S3.
        return plan_for(
            quick, rounds, QUICK_LISTING if quick else FULL_LISTING, distribution_rss=not quick
        )

    def chunked_blob_sizes(self, plan: Plan) -> dict[int, int]:
        return {
            chunk: SMALL_CHUNK_BLOB_SIZE if chunk < S3_MIN_PART_SIZE else plan.blob_size
            for chunk in (CHUNK_SIZE, SMALL_CHUNK_SIZE)
        }

    def disk_needed(self, plan: Plan) -> int:
        """Two local blobs and the big one; one round in SeaweedFS (about 11 blob sizes
        written, some twice: Distribution copies each blob into place) plus the big pushes."""
        return 13 * plan.blob_size + 6 * plan.rss_blob_size

    def machine_rows(self) -> list[tuple[str, str]]:
        return [("SeaweedFS", f"{version()} (`weed server`, one process)")]

    @contextlib.contextmanager
    def start(self, workdir: Path) -> Iterator[Stand]:
        progress("starting SeaweedFS and four registry servers")
        with (
            running_seaweedfs(workdir) as seaweed,
            running_s3_targets(workdir, seaweed) as targets,
            seaweed.client(timeout=STORE_TIMEOUT_SECONDS) as s3,
            contextlib.closing(HttpSeeder(seaweed.endpoint_url)) as seeder,
        ):
            listing = ListingSetup(
                seeder,
                {
                    OURS: KeyLayout(OURS_BUCKET, OURS_PREFIX + "/", distribution=False),
                    DISTRIBUTION: KeyLayout(DISTRIBUTION_BUCKET, DISTRIBUTION_ROOT, True),
                },
            )
            yield Stand(
                targets,
                RawS3(s3, RAW_BUCKET, PART_SIZE, seaweed.pid),
                listing,
                {
                    OURS: lambda directory: run_ours_s3(directory, seaweed, redirect=False),
                    DISTRIBUTION: lambda directory: run_distribution_s3(directory, seaweed, False),
                },
                store_pid=seaweed.pid,
                clean_up=lambda: clean_up_store(seaweed),
            )

    def transfer_rows(self, plan: Plan, figures: dict[str, Figures]) -> list[Row]:
        ours, theirs, raw = figures[OURS], figures[DISTRIBUTION], figures[RawS3.name]
        size = size_label(plan.blob_size)
        chunk = CHUNK_SIZE
        return [
            monolithic_row(plan, ours, theirs, raw),
            *chunked_rows(plan, self.chunked_blob_sizes(plan), ours, theirs, raw),
            Row(f"blob GET, proxied, {size} (MiB/s)", ours.get, theirs.get, raw.get),
            Row(
                f"blob GET, 307 redirect followed, {size} (MiB/s)",
                ours.get_redirect,
                theirs.get_redirect,
                raw.get,
            ),
            Row(
                "server CPU per monolithic push (s)",
                ours.push_cpu,
                theirs.push_cpu,
                raw.push_cpu,
                2,
            ),
            Row(
                "server CPU per chunked push (s)",
                ours.chunked_cpu.get(chunk, []),
                theirs.chunked_cpu.get(chunk, []),
                [],
                2,
            ),
            Row("server CPU per proxied GET (s)", ours.get_cpu, theirs.get_cpu, [], 2),
            Row(
                "SeaweedFS CPU per monolithic push (s)",
                ours.push_store_cpu,
                theirs.push_store_cpu,
                raw.push_store_cpu,
                2,
            ),
            Row(
                "SeaweedFS CPU per chunked push (s)",
                ours.chunked_store_cpu.get(chunk, []),
                theirs.chunked_store_cpu.get(chunk, []),
                [],
                2,
            ),
            *memory_rows(plan, ours, theirs, after_run=self.idle_rss_after_run),
        ]

    def transfer_caption(self, plan: Plan) -> str:
        small = size_label(SMALL_CHUNK_BLOB_SIZE)
        return (
            f" Raw S3: a boto3 multipart upload with {size_label(PART_SIZE)} parts,"
            f" {RAW_CONCURRENCY} in flight (its CPU is the boto3 client's), and curl on a"
            " presigned URL for both GET rows."
            f" The {size_label(SMALL_CHUNK_SIZE)}-PATCH row pushes {small}: Distribution's S3"
            " driver re-uploads the whole upload for every chunk under 5 MiB, so its time grows"
            f" with the square of the size (about 5 s for {small} here; minutes for"
            f" {size_label(plan.blob_size)})."
        )

    def notes(self, plan: Plan, results: Results) -> list[str]:
        listing = results.listing
        return [
            f"- Seeding: {listing.seeded_objects:,} small objects in"
            f" {listing.seeding_seconds:.0f} s ({SEED_THREADS} threads, unsigned PUTs"
            f" straight into the buckets). Page times: median (min-max) of {listing.repeats()}"
            f" GETs (up to {MAX_REPEATS}, fewer when they take over"
            f" {REPEAT_BUDGET_SECONDS:.0f} s)."
        ]
