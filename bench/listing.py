"""Tag and catalog pages: time pages of growing listings seeded by `bench.seeding` in each
registry's storage; the listing table, its notes and chart bars."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bench.charts import Bar
from bench.common import progress
from bench.seeding import (
    CATALOG_REPOSITORY,
    TAG,
    KeyLayout,
    ObjectSeeder,
    seed_catalog,
    seed_tags,
    tags_repository,
)
from bench.servers import DISTRIBUTION, OURS, BenchError, Server
from bench.tables import summarize

PAGE_SIZE = 100
MAX_REPEATS = 20
MIN_REPEATS = 3
REPEAT_BUDGET_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class ListingCounts:
    catalog_counts: tuple[int, ...]
    tag_counts: tuple[int, ...]
    distribution_tag_counts: tuple[int, ...]  # Distribution lists every tag: seeded fewer


@dataclass(frozen=True)
class PageTiming:
    milliseconds: list[float]
    items: int  # entries in the page returned

    @property
    def median(self) -> float:
        return statistics.median(self.milliseconds)


@dataclass(frozen=True)
class ListingRow:
    label: str
    ours: PageTiming
    theirs: PageTiming | None

    def speedup(self) -> float | None:
        """Distribution's time / ours (above 1: ours faster); None without both."""
        if self.theirs is None or not self.ours.milliseconds or not self.ours.median:
            return None
        return self.theirs.median / self.ours.median


@dataclass
class ListingResults:
    rows: list[ListingRow] = field(default_factory=list)
    seeded_objects: int = 0
    seeding_seconds: float = 0.0

    def repeats(self) -> str:
        counts = [len(t.milliseconds) for r in self.rows for t in (r.ours, r.theirs) if t]
        return f"{min(counts, default=0)}-{max(counts, default=0)}"


@dataclass(frozen=True)
class ListingSetup:
    """How a storage seeds listings: its seeder, where each registry keeps its keys, and how
    long to wait after seeding before timing pages."""

    seeder: ObjectSeeder
    layouts: dict[str, KeyLayout]
    pause_seconds: float = 0.0


def time_page(base_url: str, path: str, field: str) -> PageTiming:
    """GET base_url+path repeatedly (MIN..MAX_REPEATS, within the time budget); times in ms."""
    times: list[float] = []
    items = 0
    deadline = time.monotonic() + REPEAT_BUDGET_SECONDS
    with httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        client.get(f"{base_url}/v2/")  # open the connection outside the timing
        for _ in range(MAX_REPEATS):
            if len(times) >= MIN_REPEATS and time.monotonic() > deadline:
                break
            started = time.perf_counter()
            response = client.get(f"{base_url}{path}")
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise BenchError(f"GET {path}: {response.status_code} {response.text[:200]}")
            items = len(response.json().get(field) or [])
            times.append(elapsed * 1000)
    return PageTiming(times, items)


def _page_summary(timing: PageTiming | None) -> str:
    return "-" if timing is None else f"{timing.median:.1f} ms ({timing.items} entries)"


def _time_pages(
    label: str, path: str, field_name: str, ours: Server, theirs: Server | None
) -> ListingRow:
    row = ListingRow(
        label,
        time_page(ours.url, path, field_name),
        None if theirs is None else time_page(theirs.url, path, field_name),
    )
    progress(f"    {label}: {_page_summary(row.ours)}; Distribution {_page_summary(row.theirs)}")
    return row


