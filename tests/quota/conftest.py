"""One deployment per backend for the quota tests, configured with a namespace per test (so
each test starts from an empty usage): one server on the filesystem, two replicas on one
SeaweedFS prefix on S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.config import NamespaceConfig
from registry.namespaces import Namespace
from registry.storage import layout
from testkit.registry import Backend, RunningRegistry, S3Backend, run_registry
from testkit.sections import operator_config_with, write_config
from tests.conftest import BACKENDS
from tests.gc.conftest import chosen_backend

BLOB = 4096  # the size of each blob in the concurrency test
QUOTAS = {
    "quota/final-chunked/**": 4096,
    "quota/final-monolithic/**": 4096,
    "quota/final-whole/**": 4096,
    "quota/final-streamed/**": 4096,
    "quota/mount/**": 4096,
    "quota/manifest/**": 4096,
    "quota/shared/**": 1 << 20,
    "quota/gc/**": 1 << 20,
    "quota/repo-delete/**": 1 << 20,
    "quota/race/**": 10 * BLOB,
}
NAMESPACES = {"namespaces": [{"pattern": p, "quota": q} for p, q in QUOTAS.items()]}
GC = {"gc": {"settle": "1s"}}


def key_of(pattern: str) -> str:
    return Namespace.of(NamespaceConfig(pattern=pattern)).key


@dataclass(frozen=True)
class QuotaDeployment:
    backend: Backend
    servers: tuple[RunningRegistry, ...]

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def keys(self, prefix: str) -> list[str]:
        return self.servers[0].stored_keys(prefix)

    def snapshot(self, *prefixes: str) -> dict[str, bytes]:
        """Every object below the prefixes, with its content."""
        server = self.servers[0]
        return {k: server.stored_bytes(k) for p in prefixes for k in server.stored_keys(p)}

    def used(self, pattern: str) -> int:
        keys = self.keys(layout.namespace_usage(key_of(pattern)))
        if not keys:
            return 0
        used: int = json.loads(self.servers[0].stored_bytes(keys[0]))["used"]
        return used

    def markers(self, pattern: str) -> list[str]:
        return self.keys(f"{layout.NAMESPACES_PREFIX}{key_of(pattern)}/charged/")

    def operator_config(self) -> Path:
        return operator_config_with(self.servers[0], NAMESPACES)


@pytest.fixture(scope="module", params=BACKENDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuotaDeployment]:
    backend = chosen_backend(request)
    data_dir = tmp_path_factory.mktemp("quota")
    config = write_config(data_dir / "server.yaml", {**NAMESPACES, **GC})
    count = 2 if isinstance(backend, S3Backend) else 1
    with ExitStack() as stack:
        servers = tuple(
            stack.enter_context(run_registry(data_dir, config_file=config, backend=backend))
            for _ in range(count)
        )
        yield QuotaDeployment(backend, servers)
