"""Shared fixtures: a real registry server per test session (and fresh ones on demand)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import RunningRegistry, run_registry


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """One registry on filesystem storage shared by the session (use unique repository names)."""
    with run_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


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
def fresh_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path) as server:
        yield server
