"""What only the S3 driver does: multipart streaming, orphan purge, presigned URLs."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from registry.storage.protocol import NotFound
from registry.storage.s3 import S3Storage
from registry.wiring import s3_storage
from testkit.registry import S3Backend

pytestmark = pytest.mark.anyio
PART = 5 * 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def s3(s3_backend: S3Backend) -> AsyncIterator[S3Storage]:
    config = dataclasses.replace(s3_backend.config(f"driver-{uuid.uuid4().hex}"), part_size=PART)
    driver = s3_storage(config)
    try:
        yield driver
    finally:
        await driver.aclose()


async def blocks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def multipart_uploads(backend: S3Backend, driver: S3Storage) -> list[str]:
    with backend.seaweedfs.client() as client:
        listed = client.list_multipart_uploads(Bucket=driver.bucket, Prefix=driver.prefix)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


async def test_large_write_streams_in_parts_and_reads_back_with_ranges(s3: S3Storage) -> None:
    data = os.urandom(3 * PART + 12345)
    assert await s3.write("big/object", blocks(data)) == len(data)
    assert (await s3.stat("big/object")).size == len(data)
    received = b"".join([b async for b in s3.read("big/object", PART - 10, PART + 10)])
    assert received == data[PART - 10 : PART + 10]


async def test_rejected_multipart_write_is_aborted_and_leaves_no_parts(
    s3: S3Storage, s3_backend: S3Backend
) -> None:
    def reject() -> None:
        raise ValueError("wrong digest")

    with pytest.raises(ValueError):
        await s3.write("big/rejected", blocks(os.urandom(2 * PART + 1)), reject)
    with pytest.raises(NotFound):
        await s3.stat("big/rejected")
    assert multipart_uploads(s3_backend, s3) == []


async def test_purge_aborts_abandoned_multipart_uploads_under_our_prefix_only(
    s3: S3Storage, s3_backend: S3Backend
) -> None:
    with s3_backend.seaweedfs.client() as client:
        ours = client.create_multipart_upload(Bucket=s3.bucket, Key=s3.prefix + "uploads/x")
        other_key = f"elsewhere-{uuid.uuid4().hex}/y"
        other = client.create_multipart_upload(Bucket=s3.bucket, Key=other_key)
    assert multipart_uploads(s3_backend, s3) == [s3.prefix + "uploads/x"]
    assert await s3.purge_incomplete_writes(older_than_seconds=3600) == 0
    assert await s3.purge_incomplete_writes(older_than_seconds=-60) == 1
    assert multipart_uploads(s3_backend, s3) == []
    with s3_backend.seaweedfs.client() as client:
        client.abort_multipart_upload(Bucket=s3.bucket, Key=other_key, UploadId=other["UploadId"])
    assert ours["UploadId"]


async def test_presigned_url_serves_the_object_without_credentials(s3: S3Storage) -> None:
    await s3.put_bytes("shared/object", b"presigned content")
    url = await s3.presigned_url("shared/object", expires_in=60)
    async with httpx.AsyncClient() as client:
        whole = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=0-8"})
    assert whole.status_code == 200 and whole.content == b"presigned content"
    assert part.status_code == 206 and part.content == b"presigned"


async def test_compose_joins_objects_inside_s3(s3: S3Storage) -> None:
    pieces = [os.urandom(PART), os.urandom(PART + 3), b"tail"]
    for i, piece in enumerate(pieces):
        await s3.write(f"parts/{i}", blocks(piece))
    await s3.compose([f"parts/{i}" for i in range(3)], "joined")
    joined = b"".join([b async for b in s3.read("joined")])
    assert joined == b"".join(pieces)
    await s3.put_bytes("parts/small", b"too small to be a middle part")
    with pytest.raises(ValueError):
        await s3.compose(["parts/small", "parts/2"], "refused")
    with pytest.raises(NotFound):
        await s3.stat("refused")
