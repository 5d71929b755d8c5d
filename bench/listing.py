"""Tag and catalog pages on S3: seed many small objects into the buckets, then time pages.

Seeding writes the objects each registry would have written, straight into its bucket,
with unsigned PUTs from a thread pool (SeaweedFS without configured identities accepts them;
boto3's signing would make seeding 100k objects take minutes). Our keys come from
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
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
import project_path  # noqa: F401  (makes `registry` importable)
from servers import BenchError

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


def seed_tags(seeder: Seeder, layout: KeyLayout, repository: str, count: int) -> None:
    objects = [layout.tag_object(repository, tag) for tag in tag_names(count)]
    objects.append(layout.catalog_object(repository))
    seeder.put_all(layout.bucket, objects)


def seed_catalog(seeder: Seeder, layout: KeyLayout, start: int, stop: int) -> None:
    seeder.put_all(layout.bucket, [layout.catalog_object(n) for n in catalog_names(start, stop)])


@dataclass(frozen=True)
class PageTiming:
    milliseconds: list[float]
    items: int  # entries in the page returned


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
