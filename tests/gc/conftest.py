"""A deployment for garbage-collection tests: its own storage (a directory, or a prefix of the
session's bucket), served by one registry on the filesystem and by two replicas on S3; and
collectors running in the test's process against the same storage, so a test can stop one at
any phase boundary and run clients against the servers in between."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.gc.collector import Collector, Pause, Settings
from registry.service import Registry
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage
from registry.storage.protocol import Storage
from registry.wiring import s3_storage
from testkit.registry import Backend, FilesystemBackend, RunningRegistry, S3Backend, run_registry
from tests.conftest import BACKENDS

# The servers trust a catalog entry a third of this; collectors here settle longer than that.
SERVER_SETTLE = "1s"
COLLECTOR_SETTLE = 0.5
SETTINGS = Settings(blob_grace=0.0, settle=COLLECTOR_SETTLE, untagged_grace=0.0)


@dataclass(frozen=True)
class Deployment:
    backend: Backend
    data_dir: Path
    servers: tuple[RunningRegistry, ...]  # one, or two replicas on one bucket

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def storage(self) -> Storage:
        """A driver of our own on the deployment's storage."""
        if isinstance(self.backend, S3Backend):
            return s3_storage(self.backend.config(self.backend.prefix(self.data_dir)))
        return FilesystemStorage(self.backend.root(self.data_dir), layout.VOLATILE_PREFIXES)

    def keys(self, prefix: str = "") -> list[str]:
        return self.servers[0].stored_keys(prefix)


def chosen_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "s3":
        s3: S3Backend = request.getfixturevalue("s3_backend")
        return s3
    return FilesystemBackend()


@contextlib.contextmanager
def deployed(
    backend: Backend, data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[Deployment]:
    settings = {"REGISTRY_GC_SETTLE": SERVER_SETTLE, **(env or {})}
    count = 2 if isinstance(backend, S3Backend) else 1
    with ExitStack() as stack:
        servers = tuple(
            stack.enter_context(run_registry(data_dir, settings, backend=backend))
            for _ in range(count)
        )
        yield Deployment(backend, data_dir, servers)


@pytest.fixture(params=BACKENDS)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A fresh deployment for one test."""
    with deployed(chosen_backend(request), tmp_path) as deployment:
        yield deployment


@pytest.fixture(scope="module", params=BACKENDS)
def module_deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One deployment for a module whose tests each leave no garbage behind."""
    with deployed(chosen_backend(request), tmp_path_factory.mktemp("gc")) as deployment:
        yield deployment


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def registry_on(deployment: Deployment) -> AsyncIterator[Registry]:
    """The service on the deployment's storage, for collectors in the test's process."""
    storage = deployment.storage()
    try:
        yield Registry(storage)
    finally:
        await storage.aclose()


@pytest.fixture
async def collector_registry(deployment: Deployment, anyio_backend: str) -> AsyncIterator[Registry]:
    async with registry_on(deployment) as registry:
        yield registry


async def _no_pause(_: str) -> None:
    return None


def collector(
    registry: Registry, settings: Settings = SETTINGS, pause: Pause = _no_pause
) -> Collector:
    return Collector(registry, settings, pause=pause, holder="test collector")
