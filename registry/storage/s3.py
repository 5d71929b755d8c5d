"""S3-compatible driver (AWS S3, SeaweedFS, MinIO, Ceph RGW) on aioboto3.

The only module that imports boto. Keys live below an optional prefix in one bucket. Large
writes stream into a multipart upload (a part is uploaded while the next one is received)
that is completed only when the stream ended and `verify` accepted it, so an object is
visible whole or not at all. Conditional writes use `If-None-Match: *` and `If-Match: <etag>`,
which is what lets several stateless replicas share a bucket safely.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
import aiohttp
import anyio
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from registry.storage.protocol import (
    BytesLike,
    KeyTooLong,
    NotFound,
    ObjectInfo,
    OpenObject,
    PreconditionFailed,
    StorageDenied,
    StorageError,
    StorageFull,
)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part, the last one excepted
MAX_SINGLE_COPY = 5 * 1024**3
MAX_PARTS = 10_000
_READ_BLOCK = 1 << 20
_PARALLEL_COPIES = 8
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_PRECONDITION = {"412", "PreconditionFailed", "ConditionalRequestConflict", "409"}
# Error codes with a typed storage error of their own (AWS, MinIO, Ceph RGW, SeaweedFS).
_TYPED_CODES: dict[str, type[StorageError]] = {
    "KeyTooLongError": KeyTooLong,
    "AccessDenied": StorageDenied,
    "AllAccessDisabled": StorageDenied,
    "InvalidAccessKeyId": StorageDenied,
    "SignatureDoesNotMatch": StorageDenied,
    "QuotaExceeded": StorageFull,
    "XMinioStorageFull": StorageFull,
    "XMinioAdminBucketQuotaExceeded": StorageFull,
}


@contextlib.contextmanager
def _translate(key: str) -> Iterator[None]:
    """Map boto errors to the storage exceptions the rest of the registry understands."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _NOT_FOUND or status == "404":
            raise NotFound(key) from None
        if code in _PRECONDITION or status in ("412", "409"):
            raise PreconditionFailed(key) from None
        message = f"S3 error on {key!r}: {code or status} {error.get('Message', '')}"
        kind = _TYPED_CODES.get(code, StorageDenied if status == "403" else StorageError)
        raise kind(message) from None
    except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise StorageError(f"S3 unreachable on {key!r}: {exc}") from None


