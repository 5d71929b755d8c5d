"""The namespaces mode of `bench.run` (`--namespaces`): what a quota and immutable tags add to
the two writes they guard, side by side with the same server without them and Distribution.

Three servers per storage, measured in alternating rounds: ours without namespaces, ours with
one namespace over the benchmark's repositories holding a quota (large enough never to refuse:
every new blob and manifest is charged, see docs/quotas.md) and immutable tags matching every
tag the rows push (each PUT is checked against the rule), and Distribution (which has neither).

Rows (median milliseconds per request, one keep-alive connection, one request at a time):
- manifest PUT: a fresh manifest of a 10-layer image under a new tag (`bench.manifests`);
- blob upload finish: the closing `PUT ?digest=` of an upload of a new 4 KiB blob (the POST
  that opens the upload is not timed).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import median, progress
from bench.filesystem_backend import run_distribution_fs
from bench.launchers import run_distribution, run_ours
from bench.machine import RunInfo, machine_description
from bench.manifests import client_for, manifest_put_milliseconds, push_image_blobs
from bench.s3_servers import OURS_BUCKET, distribution_s3_storage, running_seaweedfs
from bench.servers import DISTRIBUTION, BenchError, Server
from testkit.oci import digest_of
from testkit.registry import FILESYSTEM, S3Backend, s3_environment

PLAIN, GUARDED = "ours", "ours, quota + immutable tags"
SERVERS = (PLAIN, GUARDED, DISTRIBUTION)
REPOSITORY = "bench/manifest-put"  # bench.manifests pushes here; blobs go to the same one
BLOB_SIZE = 4 << 10
FULL_ROUNDS, QUICK_ROUNDS = 5, 2
FULL_COUNT, QUICK_COUNT = 100, 20  # requests per row, server and round
ROW_BUDGET_SECONDS = 60.0  # per row, server and round
NAMESPACES_CONFIG = """\
namespaces:
  - pattern: "bench/**"
    description: "benchmark: every write is charged and checked"
    quota: 1TiB
    immutable_tags: ["put-*"]
