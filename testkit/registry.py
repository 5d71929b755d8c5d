"""Real registry servers: `registry serve` in a subprocess on a free loopback port.

A registry stores on one of two backends: `FilesystemBackend` (below `data_dir/storage`) or
`S3Backend` (a bucket on a real SeaweedFS, below a prefix derived from `data_dir`). Either way,
the same `data_dir` means the same storage, so a restarted registry finds its data again, and
two data directories never share anything. `RunningRegistry.stored_keys` and friends look at
what the backend holds directly (files, or S3 listings), not through the registry's driver.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from registry.config import S3Config
from testkit.ports import LOOPBACK, free_port, http_answers
from testkit.process import daemon
from testkit.seaweed import SeaweedFS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_FS_TEMP_DIR = "#tmp"  # the filesystem driver's in-flight writes: not keys
_FS_KEY_SUFFIX = "@"


def s3_environment(config: S3Config) -> dict[str, str]:
    """The REGISTRY_STORAGE_S3_* variables that configure the registry as `config` says."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(S3Config):
        value = getattr(config, f.name)
        if value != f.default:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[f"REGISTRY_STORAGE_S3_{f.name.upper()}"] = text
    return env


@dataclass(frozen=True)
class FilesystemBackend:
    """Stores below `data_dir/storage`, or at `at` when given (a mount the test made)."""

    at: Path | None = None
    name = "filesystem"

    def root(self, data_dir: Path) -> Path:
        return self.at if self.at is not None else data_dir / "storage"

    def temp_dir(self, data_dir: Path) -> Path:
        """Where the driver keeps its in-flight writes."""
        return self.root(data_dir) / _FS_TEMP_DIR

    def environment(self, data_dir: Path) -> dict[str, str]:
        return {"REGISTRY_STORAGE_FILESYSTEM_ROOT": str(self.root(data_dir))}

    def files(self, data_dir: Path) -> dict[str, Path]:
        """Every stored object by key. A file that is not an object keeps its raw path as key."""
        root = self.root(data_dir)
        found: dict[str, Path] = {}
        for directory, subdirectories, names in os.walk(root):
            if Path(directory) == root and _FS_TEMP_DIR in subdirectories:
                subdirectories.remove(_FS_TEMP_DIR)
            for name in names:
                parts = (Path(directory) / name).relative_to(root).parts
                if name.endswith(_FS_KEY_SUFFIX):
                    key = "/".join(unquote(p) for p in (*parts[:-1], name[:-1]))
                else:
                    key = "/".join(parts)
                found[key] = Path(directory) / name
        return found

    def stored_keys(self, data_dir: Path, prefix: str) -> list[str]:
        return sorted(k for k in self.files(data_dir) if k.startswith(prefix))

    def stored_bytes(self, data_dir: Path, key: str) -> bytes:
        return self.files(data_dir)[key].read_bytes()

    def everything_around(self, data_dir: Path) -> list[str]:
        return sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*"))


@dataclass(frozen=True)
class S3Backend:
    seaweedfs: SeaweedFS
    bucket: str
    name = "s3"

    def prefix(self, data_dir: Path) -> str:
        return "r-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]

    def config(self, prefix: str, **overrides: Any) -> S3Config:
        """Driver configuration for this bucket, keys below `prefix`."""
        return S3Config(
            bucket=self.bucket,
            endpoint_url=self.seaweedfs.endpoint_url,
            region=self.seaweedfs.region,
            access_key=self.seaweedfs.access_key,
            secret_key=self.seaweedfs.secret_key,
            prefix=prefix,
            path_style=True,
            **overrides,
        )

    def environment(self, data_dir: Path) -> dict[str, str]:
        return s3_environment(self.config(self.prefix(data_dir)))

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with self.seaweedfs.client() as s3:
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)

    def stored_keys(self, data_dir: Path, prefix: str) -> list[str]:
        base = self.prefix(data_dir) + "/"
        return [key.removeprefix(base) for key in self._list(base + prefix)]

    def stored_bytes(self, data_dir: Path, key: str) -> bytes:
        with self.seaweedfs.client() as s3:
            body = s3.get_object(Bucket=self.bucket, Key=f"{self.prefix(data_dir)}/{key}")["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        return data

    def everything_around(self, data_dir: Path) -> list[str]:
        return self._list("")


Backend = FilesystemBackend | S3Backend
FILESYSTEM = FilesystemBackend()


@dataclass
class RunningRegistry:
    url: str
    host: str  # host:port, as clients name the registry
    data_dir: Path
    backend: Backend
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stored_keys(self, prefix: str = "") -> list[str]:
        """Storage keys (as the driver names them) under prefix, read from the backend directly."""
        return self.backend.stored_keys(self.data_dir, prefix)

    def stored_bytes(self, key: str) -> bytes:
        return self.backend.stored_bytes(self.data_dir, key)

    def everything_around_storage(self) -> list[str]:
        """Every name the backend holds near this registry's storage, to prove nothing escaped:
        each path below the data directory, or each key in the whole bucket."""
        return self.backend.everything_around(self.data_dir)


@contextmanager
def run_registry(
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
    config_file: Path | None = None,
    backend: Backend = FILESYSTEM,
    tls_ca: Path | None = None,
    python: str = sys.executable,
) -> Iterator[RunningRegistry]:
    """A `registry serve` process on a free port, storing on `backend` (see the module doc)."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_STORAGE_")}
    env = {
        **inherited,
        "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{port}",
        **backend.environment(data_dir),
        "REGISTRY_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    command = [python, "-m", "registry", "serve"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    log_path = data_dir / f"registry-{port}.log"
    url = f"{'https' if tls_ca else 'http'}://{LOOPBACK}:{port}"
    verify = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else True
    ready = functools.partial(http_answers, url + "/healthz", verify)
    with daemon(
        command, log_path, ready, name="registry", timeout=20, env=env, cwd=PROJECT_ROOT, grace=15
    ) as process:
        yield RunningRegistry(url, f"{LOOPBACK}:{port}", data_dir, backend, process, log_path)
