"""SeaweedFS for the S3 mode, and the registries under test configured to use it.

SeaweedFS comes from `tests.seaweed` (the test suite's launcher: loopback ports, its own
directory, stopped by killing its PID); the benchmark only raises its volume size. Buckets:
one for our registry (under a key prefix), one for Distribution, one for the raw client.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import project_path  # noqa: F401  (makes `tests` importable)
from servers import (
    DISTRIBUTION,
    DISTRIBUTION_BINARY,
    LOOPBACK,
    OUR_PYTHON,
    OURS,
    BenchError,
    Server,
    base_environment,
    free_port,
    running_server,
)

from tests.seaweed import SeaweedFS, weed_binary

OURS_BUCKET, DISTRIBUTION_BUCKET, RAW_BUCKET = "bench-ours", "bench-distribution", "bench-raw"
OURS_PREFIX = "registry"
DISTRIBUTION_ROOT = "docker/registry/v2/"  # Distribution's keys, with rootdirectory "/"
PART_SIZE = 16 << 20  # ours (storage.s3.part_size), Distribution (chunksize), raw boto3
VOLUME_SIZE_LIMIT_MB = 1024
MAX_DELETE_PAGES = 10_000
VACUUM_TIMEOUT_SECONDS = 120
OURS_REDIRECT, DISTRIBUTION_REDIRECT = f"{OURS} (redirect)", f"{DISTRIBUTION} (redirect)"


class BenchSeaweedFS(SeaweedFS):
    """The test launcher with 1 GiB volumes instead of 128 MiB (fewer volume growths)."""

    def command(self) -> list[str]:
        return [
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}"
            if argument.startswith("-master.volumeSizeLimitMB=")
            else argument
            for argument in super().command()
        ]

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("SeaweedFS is not running")
        return self.process.pid

    def vacuum(self) -> None:
        """Compact the volumes now, so deleted objects stop taking disk space."""
        url = f"http://{self.host}:{self.ports.master}/vol/vacuum?garbageThreshold=0.0001"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=VACUUM_TIMEOUT_SECONDS) as response:
                response.read()
        except OSError as exc:
            raise BenchError(f"SeaweedFS vacuum failed: {exc}") from exc

    def empty_buckets(self) -> int:
        """Delete every object in every bucket (bounded); how many were deleted."""
        deleted = 0
        with self.client(timeout=60) as s3:
            for bucket in self.buckets:
                deleted += _empty_bucket(s3, bucket)
        return deleted


def _empty_bucket(s3: Any, bucket: str) -> int:
    deleted = 0
    for _ in range(MAX_DELETE_PAGES):
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000)
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if not keys:
            return deleted
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        deleted += len(keys)
    raise BenchError(f"bucket {bucket} still not empty after {MAX_DELETE_PAGES} pages")


@contextlib.contextmanager
def running_seaweedfs(workdir: Path) -> Iterator[BenchSeaweedFS]:
    """SeaweedFS in workdir/seaweedfs with the three buckets; killed by PID at the end."""
    directory = workdir / "seaweedfs"
    directory.mkdir()
    seaweed = BenchSeaweedFS(directory, LOOPBACK)
    try:
        seaweed.start()
    except (RuntimeError, TimeoutError) as exc:
        raise BenchError(f"SeaweedFS did not start: {exc}") from exc
    try:
        for bucket in (OURS_BUCKET, DISTRIBUTION_BUCKET, RAW_BUCKET):
            seaweed.create_bucket(bucket)
        yield seaweed
    finally:
        seaweed.stop()


def seaweedfs_version() -> str:
    try:
        result = subprocess.run(
            [str(weed_binary()), "version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return "?"
    words = result.stdout.split()
    return words[2] if len(words) > 2 and words[0] == "version" else "?"


@dataclass(frozen=True)
class S3Servers:
    ours: Server
    ours_redirect: Server
    distribution: Server
    distribution_redirect: Server


def run_ours_s3(
    workdir: Path, seaweed: SeaweedFS, redirect: bool
) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    env = base_environment() | {
        "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{port}",
        "REGISTRY_STORAGE_S3_BUCKET": OURS_BUCKET,
        "REGISTRY_STORAGE_S3_ENDPOINT_URL": seaweed.endpoint_url,
        "REGISTRY_STORAGE_S3_ACCESS_KEY": seaweed.access_key,
        "REGISTRY_STORAGE_S3_SECRET_KEY": seaweed.secret_key,
        "REGISTRY_STORAGE_S3_REGION": seaweed.region,
        "REGISTRY_STORAGE_S3_PREFIX": OURS_PREFIX,
        "REGISTRY_STORAGE_S3_PATH_STYLE": "true",
        "REGISTRY_STORAGE_S3_REDIRECT": "true" if redirect else "false",
        "REGISTRY_STORAGE_S3_PART_SIZE": str(PART_SIZE),
        "REGISTRY_LOG_LEVEL": "warning",
        "REGISTRY_LOG_ACCESS_LOG": "false",
    }
    python = str(OUR_PYTHON) if OUR_PYTHON.exists() else sys.executable
    name = OURS_REDIRECT if redirect else OURS
    return running_server(name, [python, "-m", "registry", "serve"], env, port, workdir)


def distribution_s3_config(seaweed: SeaweedFS, port: int, redirect: bool) -> str:
    """Distribution 2.8.2's s3 driver on SeaweedFS.

    2.8.2 has no `forcepathstyle` key (it ignores unknown keys): it uses path-style
    addressing whenever `regionendpoint` is set.
    """
    return "\n".join(
        [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
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
            "  delete:",
            "    enabled: true",
            "  maintenance:",  # its upload purger panics walking SeaweedFS (docs/benchmarks.md)
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: {LOOPBACK}:{port}",
            f"  secret: {secrets.token_hex(16)}",
            "",
        ]
    )


def run_distribution_s3(
    workdir: Path, seaweed: SeaweedFS, redirect: bool
) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    name = DISTRIBUTION_REDIRECT if redirect else DISTRIBUTION
    config = workdir / f"distribution-s3{'-redirect' if redirect else ''}.yml"
    config.write_text(distribution_s3_config(seaweed, port, redirect))
    command = [DISTRIBUTION_BINARY, "serve", str(config)]
    return running_server(name, command, base_environment(), port, workdir)


@contextlib.contextmanager
def running_s3_servers(workdir: Path, seaweed: SeaweedFS) -> Iterator[S3Servers]:
    """Ours and Distribution, each once with redirects off and once with them on."""
    with contextlib.ExitStack() as stack:
        yield S3Servers(
            ours=stack.enter_context(run_ours_s3(workdir, seaweed, redirect=False)),
            ours_redirect=stack.enter_context(run_ours_s3(workdir, seaweed, redirect=True)),
            distribution=stack.enter_context(run_distribution_s3(workdir, seaweed, False)),
            distribution_redirect=stack.enter_context(run_distribution_s3(workdir, seaweed, True)),
        )
