"""Shared fixtures: a real registry server per test session and backend (and fresh ones on demand).

Every test that uses `backend`, `registry_server`, `client` or `fresh_registry` runs once on
the filesystem and once on S3 (a real SeaweedFS, started once per session on first use).

Markers say which tests need processes beyond our own server (`make check` leaves them out;
`make test` runs everything): `s3` (SeaweedFS), `clients` (docker, containerd, skopeo,
podman, oras), `conformance` (the OCI suite), `bench` (the benchmark against Distribution).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.registry import Backend, FilesystemBackend, RunningRegistry, S3Backend, run_registry
from testkit.seaweed import SeaweedFS, running_seaweedfs

BACKENDS = ("filesystem", pytest.param("s3", marks=pytest.mark.s3))
SESSION_BUCKET = "registry-tests"
MARKED_DIRECTORIES = {
    "clients": "clients",
    "conformance": "conformance",
    "bench": "bench",
    "replicas": "s3",
}
S3_FIXTURES = {"seaweedfs", "s3_backend", "redirect_seaweedfs"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they start: their directory, or a SeaweedFS fixture they use."""
    for item in items:
        directory = item.path.parent.name
        if directory in MARKED_DIRECTORIES:
            item.add_marker(MARKED_DIRECTORIES[directory])
        if S3_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.s3)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """The session's SeaweedFS (all S3 tests share it; each registry has its own prefix)."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as instance:
        yield instance


@pytest.fixture(scope="session")
def s3_backend(seaweedfs: SeaweedFS) -> S3Backend:
    return S3Backend(seaweedfs, seaweedfs.create_bucket(SESSION_BUCKET))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The storage backend; SeaweedFS is started only when an S3 test runs."""
    if request.param == "s3":
        s3: S3Backend = request.getfixturevalue("s3_backend")
        return s3
    return FilesystemBackend()


@pytest.fixture(scope="session")
def registry_server(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """One registry per backend shared by the session (use unique repository names)."""
    with run_registry(tmp_path_factory.mktemp(f"registry-{backend.name}"), backend=backend) as s:
        yield s


@pytest.fixture
def client(registry_server: RunningRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry_server.url, timeout=60) as c:
        yield c


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"t/{name[:120].strip('-')}"


@pytest.fixture
def fresh_registry(tmp_path: Path, backend: Backend) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path, backend=backend) as server:
        yield server
