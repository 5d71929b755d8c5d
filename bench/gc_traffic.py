"""Requests around garbage collection: how much a running collection slows reads (row d),
and what the collector's protocol costs the write path when no collection runs (row e).

(d) Our server on the side-by-side seed (after its collections); per round, the garbage is
    seeded again, then windows of two wrk processes side by side (manifest GETs by tag over
    many images, blob GETs over as many blobs) run first with no collection, then while one
    runs. Only windows that ended before the collection did count.
(e) Two servers of ours on two copies of the same seed: this checkout's code (with the
    protocol) and the code of the commit before it (`git archive` into the work directory,
    started with that directory as its working directory and first on PYTHONPATH), measured
    alternately: blob HEADs, blob HEADs of links made 2 h old (which the protocol writes
    again, once), cross-repository blob mounts into a new repository, and PUTs of new image
    manifests under new tags, each from keep-alive connections, bounded in count and time.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from bench.common import progress
from bench.gc import (
    BEFORE_GC_COMMIT,
    GcResults,
    ReadRound,
    checked_ours_run,
    kept_images,
    root_env,
    seed_root,
)
from bench.gc_load import (
    ACCEPT_MANIFEST,
    Request,
    WrkLoad,
    request_rate,
    write_wrk_script,
    wrk_side_by_side,
)
from bench.gc_meters import MeasuredProcess, ours_gc_command, ours_gc_environment
from bench.gc_seed import Image
from bench.launchers import run_ours
from bench.machine import PROJECT_ROOT
from bench.servers import OURS, BenchError, base_environment
from registry.digest import Digest
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage
from testkit.oci import OCI_MANIFEST

GIT_TIMEOUT_SECONDS = 60
WITH_PROTOCOL = "with the GC protocol"
BEFORE_PROTOCOL = f"before GC ({BEFORE_GC_COMMIT})"
HEAD, OLD_HEAD, MOUNT, PUT = "blob HEAD", "blob HEAD, old link", "blob mount", "manifest PUT"
# A server with the protocol writes a link again on a HEAD once it is older than half the
# blob grace (30 min by default): links this old show that write, once per link.
OLD_LINK_SECONDS = 2 * 3600
WARM_UP_REQUESTS = 500


# -- (d) reads while a collection runs ---------------------------------------------------------


def _read_loads(results: GcResults, workdir: Path) -> list[WrkLoad]:
    plan = results.plan
    images = kept_images(plan.side, plan.read_targets)
    manifests = [f"/v2/{image.repository}/manifests/{image.tag}" for image in images]
    blobs = [
        f"/v2/{image.repository}/blobs/sha256:{image.blobs[1 + n % plan.side.layers][0]}"
        for n, image in enumerate(images)
    ]
    return [
        WrkLoad(
            write_wrk_script(workdir / "manifests.lua", manifests),
            plan.read_connections,
            (ACCEPT_MANIFEST,),
        ),
        WrkLoad(write_wrk_script(workdir / "blobs.lua", blobs), plan.read_connections),
    ]


def reads_during_collection(results: GcResults, workdir: Path, root: Path) -> None:
    plan = results.plan
    progress(
        f"(d) GETs of {plan.read_targets:,} manifests and blobs while a collection runs"
        f" ({plan.side.short()})"
    )
    loads = _read_loads(results, workdir)
    env = ours_gc_environment(base_environment(), root_env(root))
    with run_ours(workdir, OURS, root_env(root)) as server:
        for index in range(plan.read_rounds):
            seed_root(results, root, plan.side, distribution=False, garbage_only=True)
            measured = ReadRound()
            for _ in range(plan.baseline_windows):
                manifests, blobs = wrk_side_by_side(server.url, loads, plan.window_seconds)
                measured.manifest_alone.append(manifests)
                measured.blob_alone.append(blobs)
            name = f"ours gc, under reads {index}"
            collector = MeasuredProcess(
                name, ours_gc_command(), env, PROJECT_ROOT, workdir, plan.gc_timeout
            )
            past: list[tuple[float, float]] = []
            try:
                for _ in range(plan.max_windows):
                    if not collector.running():
                        break
                    manifests, blobs = wrk_side_by_side(server.url, loads, plan.window_seconds)
                    if collector.running():
                        measured.manifest_during.append(manifests)
                        measured.blob_during.append(blobs)
                    else:
                        past.append((manifests, blobs))
                finished = collector.wait()
            finally:
                collector.kill()
            measured.windows_past_gc = len(past)
            if not measured.manifest_during and past:  # a short collection: its only window
                measured.manifest_during.append(past[0][0])
                measured.blob_during.append(past[0][1])
            measured.collection = checked_ours_run(
                name,
                finished.seconds,
                finished.peak_rss_mib,
                finished.stdout_path,
                plan.side.garbage_blobs,
            )
            results.reads.append(measured)
            progress(
                f"    manifests {_mean(measured.manifest_alone):,.0f} ->"
                f" {_mean(measured.manifest_during):,.0f} req/s, blobs"
                f" {_mean(measured.blob_alone):,.0f} -> {_mean(measured.blob_during):,.0f} req/s"
                f" ({len(measured.manifest_during)} windows during the collection)"
            )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# -- (e) the protocol's cost --------------------------------------------------------------------


def export_commit(commit: str, directory: Path) -> Path:
    """The tree of `commit` of this checkout, written below directory."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", commit],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"git archive {commit}: {exc}") from exc
    directory.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def check_imports_from(source: Path) -> None:
    """That `python -m registry` started in source (first on PYTHONPATH) runs its code."""
    found = subprocess.run(
        [sys.executable, "-c", "import registry; print(registry.__file__)"],
        capture_output=True,
        text=True,
        cwd=source,
        env={**base_environment(), "PYTHONPATH": str(source)},
        timeout=GIT_TIMEOUT_SECONDS,
        check=False,
    ).stdout.strip()
    if not found.startswith(str(source.resolve())):
        raise BenchError(f"the registry in {source} imports {found or 'nothing'} instead")


