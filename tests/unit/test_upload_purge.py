"""Purging abandoned uploads keeps every upload that is still in use."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.storage.filesystem import FilesystemStorage
from registry.uploads import Uploads

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def age(storage: FilesystemStorage, seconds: float) -> None:
    past = time.time() - seconds
    for path in storage.root.rglob("*@"):
        os.utime(path, (past, past))


async def test_purge_removes_abandoned_sessions_and_keeps_active_ones(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    uploads = Uploads(storage)
    abandoned = await uploads.start("repo")
    abandoned = await uploads.append(
        await uploads.get("repo", abandoned.id), body(b"old"), None, None
    )
    active = await uploads.start("repo")
    active = await uploads.append(await uploads.get("repo", active.id), body(b"a"), None, None)
    age(storage, 3600)
    # The active upload receives another chunk now: its state is fresh, its first part is old.
    await uploads.append(await uploads.get("repo", active.id), body(b"b"), None, None)

    removed = await uploads.purge(max_age=600)

    assert removed == 2  # the abandoned session's state and part
    with pytest.raises(Exception, match="BLOB_UPLOAD_UNKNOWN"):
        await uploads.get("repo", abandoned.id)
    session = await uploads.get("repo", active.id)
    assert session.size == 2 and len(session.parts) == 2
    assert all([await storage.stat(p.key) for p in session.parts])
