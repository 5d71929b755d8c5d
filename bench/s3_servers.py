"""SeaweedFS for the S3 backend, and the registries under test configured to use it.

SeaweedFS comes from `testkit.seaweed` (loopback ports, its own directory, stopped by killing
its PID), with 1 GiB volumes instead of 128 MiB (fewer volume growths during a push).
Buckets: one for our registry (under a key prefix), one for Distribution, one for the raw
client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.backend import Target
from bench.launchers import run_distribution, run_ours
from bench.servers import DISTRIBUTION, OURS, BenchError, Server
from testkit.ports import LOOPBACK
from testkit.registry import S3Backend, s3_environment
from testkit.seaweed import SeaweedFS
from testkit.seaweed import running_seaweedfs as testkit_seaweedfs

OURS_BUCKET, DISTRIBUTION_BUCKET, RAW_BUCKET = "bench-ours", "bench-distribution", "bench-raw"
OURS_PREFIX = "registry"
DISTRIBUTION_ROOT = "docker/registry/v2/"  # Distribution's keys, with rootdirectory "/"
PART_SIZE = 16 << 20  # ours (storage.s3.part_size), Distribution (chunksize), raw boto3
VOLUME_SIZE_LIMIT_MB = 1024
OURS_REDIRECT, DISTRIBUTION_REDIRECT = f"{OURS} (redirect)", f"{DISTRIBUTION} (redirect)"


@contextlib.contextmanager
def running_seaweedfs(workdir: Path) -> Iterator[SeaweedFS]:
    """SeaweedFS in workdir/seaweedfs with the three buckets; killed by PID at the end."""
    directory = workdir / "seaweedfs"
    directory.mkdir()
    with contextlib.ExitStack() as stack:
        try:
            seaweed = stack.enter_context(
                testkit_seaweedfs(directory, LOOPBACK, volume_size_limit_mb=VOLUME_SIZE_LIMIT_MB)
            )
        except (RuntimeError, TimeoutError) as exc:
            raise BenchError(f"SeaweedFS did not start: {exc}") from exc
        for bucket in (OURS_BUCKET, DISTRIBUTION_BUCKET, RAW_BUCKET):
            seaweed.create_bucket(bucket)
        yield seaweed


def run_ours_s3(
    workdir: Path, seaweed: SeaweedFS, redirect: bool
) -> contextlib.AbstractContextManager[Server]:
    config = S3Backend(seaweed, OURS_BUCKET).config(
        OURS_PREFIX, redirect=redirect, part_size=PART_SIZE
    )
    name = OURS_REDIRECT if redirect else OURS
    return run_ours(workdir, name, s3_environment(config))


def distribution_s3_storage(seaweed: SeaweedFS, redirect: bool) -> list[str]:
    """Distribution 2.8.2's s3 driver on SeaweedFS.

    2.8.2 has no `forcepathstyle` key (it ignores unknown keys): it uses path-style
    addressing whenever `regionendpoint` is set.
    """
    return [
        "  s3:",
        f"    regionendpoint: {seaweed.endpoint_url}",
        f"    region: {seaweed.region}",
        f"    bucket: {DISTRIBUTION_BUCKET}",
        f"    accesskey: {seaweed.access_key}",
        f"    secretkey: {seaweed.secret_key}",
        "    secure: false",
        "    v4auth: true",
        f"    chunksize: {PART_SIZE}",
        "    rootdirectory: /",
        "  redirect:",
        f"    disable: {'false' if redirect else 'true'}",
        "  maintenance:",  # its upload purger panics walking SeaweedFS (docs/benchmarks.md)
        "    uploadpurging:",
        "      enabled: false",
    ]


def run_distribution_s3(
    workdir: Path, seaweed: SeaweedFS, redirect: bool
) -> contextlib.AbstractContextManager[Server]:
    name = DISTRIBUTION_REDIRECT if redirect else DISTRIBUTION
    return run_distribution(workdir, name, distribution_s3_storage(seaweed, redirect))


@contextlib.contextmanager
def running_s3_targets(workdir: Path, seaweed: SeaweedFS) -> Iterator[list[Target]]:
    """Ours and Distribution, each once with redirects off and once with them on."""
    with contextlib.ExitStack() as stack:

        def start(launch: Callable[..., contextlib.AbstractContextManager[Server]]) -> Target:
            server = stack.enter_context(launch(workdir, seaweed, redirect=False))
            twin = stack.enter_context(launch(workdir, seaweed, redirect=True))
            return Target(server.name, server, twin)

        yield [start(run_ours_s3), start(run_distribution_s3)]
