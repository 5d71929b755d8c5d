"""Tag and catalog pages: seed many small objects into each registry's storage, then time pages.

Seeding writes the objects each registry would have written straight into its storage: on S3
with unsigned PUTs from a thread pool (SeaweedFS without configured identities accepts them;
boto3's signing would make seeding 100k objects take minutes), on the filesystem as files
where each registry's driver keeps that key. Our keys come from
`registry.storage.layout` itself: a tag object holding a manifest digest, and an empty catalog
marker. Distribution 2.8: `repositories/<name>/_manifests/tags/<tag>/current/link` holding
the digest, and a repository counts in its catalog when it has a `_layers` directory.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.client
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx

from bench.charts import Bar
from bench.common import progress
from bench.report import summarize
from bench.servers import DISTRIBUTION, OURS, BenchError, Server
from registry.storage import layout

SEED_THREADS = 16
SEED_TIMEOUT_SECONDS = 30.0
PAGE_SIZE = 100
MAX_REPEATS = 20
MIN_REPEATS = 3
REPEAT_BUDGET_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 120.0
SEED_DIGEST = "sha256:" + hashlib.sha256(b"bench manifest").hexdigest()
CATALOG_REPOSITORY = "bench/repo-{:05d}"
TAG = "tag-{:06d}"


def tags_repository(count: int) -> str:
    return f"bench/tags-{count // 1000}k"


def tag_names(count: int) -> list[str]:
    return [TAG.format(i) for i in range(count)]


def catalog_names(start: int, stop: int) -> list[str]:
    return [CATALOG_REPOSITORY.format(i) for i in range(start, stop)]


@dataclass(frozen=True)
class KeyLayout:
    """Where a registry keeps a tag and a catalog entry in its bucket (root: a key prefix)."""

    bucket: str
    root: str
    distribution: bool

    def tag_object(self, repository: str, tag: str) -> tuple[str, bytes]:
        if self.distribution:
            key = f"repositories/{repository}/_manifests/tags/{tag}/current/link"
        else:
            key = layout.tag(repository, tag)
        return self.root + key, SEED_DIGEST.encode()

    def catalog_object(self, repository: str) -> tuple[str, bytes]:
        if self.distribution:
            encoded = SEED_DIGEST.split(":", 1)[1]
            key = f"repositories/{repository}/_layers/sha256/{encoded}/link"
            return self.root + key, SEED_DIGEST.encode()
        return self.root + layout.catalog_entry(repository), b""


class ObjectSeeder(Protocol):
    def put_all(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int: ...


class FileSeeder:
    """Files where a filesystem driver keeps each key; `bucket` names the storage root, and
    path_of maps it to a function from key to file path."""

    def __init__(self, path_of: dict[str, Callable[[str], Path]]) -> None:
        self.path_of = path_of

    def put_all(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
        made: set[Path] = set()
        count = 0
        for key, body in objects:
            path = self.path_of[bucket](key)
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(body)
            count += 1
        return count


class Seeder:
    """Unsigned PUTs to an S3 endpoint from SEED_THREADS threads, one connection each."""

    def __init__(self, endpoint_url: str) -> None:
        parts = urlsplit(endpoint_url)
        if parts.hostname is None or parts.port is None:
            raise BenchError(f"endpoint without host and port: {endpoint_url}")
        self.host, self.port = parts.hostname, parts.port
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=SEED_TIMEOUT_SECONDS
            )
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _put(self, bucket: str, key: str, body: bytes) -> None:
        connection = self._connection()
        try:
            connection.request("PUT", f"/{bucket}/{quote(key)}", body=body)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise BenchError(f"seeding PUT {bucket}/{key}: {exc}") from exc
        if response.status != 200:
            raise BenchError(f"seeding PUT {bucket}/{key}: status {response.status}")

    def put_all(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
        """PUT every (key, body); how many. Stops at the first failure."""
        items = list(objects)
        with concurrent.futures.ThreadPoolExecutor(SEED_THREADS) as pool:
            futures = [pool.submit(self._put, bucket, key, body) for key, body in items]
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return len(items)

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def seed_tags(seeder: ObjectSeeder, layout: KeyLayout, repository: str, count: int) -> None:
    objects = [layout.tag_object(repository, tag) for tag in tag_names(count)]
    objects.append(layout.catalog_object(repository))
    seeder.put_all(layout.bucket, objects)


def seed_catalog(seeder: ObjectSeeder, layout: KeyLayout, start: int, stop: int) -> None:
    seeder.put_all(layout.bucket, [layout.catalog_object(n) for n in catalog_names(start, stop)])


@dataclass(frozen=True)
class PageTiming:
    milliseconds: list[float]
    items: int  # entries in the page returned


@dataclass(frozen=True)
class ListingCounts:
    catalog_counts: tuple[int, ...]
    tag_counts: tuple[int, ...]
    distribution_tag_counts: tuple[int, ...]  # Distribution lists every tag: seeded fewer


@dataclass(frozen=True)
class ListingRow:
    label: str
    ours: PageTiming
    theirs: PageTiming | None


@dataclass
class ListingResults:
    rows: list[ListingRow] = field(default_factory=list)
    seeded_objects: int = 0
    seeding_seconds: float = 0.0

    def repeats(self) -> str:
        counts = [len(t.milliseconds) for r in self.rows for t in (r.ours, r.theirs) if t]
        return f"{min(counts, default=0)}-{max(counts, default=0)}"


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


def describe(timing: PageTiming) -> str:
    return f"{statistics.median(timing.milliseconds):.1f} ms ({timing.items} entries)"


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


def _page_summary(timing: PageTiming | None) -> str:
    if timing is None:
        return "-"
    middle = sorted(timing.milliseconds)[len(timing.milliseconds) // 2]
    return f"{middle:.1f} ms ({timing.items} entries)"


def measure_listing(
    counts: ListingCounts,
    ours: Server,
    theirs: Server,
    seeder: ObjectSeeder,
    layouts: dict[str, KeyLayout],
    pause_seconds: float = 0.0,
) -> ListingResults:
    """Seed catalog entries, then tags, at growing counts; time a page after each step,
    pause_seconds after the seeding."""
    results = ListingResults()
    rows = results.rows
    seeded = 0
    for count in counts.catalog_counts:
        started = time.perf_counter()
        for key_layout in layouts.values():
            seed_catalog(seeder, key_layout, seeded, count)
        results.seeded_objects += 2 * (count - seeded)
        results.seeding_seconds += time.perf_counter() - started
        time.sleep(pause_seconds)
        seeded = count
        path = f"/v2/_catalog?n={PAGE_SIZE}"
        rows.append(
            _time_pages(
                f"catalog, {count:,} repositories, first page",
                path,
                "repositories",
                ours,
                theirs,
            )
        )
    middle = CATALOG_REPOSITORY.format(seeded // 2)
    rows.append(
        _time_pages(
            f"catalog, {seeded:,} repositories, page after the {seeded // 2:,}th",
            f"/v2/_catalog?n={PAGE_SIZE}&last={middle}",
            "repositories",
            ours,
            theirs,
        )
    )
    for count in counts.tag_counts:
        repository = tags_repository(count)
        with_theirs = count in counts.distribution_tag_counts
        started = time.perf_counter()
        seed_tags(seeder, layouts[OURS], repository, count)
        if with_theirs:
            seed_tags(seeder, layouts[DISTRIBUTION], repository, count)
        results.seeded_objects += (count + 1) * (2 if with_theirs else 1)
        results.seeding_seconds += time.perf_counter() - started
        time.sleep(pause_seconds)
        other = theirs if with_theirs else None
        path = f"/v2/{repository}/tags/list?n={PAGE_SIZE}"
        rows.append(
            _time_pages(f"tags/list, {count:,} tags, first page", path, "tags", ours, other)
        )
        if count == max(counts.tag_counts):
            rows.append(
                _time_pages(
                    f"tags/list, {count:,} tags, page after the {count // 2:,}th",
                    f"{path}&last={TAG.format(count // 2)}",
                    "tags",
                    ours,
                    other,
                )
            )
    return results


def _page_cell(timing: PageTiming | None) -> str:
    if timing is None:
        return "-"
    cell = summarize(timing.milliseconds, 1)
    return cell if timing.items == PAGE_SIZE else f"{cell} [{timing.items:,} entries]"


def _speedup(row: ListingRow) -> str:
    if row.theirs is None or not row.ours.milliseconds:
        return "-"
    ours = statistics.median(row.ours.milliseconds)
    return f"{statistics.median(row.theirs.milliseconds) / ours:.2f}" if ours else "-"


def listing_table(rows: list[ListingRow], their_name: str) -> str:
    lines = [
        f"| GET, n={PAGE_SIZE} (ms) | ours | {their_name} | speed-up (> 1: ours better) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {_page_cell(row.ours)} | {_page_cell(row.theirs)} | {_speedup(row)} |"
        )
    return "\n".join(lines)


def distribution_lists_every_tag(results: ListingResults) -> list[ListingRow]:
    """Rows where Distribution returned more than a page of tags (it ignores n)."""
    return [
        row
        for row in results.rows
        if row.theirs is not None and "tags" in row.label and row.theirs.items > PAGE_SIZE
    ]


def listing_notes(results: ListingResults, counts: ListingCounts) -> list[str]:
    notes = []
    all_tags = distribution_lists_every_tag(results)
    if all_tags:
        entries = ", ".join(f"{row.theirs.items:,}" for row in all_tags if row.theirs)
        note = (
            f"- Distribution ignores n on tags/list: it returned every tag ({entries} entries),"
            " so its time grows with the tag count"
        )
        largest = max(counts.tag_counts)
        if largest not in counts.distribution_tag_counts:
            note += f"; it is not seeded with {largest:,} tags"
        notes.append(note + ".")
    return notes


def listing_bars(results: ListingResults) -> list[Bar]:
    bars = []
    for row in results.rows:
        if row.theirs is not None and row.ours.milliseconds:
            ours = statistics.median(row.ours.milliseconds)
            bars.append(Bar(row.label, statistics.median(row.theirs.milliseconds) / ours))
    return bars
