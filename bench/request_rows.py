"""The request rows, the same on both storages: request rates and latencies, a real client,
cold start.

Measured alternately (the server that goes first alternates between rounds) on servers that
are already running, after the transfer rounds:

- manifest GET by tag and by digest at each concurrency (wrk, requests/s);
- pushes of new 4 KiB blobs from 8 connections (POST + PUT ?digest=, pushes/s);
- manifest PUTs of a 10-layer image: fresh manifests naming the same 11 blobs, one after
  another on one connection (median ms per PUT);
- 32 concurrent GETs of one 4 MiB blob (aggregate MiB/s);
- `skopeo copy` (`bench.skopeo`) of an image of 10 new 20 MiB layers from an OCI layout into
  the registry, then from the registry into a new layout (seconds each);
- cold start: a fresh server process until its first 200 on /v2/ (seconds), on its own.

Their figures and table: `bench.request_results`.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.blobs import Blob, make_blob
from bench.budgets import COLD_START_LIMIT_SECONDS
from bench.common import progress
from bench.manifests import (
    MANIFEST_TAG,
    PUT_LAYERS,
    manifest_put_milliseconds,
    push_image_blobs,
    seed_manifest,
)
from bench.request_results import RequestResults, RowKind
from bench.servers import Server
from bench.skopeo import make_oci_layout, skopeo_round_trip
from bench.transfer import push_monolithic
from bench.workloads import (
    manifest_rate,
    parallel_get_mib_per_second,
    small_blob_pushes_per_second,
)
from testkit.process_tree import MiB

Launcher = Callable[[Path], contextlib.AbstractContextManager[Server]]

SMALL_BLOB_SIZE = 4 << 10
SMALL_BLOB_CONCURRENCY = 8
PARALLEL_GET_BLOB_SIZE = 4 * MiB
PARALLEL_GETS = 32


@dataclass(frozen=True)
class RequestPlan:
    rounds: int
    wrk_seconds: int
    concurrencies: tuple[int, ...]
    small_blobs: int  # per round and server
    manifest_puts: int  # per round and server
    parallel_get_rounds: int  # times PARALLEL_GETS GETs, per round and server
    skopeo_layers: int
    skopeo_layer_size: int
    cold_starts: int  # per server


def request_plan(quick: bool) -> RequestPlan:
    """The full request rows, or shorter ones (one round, 1 s wrk runs, fewer of each)."""
    return RequestPlan(
        rounds=1 if quick else 3,
        wrk_seconds=1 if quick else 3,
        concurrencies=(1, 32, 128),
        small_blobs=400 if quick else 1_500,
        manifest_puts=50 if quick else 200,
        parallel_get_rounds=2 if quick else 4,
        skopeo_layers=10,
        skopeo_layer_size=20 * MiB,
        cold_starts=2 if quick else 5,
    )


def _manifest_kind(reference: str, connections: int) -> RowKind:
    return RowKind(f"manifest GET by {reference}, c={connections} (req/s)", "req/s", True)


SMALL_PUSH = RowKind(
    f"push of new 4 KiB blobs, {SMALL_BLOB_CONCURRENCY} connections (pushes/s)", "pushes/s", True
)
MANIFEST_PUT = RowKind(
    f"manifest PUT of a {PUT_LAYERS}-layer image, one at a time (ms)", "ms", False, 1
)
PARALLEL_GET = RowKind(
    f"{PARALLEL_GETS} concurrent GETs of a 4 MiB blob (MiB/s, all together)", "MiB/s", True
)
COLD_START = RowKind(
    "cold start to the first 200 on /v2/ (s)", "s", False, 2, COLD_START_LIMIT_SECONDS
)


def _skopeo_kinds(plan: RequestPlan) -> tuple[RowKind, RowKind]:
    image = f"{plan.skopeo_layers} x {plan.skopeo_layer_size // MiB} MiB layers"
    return (
        RowKind(f"skopeo copy of {image}: layout to registry (s)", "s", False, 2),
        RowKind(f"skopeo copy of {image}: registry to layout (s)", "s", False, 2),
    )


@dataclass(frozen=True)
class _Seeded:
    """What a server holds before the request rounds."""

    manifest_digest: str  # of the manifest tagged MANIFEST_TAG
    image: dict[str, Any]  # a manifest document whose 11 blobs the server has


def _measure_rates(
    plan: RequestPlan,
    server: Server,
    seeded: _Seeded,
    blob: Blob,
    round_index: int,
    results: RequestResults,
) -> None:
    for reference, label in ((MANIFEST_TAG, "tag"), (seeded.manifest_digest, "digest")):
        for connections in plan.concurrencies:
            rate = manifest_rate(server.url, reference, connections, plan.wrk_seconds)
            results.add(_manifest_kind(label, connections), server.name, rate)
    pushes = small_blob_pushes_per_second(
        server.url, plan.small_blobs, SMALL_BLOB_SIZE, SMALL_BLOB_CONCURRENCY
    )
    results.add(SMALL_PUSH, server.name, pushes)
    put = manifest_put_milliseconds(server.url, seeded.image, plan.manifest_puts, round_index)
    results.add(MANIFEST_PUT, server.name, put)
    gets = parallel_get_mib_per_second(
        server.url, blob, PARALLEL_GETS, PARALLEL_GETS * plan.parallel_get_rounds
    )
    results.add(PARALLEL_GET, server.name, gets)
    progress(
        f"    {server.name:<12} manifest by tag c=32 "
        f"{results.figures[_manifest_kind('tag', 32).label][server.name][-1]:,.0f} req/s, "
        f"small pushes {pushes:,.0f}/s, manifest PUT {put:.1f} ms,"
        f" parallel GETs {gets:,.0f} MiB/s"
    )


def measure_requests(
    plan: RequestPlan,
    servers: list[Server],
    workdir: Path,
    launchers: dict[str, Launcher],
) -> RequestResults:
    results = RequestResults()
    blob_dir = workdir / "request-rows"
    blob_dir.mkdir()
    try:
        blob = make_blob(blob_dir, PARALLEL_GET_BLOB_SIZE)
        seeded = {}
        for server in servers:
            seeded[server.name] = _Seeded(seed_manifest(server.url), push_image_blobs(server.url))
            push_monolithic(server.url, blob)
        push_kind, pull_kind = _skopeo_kinds(plan)
        for index in range(plan.rounds):
            progress(f"  requests, round {index + 1}/{plan.rounds}")
            order = servers if index % 2 == 0 else servers[::-1]
            for server in order:
                _measure_rates(plan, server, seeded[server.name], blob, index, results)
            layout = make_oci_layout(
                blob_dir / f"layout-{index}", plan.skopeo_layers, plan.skopeo_layer_size
            )
            for server in order:
                push, pull = skopeo_round_trip(server.url, layout, f"bench/skopeo-{index}")
                results.add(push_kind, server.name, push)
                results.add(pull_kind, server.name, pull)
                progress(f"    {server.name:<12} skopeo in {push:.2f} s, out {pull:.2f} s")
            shutil.rmtree(layout.path)
        progress(f"cold start, {plan.cold_starts} times each")
        for index in range(plan.cold_starts):
            names = list(launchers) if index % 2 == 0 else list(launchers)[::-1]
            for name in names:
                start_dir = workdir / f"cold-start-{name.lower()}-{index}"
                start_dir.mkdir()
                with launchers[name](start_dir) as server:
                    results.add(COLD_START, name, server.ready_seconds)
                shutil.rmtree(start_dir, ignore_errors=True)
    finally:
        shutil.rmtree(blob_dir, ignore_errors=True)
    return results
