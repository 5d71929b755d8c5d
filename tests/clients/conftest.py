"""Fixtures for the real-client tests: private daemons (one per session) and confined CLI tools."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import oras.client  # type: ignore[import-untyped]
import pytest

from tests.clients.tools import (
    Containerd,
    Docker,
    Podman,
    Skopeo,
    running_containerd,
    running_dockerd,
)
from tests.harness import RunningRegistry


@pytest.fixture(scope="session")
def docker(
    registry_server: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Docker]:
    """The docker CLI bound to a private dockerd that trusts the session registry over HTTP."""
    with running_dockerd(tmp_path_factory.mktemp("dockerd"), registry_server.host) as cli:
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