def _blobs(images: list[Image]) -> list[tuple[str, str]]:
    """(repository, sha256 hex) of every blob of the images."""
    return [(image.repository, hex_digest) for image in images for hex_digest, _ in image.blobs]


def old_link_slice(images: list[Image], round_index: int, count: int) -> list[tuple[str, str]]:
    """The blobs whose links round `round_index` ages: new ones each round, from the end."""
    blobs = _blobs(images)[::-1]
    return blobs[round_index * count : (round_index + 1) * count]


def age_links(root: Path, blobs: list[tuple[str, str]]) -> None:
    """Set the links' modification time OLD_LINK_SECONDS back (as an hours-old push)."""
    storage = FilesystemStorage(root)
    when = time.time() - OLD_LINK_SECONDS
    for repository, hex_digest in blobs:
        os.utime(
            storage.path_of(layout.blob_link(repository, Digest("sha256", hex_digest))),
            (when, when),
        )


def _protocol_requests(
    images: list[Image], round_index: int, plan_heads: int, mounts: int, puts: int
) -> dict[str, list[Request]]:
    blobs = _blobs(images)
    heads = [
        Request("HEAD", f"/v2/{repository}/blobs/sha256:{hex_digest}", 200)
        for repository, hex_digest in (blobs * (1 + plan_heads // len(blobs)))[:plan_heads]
    ]
    old_heads = [
        Request("HEAD", f"/v2/{repository}/blobs/sha256:{hex_digest}", 200)
        for repository, hex_digest in old_link_slice(images, round_index, mounts)
    ]
    target = f"gc-bench/mounted-{round_index}"
    mounted = [
        Request(
            "POST",
            f"/v2/{target}/blobs/uploads/?mount=sha256:{hex_digest}&from={repository}",
            201,
        )
        for repository, hex_digest in blobs[:mounts]
    ]
    put = []
    for n in range(puts):
        image = images[n % len(images)]
        document = json.loads(image.manifest)
        document["annotations"] = {"org.example.gc-bench": f"{round_index}-{n}"}
        put.append(
            Request(
                "PUT",
                f"/v2/{image.repository}/manifests/put-{round_index}-{n}",
                201,
                json.dumps(document, separators=(",", ":")).encode(),
                OCI_MANIFEST,
            )
        )
    return {HEAD: heads, OLD_HEAD: old_heads, MOUNT: mounted, PUT: put}


def protocol_overhead(results: GcResults, workdir: Path) -> None:
    plan = results.plan
    progress(
        f"(e) blob HEAD, mount and manifest PUT: {WITH_PROTOCOL} vs {BEFORE_PROTOCOL}"
        f" ({plan.side.short()})"
    )
    before_source = export_commit(BEFORE_GC_COMMIT, workdir / "before-gc-source")
    check_imports_from(before_source)
    check_imports_from(PROJECT_ROOT)
    with_root, before_root = workdir / "protocol-with", workdir / "protocol-before"
    for root in (with_root, before_root):
        seed_root(results, root, plan.side, distribution=False)
    images = kept_images(plan.side, plan.side.kept_manifests)
    figures: dict[str, dict[str, list[float]]] = {
        kind: {WITH_PROTOCOL: [], BEFORE_PROTOCOL: []} for kind in (HEAD, OLD_HEAD, MOUNT, PUT)
    }
    with (
        run_ours(workdir, WITH_PROTOCOL, root_env(with_root), source=PROJECT_ROOT) as current,
        run_ours(workdir, BEFORE_PROTOCOL, root_env(before_root), source=before_source) as old,
    ):
        warm_up = _protocol_requests(images, 0, WARM_UP_REQUESTS, 0, 0)[HEAD]
        for server in (current, old):  # first requests of a fresh process: not measured
            request_rate(server.url, warm_up, plan.connections, plan.protocol_seconds)
        for index in range(plan.rounds):
            requests = _protocol_requests(images, index, plan.heads, plan.mounts, plan.puts)
            for root in (with_root, before_root):
                age_links(root, old_link_slice(images, index, plan.mounts))
            order = [current, old] if index % 2 == 0 else [old, current]
            for server in order:
                line = []
                for kind, batch in requests.items():
                    time.sleep(0.2)  # let the previous batch's writes settle
                    rate = request_rate(server.url, batch, plan.connections, plan.protocol_seconds)
                    figures[kind][server.name].append(rate.per_second)
                    line.append(f"{kind} {rate.per_second:,.0f}/s ({rate.done:,})")
                progress(f"    {server.name:<24} " + ", ".join(line))
    results.protocol = figures
