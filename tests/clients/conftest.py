"""Fixtures for the real-client tests: private daemons (one per session) and confined CLI tools."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import oras.client  # type: ignore[import-untyped]
import pytest

from testkit.registry import RunningRegistry, S3Backend, run_registry
from testkit.seaweed import SeaweedFS, running_seaweedfs
from tests.clients.tools import (
    Containerd,
    Docker,
    Podman,
    Skopeo,
    running_containerd,
    running_dockerd,
)

# The redirect registry's storage listens on another loopback address than the registry
# (127.0.0.1), so a client following a redirect to it changes host, as with a real S3 or CDN.
REDIRECT_STORAGE_HOST = "127.0.0.2"
REDIRECT_BUCKET = "redirects"


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """The docker CLI bound to a private dockerd that trusts every loopback registry over HTTP
    (dockerd's own default for 127.0.0.0/8, stated here), so one daemon serves every registry
    of the session, whatever its port or backend."""
    with running_dockerd(tmp_path_factory.mktemp("dockerd"), "127.0.0.0/8") as cli:
        yield cli


@pytest.fixture(scope="session")
def ctr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """`ctr` bound to a private containerd."""
    with running_containerd(tmp_path_factory.mktemp("containerd")) as cli:
        yield cli


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo")


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    with tempfile.TemporaryDirectory(prefix="podman-run-") as runroot:
        yield Podman(tmp_path / "podman", Path(runroot))


@pytest.fixture
def oras_client(registry_server: RunningRegistry) -> Iterator[oras.client.OrasClient]:
    client = oras.client.OrasClient(hostname=registry_server.host, insecure=True)
    try:
        yield client
    finally:
        client.session.close()


@pytest.fixture(scope="session")
def redirect_seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS of its own on 127.0.0.2, for the redirect registry only."""
    directory = tmp_path_factory.mktemp("seaweedfs-redirects")
    with running_seaweedfs(directory, host=REDIRECT_STORAGE_HOST) as instance:
        yield instance


@pytest.fixture(scope="session")
def redirect_registry(
    redirect_seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """A registry on S3 that answers blob GETs with 307 to presigned storage URLs.

    It logs at info level, so uvicorn's access log (in `log()`) shows how each request was
    answered. Not parametrized: it is S3 whatever backend other tests run on."""
    backend = S3Backend(redirect_seaweedfs, redirect_seaweedfs.create_bucket(REDIRECT_BUCKET))
    environment = {"REGISTRY_STORAGE_S3_REDIRECT": "true", "REGISTRY_LOG_LEVEL": "info"}
    data_dir = tmp_path_factory.mktemp("registry-redirects")
    with run_registry(data_dir, extra_env=environment, backend=backend) as server:
        yield server


@pytest.fixture
def redirect_client(redirect_registry: RunningRegistry) -> Iterator[httpx.Client]:
    """Plain HTTP to the redirect registry; like httpx by default, it follows no redirect."""
    with httpx.Client(base_url=redirect_registry.url, timeout=60) as client:
        yield client


@pytest.fixture
def redirect_oras_client(
    redirect_registry: RunningRegistry,
) -> Iterator[oras.client.OrasClient]:
    client = oras.client.OrasClient(hostname=redirect_registry.host, insecure=True)
    try:
        yield client
    finally:
        client.session.close()