"""
MANIFEST_PUT, BLOB_FINISH = "manifest PUT (10 layers, new tag)", "blob upload finish (4 KiB)"
ROWS = (MANIFEST_PUT, BLOB_FINISH)


@dataclass
class NamespaceResults:
    storage: str
    rounds: int
    count: int
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, row: str, server: str, milliseconds: float) -> None:
        self.samples.setdefault((row, server), []).append(milliseconds)

    def value(self, row: str, server: str) -> float:
        return median(self.samples[(row, server)])


def blob_finish_milliseconds(base_url: str, count: int) -> float:
    """Median milliseconds of the closing PUT of `count` uploads of new blobs."""
    times: list[float] = []
    deadline = time.monotonic() + ROW_BUDGET_SECONDS
    with client_for(base_url) as client:
        for _ in range(count):
            if len(times) >= 5 and time.monotonic() > deadline:
                break
            data = os.urandom(BLOB_SIZE)
            opened = client.post(f"/v2/{REPOSITORY}/blobs/uploads/")
            if opened.status_code != 202:
                raise BenchError(f"POST upload: {opened.status_code} {opened.text[:200]}")
            location = opened.headers["location"]
            separator = "&" if "?" in location else "?"
            url = f"{location}{separator}digest={digest_of(data)}"
            started = time.perf_counter()
            response = client.put(url, content=data)
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise BenchError(f"blob PUT: {response.status_code} {response.text[:200]}")
            times.append(elapsed * 1000)
    return statistics.median(times)


Launcher = Callable[[Path], contextlib.AbstractContextManager[Server]]


def _namespaces_file(workdir: Path) -> Path:
    path = workdir / "namespaces.yml"
    path.write_text(NAMESPACES_CONFIG)
    return path


@contextlib.contextmanager
def _filesystem_servers(workdir: Path) -> Iterator[dict[str, Launcher]]:
    config = str(_namespaces_file(workdir))

    def ours(name: str, extra: dict[str, str]) -> Launcher:
        def launch(directory: Path) -> contextlib.AbstractContextManager[Server]:
            environment = FILESYSTEM.environment(directory / f"{name}-data")
            return run_ours(directory, name, {**environment, **extra})

        return launch

    yield {
        PLAIN: ours(PLAIN, {}),
        GUARDED: ours(GUARDED, {"REGISTRY_CONFIG": config}),
        DISTRIBUTION: run_distribution_fs,
    }


@contextlib.contextmanager
def _s3_servers(workdir: Path) -> Iterator[dict[str, Launcher]]:
    config = str(_namespaces_file(workdir))
    with running_seaweedfs(workdir) as seaweed:

        def ours(name: str, prefix: str, extra: dict[str, str]) -> Launcher:
            def launch(directory: Path) -> contextlib.AbstractContextManager[Server]:
                s3 = S3Backend(seaweed, OURS_BUCKET).config(prefix)
                return run_ours(directory, name, {**s3_environment(s3), **extra})

            return launch

        def distribution(directory: Path) -> contextlib.AbstractContextManager[Server]:
            return run_distribution(
                directory, DISTRIBUTION, distribution_s3_storage(seaweed, False)
            )

        yield {
            PLAIN: ours(PLAIN, "plain", {}),
            GUARDED: ours(GUARDED, "guarded", {"REGISTRY_CONFIG": config}),
            DISTRIBUTION: distribution,
        }


def _servers(storage: str, workdir: Path) -> contextlib.AbstractContextManager[dict[str, Launcher]]:
    return _s3_servers(workdir) if storage == "s3" else _filesystem_servers(workdir)


def measure(storage: str, quick: bool, rounds: int | None, workdir: Path) -> NamespaceResults:
    results = NamespaceResults(
        storage,
        rounds or (QUICK_ROUNDS if quick else FULL_ROUNDS),
        QUICK_COUNT if quick else FULL_COUNT,
    )
    with _servers(storage, workdir) as launchers, contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(launch(workdir)) for name, launch in launchers.items()}
        documents = {name: push_image_blobs(server.url) for name, server in servers.items()}
        for round_index in range(results.rounds):
            order = SERVERS if round_index % 2 == 0 else tuple(reversed(SERVERS))
            for name in order:
                progress(f"{storage} round {round_index + 1}/{results.rounds}: {name}")
                url = servers[name].url
                put = manifest_put_milliseconds(url, documents[name], results.count, round_index)
                results.add(MANIFEST_PUT, name, put)
                results.add(BLOB_FINISH, name, blob_finish_milliseconds(url, results.count))
        _check_guarded(servers[GUARDED].url)
    return results


def _check_guarded(base_url: str) -> None:
    """The guarded server did guard: moving one of the pushed tags is refused."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
        tags = client.get(f"/v2/{REPOSITORY}/tags/list").json()["tags"]
        first, second = tags[0], tags[1]
        body = client.get(
            f"/v2/{REPOSITORY}/manifests/{second}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        moved = client.put(
            f"/v2/{REPOSITORY}/manifests/{first}",
            content=body.content,
            headers={"Content-Type": body.headers["content-type"]},
        )
    if moved.status_code != 403:
        raise BenchError(f"the guarded server let tag {first} move: {moved.status_code}")


def render(results: NamespaceResults, info: RunInfo, workdir: Path) -> str:
    lines = [
        f"### Quotas and immutable tags on the write path: {results.storage}",
        "",
        f"{info.date}; Distribution {info.distribution_version}; load average before: "
        f"{info.load_before}. Median ms per request over {results.rounds} rounds of up to "
        f"{results.count} requests per row and server (one connection, one request at a time).",
        "",
        f"| row | {PLAIN} | {GUARDED} | added | {DISTRIBUTION} | guarded ours / Distribution |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in ROWS:
        plain, guarded = results.value(row, PLAIN), results.value(row, GUARDED)
        theirs = results.value(row, DISTRIBUTION)
        added = guarded - plain
        lines.append(
            f"| {row} | {plain:.2f} | {guarded:.2f} | {added:+.2f} ms ({added / plain:+.0%}) "
            f"| {theirs:.2f} | {guarded / theirs:.2f}x |"
        )
    disk = "Disk" if results.storage == "filesystem" else "SeaweedFS data on"
    machine = machine_description(workdir, info.distribution_version, disk)
    lines += ["", *(f"- {key}: {value}" for key, value in machine)]
    return "\n".join(lines)


def run_namespaces(
    storage: str, quick: bool, rounds: int | None, workdir: Path, info: RunInfo
) -> str:
    """Measure one storage; its Markdown section."""
    return render(measure(storage, quick, rounds, workdir), info, workdir)
