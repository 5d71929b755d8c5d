"""The registry service in this process, on each storage driver: plain, or wrapped to count
round trips (counting.py) or to stop an operation at a chosen call (gates.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.service import Registry
from registry.storage.filesystem import FilesystemStorage
from registry.storage.protocol import Storage
from registry.wiring import s3_storage
from testkit.registry import S3Backend
from tests.service.counting import CountingStorage


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
async def driver(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Storage]:
    """A storage driver of its own: a fresh directory, or a fresh prefix in the bucket."""
    storage: Storage
    if request.param == "s3":
        s3: S3Backend = request.getfixturevalue("s3_backend")
        storage = s3_storage(s3.config(f"service-{uuid.uuid4().hex}"))
    else:
        storage = FilesystemStorage(tmp_path / "storage")
    try:
        yield storage
    finally:
        await storage.aclose()


@pytest.fixture
def counting(driver: Storage) -> CountingStorage:
    return CountingStorage(driver)


@pytest.fixture
def registry(counting: CountingStorage) -> Registry:
    return Registry(counting)  # type: ignore[arg-type]  # a Storage in all but name
