"""Seed many small objects into each registry's storage, as that registry would have written
them, for the tag and catalog pages (`listing`).

On S3 with unsigned PUTs from a thread pool (SeaweedFS without configured identities accepts
them; boto3's signing would make seeding 100k objects take minutes), on the filesystem as
files where each registry's driver keeps that key. Our keys come from
`registry.storage.layout` itself: a tag object holding a manifest digest, and an empty catalog
marker. Distribution 2.8: `repositories/<name>/_manifests/tags/<tag>/current/link` holding
the digest, and a repository counts in its catalog when it has a `_layers` directory.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from bench.servers import BenchError
from registry.storage import layout
from testkit.oci import digest_of

SEED_THREADS = 16
SEED_TIMEOUT_SECONDS = 30.0
SEED_DIGEST = digest_of(b"bench manifest")
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


class HttpSeeder:
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


def seed_tags(seeder: ObjectSeeder, layout: KeyLayout, repository: str, count: int) -> int:
    """count tags in repository, and its catalog entry; how many objects."""
    objects = [layout.tag_object(repository, tag) for tag in tag_names(count)]
    objects.append(layout.catalog_object(repository))
    return seeder.put_all(layout.bucket, objects)


def seed_catalog(seeder: ObjectSeeder, layout: KeyLayout, start: int, stop: int) -> int:
    """Catalog entries of the repositories numbered start to stop; how many objects."""
    return seeder.put_all(
        layout.bucket, [layout.catalog_object(n) for n in catalog_names(start, stop)]
    )
