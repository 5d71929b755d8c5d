"""Local disk: both registries store in the run's temporary directory, next to a plain write
of the same size as the baseline; listings are seeded as files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.backend import RoundBlobs, Stand, Target
from bench.blobs import Blob, plain_write_seconds
from bench.common import MiB, progress, settle_before_write, size_label
from bench.doc import FILESYSTEM_MARKERS
from bench.figures import Figures, Results
from bench.launchers import run_distribution, run_ours
from bench.listing import ListingCounts, ListingSetup
from bench.plan import CHUNK_SIZE, SMALL_CHUNK_SIZE, Plan, plan_for
from bench.seeding import FileSeeder, KeyLayout
from bench.servers import DISTRIBUTION, OURS, Server
from bench.tables import BaselineColumn, Row, summarize
from bench.transfer_rows import chunked_rows, memory_rows, monolithic_row
from registry.storage.filesystem import LISTING_STABLE_SECONDS, FilesystemStorage
from testkit.registry import FILESYSTEM

OURS_DATA, DISTRIBUTION_ROOT = "ours", "distribution-storage"
DISTRIBUTION_KEY_ROOT = "docker/registry/v2/"  # below its rootdirectory
PLAIN_WRITE = "plain write"
# Our driver caches the sorted listing of a large directory once it has been unchanged for
# LISTING_STABLE_SECONDS: time the pages of listings that are not being changed.
LISTING_PAUSE_SECONDS = LISTING_STABLE_SECONDS + 0.5
FULL_LISTING = ListingCounts((1_000, 50_000), (1_000, 100_000, 1_000_000), (1_000, 100_000))
QUICK_LISTING = ListingCounts((1_000, 5_000), (1_000, 10_000), (1_000, 10_000))


def run_ours_fs(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    return run_ours(workdir, OURS, FILESYSTEM.environment(workdir / OURS_DATA))


def run_distribution_fs(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    root = workdir / DISTRIBUTION_ROOT
    root.mkdir()
    return run_distribution(workdir, DISTRIBUTION, ["  filesystem:", f"    rootdirectory: {root}"])


def file_listing(workdir: Path) -> ListingSetup:
    """Tag and catalog entries written as files where each registry's driver keeps them."""
    ours_storage = FilesystemStorage(FILESYSTEM.root(workdir / OURS_DATA))
    theirs_root = workdir / DISTRIBUTION_ROOT
    return ListingSetup(
        FileSeeder({OURS: ours_storage.path_of, DISTRIBUTION: lambda key: theirs_root / key}),
        {
            OURS: KeyLayout(OURS, "", distribution=False),
            DISTRIBUTION: KeyLayout(DISTRIBUTION, DISTRIBUTION_KEY_ROOT, distribution=True),
        },
        LISTING_PAUSE_SECONDS,
    )


@dataclass(frozen=True)
class PlainWrite:
    """This process writing as many bytes to a new file on the same disk (1 MiB writes)."""

    name: str = PLAIN_WRITE

    def warm_up(self, blob: Blob) -> None:
        pass

    def measure(self, blobs: RoundBlobs, figures: Figures) -> None:
        size = blobs.monolithic.size
        settle_before_write()
        seconds = plain_write_seconds(blobs.monolithic.path.parent, size)
        figures.push.append(size / MiB / seconds)
        progress(f"    {self.name:<12} {figures.push[-1]:7.0f} MiB/s (baseline)")


class FilesystemBench:
    name = "filesystem"
    markers = FILESYSTEM_MARKERS
    title = "Results"
    machine_heading = "Machine"
    disk_label = "Disk (storage of both registries and the blob files)"
    baseline_column: BaselineColumn | None = None
    idle_rss_after_run = True
    requests_caption = ""

    def plan(self, quick: bool, rounds: int | None) -> Plan:
        return plan_for(quick, rounds, QUICK_LISTING if quick else FULL_LISTING)

    def chunked_blob_sizes(self, plan: Plan) -> dict[int, int]:
        return {CHUNK_SIZE: plan.blob_size, SMALL_CHUNK_SIZE: plan.blob_size}

    def disk_needed(self, plan: Plan) -> int:
        """Each round's three blobs, in the blob directory and in both registries (nothing
        is deleted from them), and the big push likewise."""
        copies = 3
        per_round = plan.blob_size * (1 + len(self.chunked_blob_sizes(plan))) * copies
        return (plan.rounds + 1) * per_round + plan.rss_blob_size * copies

    def machine_rows(self) -> list[tuple[str, str]]:
        return []

    @contextlib.contextmanager
    def start(self, workdir: Path) -> Iterator[Stand]:
        with run_ours_fs(workdir) as ours, run_distribution_fs(workdir) as theirs:
            yield Stand(
                [Target(OURS, ours), Target(DISTRIBUTION, theirs)],
                PlainWrite(),
                file_listing(workdir),
                {OURS: run_ours_fs, DISTRIBUTION: run_distribution_fs},
            )

    def transfer_rows(self, plan: Plan, figures: dict[str, Figures]) -> list[Row]:
        ours, theirs = figures[OURS], figures[DISTRIBUTION]
        size = size_label(plan.blob_size)
        return [
            monolithic_row(plan, ours, theirs, None),
            *chunked_rows(plan, self.chunked_blob_sizes(plan), ours, theirs, None),
            Row(f"blob GET, {size} (MiB/s)", ours.get, theirs.get),
            Row(f"server CPU per {size} push (s)", ours.push_cpu, theirs.push_cpu, [], 2),
            Row(f"server CPU per {size} GET (s)", ours.get_cpu, theirs.get_cpu, [], 2),
            *memory_rows(plan, ours, theirs, after_run=self.idle_rss_after_run),
        ]

    def transfer_caption(self, plan: Plan) -> str:
        return ""

    def notes(self, plan: Plan, results: Results) -> list[str]:
        listing = results.listing
        return [
            f"- Plain write baseline (this process writing {size_label(plan.blob_size)} to a"
            " new file on the same disk, once per round):"
            f" {summarize(results.figures[PLAIN_WRITE].push, 0)} MiB/s.",
            f"- Listings: {listing.seeded_objects:,} files seeded in"
            f" {listing.seeding_seconds:.0f} s; page times are the median (min-max) of"
            f" {listing.repeats()} GETs, starting {LISTING_PAUSE_SECONDS:.1f} s after"
            " the seeding: our driver caches a large directory's sorted listing once it has"
            f" been unchanged for {LISTING_STABLE_SECONDS:.0f} s, so the first GET (the max)"
            " scans the directory and the others page the cached listing.",
        ]
