"""The registry service in this process, on a counting wrapper of each storage driver."""

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
async def counting(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[CountingStorage]:
    driver: Storage
    if request.param == "s3":
        s3: S3Backend = request.getfixturevalue("s3_backend")
        driver = s3_storage(s3.config(f"service-{uuid.uuid4().hex}"))
    else:
        driver = FilesystemStorage(tmp_path / "storage")
    try:
        yield CountingStorage(driver)
    finally:
        await driver.aclose()


@pytest.fixture
def registry(counting: CountingStorage) -> Registry:
    return Registry(counting)  # type: ignore[arg-type]  # a Storage in all but name