@dataclass(frozen=True)
class _ListingRun:
    """Seeds listings into both registries' storage step by step, and times pages."""

    counts: ListingCounts
    ours: Server
    theirs: Server
    setup: ListingSetup
    results: ListingResults

    def seed(self, steps: list[Callable[[], int]]) -> None:
        """Run the seeding steps (each returns how many objects it wrote), count their
        objects and their time; then the pause before pages are timed."""
        started = time.perf_counter()
        self.results.seeded_objects += sum(step() for step in steps)
        self.results.seeding_seconds += time.perf_counter() - started
        time.sleep(self.setup.pause_seconds)

    def time_pages(self, label: str, path: str, field_name: str, with_theirs: bool) -> None:
        theirs = self.theirs if with_theirs else None
        self.results.rows.append(_time_pages(label, path, field_name, self.ours, theirs))

    def catalog_rows(self) -> None:
        seeded = 0
        for count in self.counts.catalog_counts:
            self.seed(
                [
                    functools.partial(seed_catalog, self.setup.seeder, key_layout, seeded, count)
                    for key_layout in self.setup.layouts.values()
                ]
            )
            seeded = count
            label = f"catalog, {count:,} repositories, first page"
            self.time_pages(label, f"/v2/_catalog?n={PAGE_SIZE}", "repositories", True)
        middle = CATALOG_REPOSITORY.format(seeded // 2)
        label = f"catalog, {seeded:,} repositories, page after the {seeded // 2:,}th"
        path = f"/v2/_catalog?n={PAGE_SIZE}&last={middle}"
        self.time_pages(label, path, "repositories", True)

    def tag_rows(self) -> None:
        largest = max(self.counts.tag_counts)
        for count in self.counts.tag_counts:
            repository = tags_repository(count)
            with_theirs = count in self.counts.distribution_tag_counts
            seeded_in = [OURS, DISTRIBUTION] if with_theirs else [OURS]
            layouts, seeder = self.setup.layouts, self.setup.seeder
            self.seed(
                [
                    functools.partial(seed_tags, seeder, layouts[name], repository, count)
                    for name in seeded_in
                ]
            )
            path = f"/v2/{repository}/tags/list?n={PAGE_SIZE}"
            self.time_pages(f"tags/list, {count:,} tags, first page", path, "tags", with_theirs)
            if count == largest:
                label = f"tags/list, {count:,} tags, page after the {count // 2:,}th"
                path += f"&last={TAG.format(count // 2)}"
                self.time_pages(label, path, "tags", with_theirs)


def measure_listing(
    counts: ListingCounts, ours: Server, theirs: Server, setup: ListingSetup
) -> ListingResults:
    """Seed catalog entries, then tags, at growing counts; time a page after each step,
    setup.pause_seconds after the seeding."""
    run = _ListingRun(counts, ours, theirs, setup, ListingResults())
    run.catalog_rows()
    run.tag_rows()
    return run.results


def _page_cell(timing: PageTiming | None) -> str:
    if timing is None:
        return "-"
    cell = summarize(timing.milliseconds, 1)
    return cell if timing.items == PAGE_SIZE else f"{cell} [{timing.items:,} entries]"


def listing_table(rows: list[ListingRow], their_name: str) -> str:
    lines = [
        f"| GET, n={PAGE_SIZE} (ms) | ours | {their_name} | speed-up (> 1: ours better) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        speedup = row.speedup()
        shown = "-" if speedup is None else f"{speedup:.2f}"
        lines.append(
            f"| {row.label} | {_page_cell(row.ours)} | {_page_cell(row.theirs)} | {shown} |"
        )
    return "\n".join(lines)


def listing_notes(results: ListingResults, counts: ListingCounts) -> list[str]:
    """Where Distribution returned more than a page of tags (it ignores n)."""
    all_tags = [
        row.theirs.items
        for row in results.rows
        if row.theirs is not None and "tags" in row.label and row.theirs.items > PAGE_SIZE
    ]
    if not all_tags:
        return []
    entries = ", ".join(f"{items:,}" for items in all_tags)
    note = (
        f"- Distribution ignores n on tags/list: it returned every tag ({entries} entries),"
        " so its time grows with the tag count"
    )
    largest = max(counts.tag_counts)
    if largest not in counts.distribution_tag_counts:
        note += f"; it is not seeded with {largest:,} tags"
    return [note + "."]


def listing_bars(results: ListingResults) -> list[Bar]:
    return [
        Bar(row.label, speedup) for row in results.rows if (speedup := row.speedup()) is not None
    ]