class S3Storage:
    """Keys below `prefix` in `bucket`. Credentials left empty come from the AWS chain
    (environment, profile, instance role)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str = "",
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        prefix: str = "",
        path_style: bool = False,
        part_size: int = 16 * 1024 * 1024,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_size = part_size
        self._session = aioboto3.Session(
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region or None,
        )
        self._boto_config = BotoConfig(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if path_style else "auto"},
            signature_version="s3v4",
            max_pool_connections=64,
            # Content digests are verified by the registry itself; botocore's default CRC
            # checksums would cost one more pass over every byte.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = None
        self._stack = AsyncExitStack()
        self._lock = anyio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    client = self._session.client(
                        "s3",
                        endpoint_url=self.endpoint_url or None,
                        config=self._boto_config,
                    )
                    self._client = await self._stack.enter_async_context(client)
        return self._client

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return self.prefix + key

    # -- protocol ------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        s3 = await self._s3()
        with _translate(key):
            head = await s3.head_object(Bucket=self.bucket, Key=self._key(key))
        return ObjectInfo(
            size=head["ContentLength"],
            version=head["ETag"],
            modified=head["LastModified"].timestamp(),
        )

    async def open(self, key: str) -> OpenObject:
        return _S3Object(self, key, (await self.stat(key)).size)

    async def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[BytesLike]:
        if end is not None and end <= start:
            await self.stat(key)
            return
        s3 = await self._s3()
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with _translate(key):
            response = await s3.get_object(**arguments)
        body = response["Body"]
        # The next block is fetched while the caller sends the current one.
        ahead: asyncio.Future[bytes] = asyncio.ensure_future(body.read(_READ_BLOCK))
        try:
            while True:
                with _translate(key):
                    block = await ahead
                if not block:
                    break
                ahead = asyncio.ensure_future(body.read(_READ_BLOCK))
                yield block
        finally:
            ahead.cancel()
            body.close()

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[BytesLike],
        verify: Callable[[], None] | None = None,
    ) -> int:
        s3 = await self._s3()
        target = self._key(key)
        pending: builtins.list[BytesLike] = []
        pending_size = 0
        upload: _MultipartUpload | None = None
        size = 0
        try:
            async for chunk in chunks:
                pending.append(chunk)
                pending_size += len(chunk)
                size += len(chunk)
                if pending_size > self.part_size:  # exactly one part's worth: a single PUT
                    if upload is None:
                        upload = await _MultipartUpload.start(s3, self.bucket, target)
                    await upload.add(b"".join(pending))
                    pending, pending_size = [], 0
            if verify is not None:
                verify()
            if upload is None:
                with _translate(key):
                    await s3.put_object(Bucket=self.bucket, Key=target, Body=b"".join(pending))
            else:
                if pending:
                    await upload.add(b"".join(pending))
                await upload.complete()
        except BaseException:
            if upload is not None:
                with anyio.CancelScope(shield=True):
                    await upload.abort()
            raise
        return size

    async def get_bytes(self, key: str) -> tuple[bytes, str]:
        s3 = await self._s3()
        with _translate(key):
            response = await s3.get_object(Bucket=self.bucket, Key=self._key(key))
            body = response["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
        return data, response["ETag"]

    async def put_bytes(self, key: str, data: bytes) -> str:
        s3 = await self._s3()
        with _translate(key):
            response = await s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        etag: str = response["ETag"]
        return etag

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        s3 = await self._s3()
        try:
            with _translate(key):
                await s3.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
        except PreconditionFailed:
            return False
        return True

    async def compare_and_swap(self, key: str, data: bytes, version: str) -> str:
        s3 = await self._s3()
        try:
            with _translate(key):
                response = await s3.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfMatch=version
                )
        except NotFound:
            raise PreconditionFailed(key) from None
        etag: str = response["ETag"]
        return etag

    async def delete(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        s3 = await self._s3()
        with _translate(key):
            await s3.delete_object(Bucket=self.bucket, Key=self._key(key))
        return True

    async def delete_if_version(self, key: str, version: str) -> bool:
        s3 = await self._s3()
        try:
            info = await self.stat(key)
            if info.version != version:
                return False
            with _translate(key):
                await s3.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=version)
        except (NotFound, PreconditionFailed):
            return False
        return True

    async def list(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> builtins.list[str]:
        if limit is not None and limit <= 0:
            return []
        s3 = await self._s3()
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after is not None and start_after >= prefix:
            arguments["StartAfter"] = self.prefix + start_after
        keys: builtins.list[str] = []
        while True:
            wanted = 1000 if limit is None else min(1000, limit - len(keys))
            with _translate(prefix):
                page = await s3.list_objects_v2(**arguments, MaxKeys=wanted)
            keys += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
            if not page.get("IsTruncated") or (limit is not None and len(keys) >= limit):
                return keys if limit is None else keys[:limit]
            arguments["ContinuationToken"] = page["NextContinuationToken"]
            arguments.pop("StartAfter", None)

    async def scan(self, prefix: str) -> AsyncIterator[builtins.list[str]]:
        s3 = await self._s3()
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        while True:  # continuation tokens, not StartAfter: nested keys are fine
            with _translate(prefix):
                page = await s3.list_objects_v2(**arguments, MaxKeys=1000)
            keys = [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
            if keys:
                yield keys
            if not page.get("IsTruncated"):
                return
            arguments["ContinuationToken"] = page["NextContinuationToken"]

    async def move(self, src: str, dst: str) -> None:
        info = await self.stat(src)
        s3 = await self._s3()
        source = {"Bucket": self.bucket, "Key": self._key(src)}
        if info.size <= MAX_SINGLE_COPY:
            with _translate(src):
                await s3.copy_object(Bucket=self.bucket, Key=self._key(dst), CopySource=source)
        else:
            step = max(self.part_size, -(-info.size // MAX_PARTS))
            await self._copy_ranges_into(dst, _ranges(source, info.size, step))
        with _translate(src):
            await s3.delete_object(**source)

    compose_min_part_size = MIN_PART_SIZE

    async def compose(self, sources: builtins.list[str], destination: str) -> None:
        """Concatenate objects into destination inside S3 (UploadPartCopy), without moving
        the bytes through this process. Every source but the last must be at least 5 MiB."""
        sizes = [info.size for info in await asyncio.gather(*map(self.stat, sources))]
        if any(size < MIN_PART_SIZE for size in sizes[:-1]):
            raise ValueError("only the last source may be smaller than the minimum part size")
        ranges = [
            copy_range
            for source, size in zip(sources, sizes, strict=True)
            for copy_range in _ranges(
                {"Bucket": self.bucket, "Key": self._key(source)}, size, MAX_SINGLE_COPY
            )
        ]
        await self._copy_ranges_into(destination, ranges)

    async def _copy_ranges_into(self, destination: str, ranges: builtins.list[_Range]) -> None:
        s3 = await self._s3()
        upload = await _MultipartUpload.start(s3, self.bucket, self._key(destination))
        try:
            await upload.copy_ranges(ranges)
            await upload.complete()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await upload.abort()
            raise

    async def ping(self) -> None:
        s3 = await self._s3()
        with _translate(self.bucket):
            await s3.head_bucket(Bucket=self.bucket)

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None

    # -- optional capabilities ----------------------------------------------------------------

    async def presigned_url(self, key: str, expires_in: int) -> str:
        """A URL that lets anyone holding it GET the object until it expires."""
        s3 = await self._s3()
        with _translate(key):
            url: str = await s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_in,
            )
        return url

    async def purge_incomplete_writes(self, older_than_seconds: float) -> int:
        """Abort multipart uploads below our prefix started longer ago than the given age."""
        s3 = await self._s3()
        cutoff = time.time() - older_than_seconds
        aborted = 0
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            with _translate(self.prefix):
                page = await s3.list_multipart_uploads(**arguments)
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < cutoff:
                    with contextlib.suppress(NotFound), _translate(upload["Key"]):
                        await s3.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
            if not page.get("IsTruncated"):
                return aborted
            arguments["KeyMarker"] = page["NextKeyMarker"]
            arguments["UploadIdMarker"] = page["NextUploadIdMarker"]


class _S3Object:
    """An object whose size was read; its bytes are fetched when read (S3 holds no handle)."""

    def __init__(self, storage: S3Storage, key: str, size: int) -> None:
        self.size = size
        self._storage, self._key = storage, key

    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[BytesLike]:
        whole = end is None or end >= self.size
        return self._storage.read(self._key, start, None if whole else end)

    async def aclose(self) -> None:
        return None


_Range = tuple[dict[str, str], int, int]  # (CopySource, first byte, last byte)


def _ranges(source: dict[str, str], size: int, step: int) -> list[_Range]:
    """Byte ranges of one object, in steps."""
    return [(source, start, min(start + step, size) - 1) for start in range(0, size, step)]


class _MultipartUpload:
    """One multipart upload; a part is sent in the background while the next is received."""

    def __init__(self, s3: Any, bucket: str, key: str, upload_id: str) -> None:
        self.s3, self.bucket, self.key, self.upload_id = s3, bucket, key, upload_id
        self.parts: list[dict[str, Any]] = []
        self._sending: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, s3: Any, bucket: str, key: str) -> _MultipartUpload:
        with _translate(key):
            response = await s3.create_multipart_upload(Bucket=bucket, Key=key)
        return cls(s3, bucket, key, response["UploadId"])

    async def add(self, data: bytes) -> None:
        """Start sending a part; first waits until the previous part was sent."""
        await self._wait()
        part = {"PartNumber": len(self.parts) + 1}
        self.parts.append(part)
        self._sending = asyncio.create_task(self._send(part, data))

    async def _send(self, part: dict[str, Any], data: bytes) -> None:
        with _translate(self.key):
            response = await self.s3.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=part["PartNumber"],
                Body=data,
            )
        part["ETag"] = response["ETag"]

    async def _wait(self) -> None:
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending

    async def copy_ranges(self, ranges: list[_Range]) -> None:
        """Add parts copied from byte ranges of other objects, several at a time."""
        first = len(self.parts) + 1
        parts: list[dict[str, Any]] = [{"PartNumber": first + i} for i in range(len(ranges))]
        self.parts += parts
        slots = asyncio.Semaphore(_PARALLEL_COPIES)

        async def copy(part: dict[str, Any], source: dict[str, str], start: int, end: int) -> None:
            async with slots:
                with _translate(self.key):
                    response = await self.s3.upload_part_copy(
                        Bucket=self.bucket,
                        Key=self.key,
                        UploadId=self.upload_id,
                        PartNumber=part["PartNumber"],
                        CopySource=source,
                        CopySourceRange=f"bytes={start}-{end}",
                    )
            part["ETag"] = response["CopyPartResult"]["ETag"]

        await asyncio.gather(*(copy(p, *r) for p, r in zip(parts, ranges, strict=True)))

    async def complete(self) -> None:
        await self._wait()
        with _translate(self.key):
            await self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )

    async def abort(self) -> None:
        if self._sending is not None:
            self._sending.cancel()
            with contextlib.suppress(BaseException):
                await self._sending
        with contextlib.suppress(StorageError), _translate(self.key):
            await self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
