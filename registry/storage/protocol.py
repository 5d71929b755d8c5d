"""The Storage protocol every driver implements: opaque bytes at string keys.

A driver knows nothing of OCI. Keys are `/`-separated, never empty, and never contain
`.` or `..` components; `layout.py` is the only place that builds them.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """The storage backend failed or could not be reached.

    The message is for the operator's log (it may name paths and system errors), never for
    clients: the HTTP layer answers with a fixed message per type."""


class StorageFull(StorageError):
    """No space or quota left (ENOSPC, EDQUOT; an S3 service's quota)."""


class StorageReadOnly(StorageError):
    """The storage refuses writes (EROFS)."""


class StorageDenied(StorageError):
    """The storage refuses access (EACCES, EPERM; S3 AccessDenied, bad credentials)."""


class KeyTooLong(StorageError):
    """A key longer than the storage accepts (ENAMETOOLONG; S3 KeyTooLongError): an object
    at it cannot exist."""


class NotFound(StorageError):
    """No object at that key."""


class PreconditionFailed(StorageError):
    """A conditional write lost: the object exists, or changed since it was read."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    version: str
    modified: float


# What reads yield: bytes, or a view of memory the driver maps (the filesystem's page cache).
BytesLike = bytes | memoryview


class OpenObject(Protocol):
    """An object opened for reading; its size is known from the moment it was opened."""

    @property
    def size(self) -> int: ...

    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[BytesLike]:
        """Stream bytes [start, end) of the object (once); it is closed when the stream ends."""
        ...

    async def aclose(self) -> None:
        """Close it (again: a no-op), also when it was never read."""
        ...


@runtime_checkable
class Storage(Protocol):
    async def stat(self, key: str) -> ObjectInfo:
        """Size and version of the object; raises NotFound."""
        ...

    async def open(self, key: str) -> OpenObject:
        """Open the object for one read; raises NotFound (or another StorageError) now, not
        when the first byte is read."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[BytesLike]:
        """Stream bytes [start, end) of the object; raises NotFound on first iteration."""
        ...

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[BytesLike],
        verify: Callable[[], None] | None = None,
    ) -> int:
        """Store the stream at key atomically (whole or not at all); returns its size.

        `verify` runs after the last chunk and before the object becomes visible; if it
        raises, nothing is stored and the exception propagates.
        """
        ...

    async def get_bytes(self, key: str) -> tuple[bytes, str]:
        """A small object's content and version; raises NotFound."""
        ...

    async def put_bytes(self, key: str, data: bytes) -> str:
        """Store a small object atomically, replacing any; returns its version."""
        ...

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store only if nothing is at key; False if something already was."""
        ...

    async def compare_and_swap(self, key: str, data: bytes, version: str) -> str:
        """Replace the object only if its version is still `version`; raises PreconditionFailed."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the object; False if there was none."""
        ...

    async def delete_if_version(self, key: str, version: str) -> bool:
        """Remove the object only if its version is still `version`."""
        ...

    async def list(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Keys starting with prefix, strictly after start_after, at most limit.

        Keys with no further `/` below the prefix come in byte order. Where keys do nest
        below the prefix, every key is listed and a nested group stays together, but its
        place and how start_after skips into it differ between S3 services; the registry
        pages only through flat prefixes (see layout.py).
        """
        ...

    def scan(self, prefix: str) -> AsyncIterator[builtins.list[str]]:
        """Every key below prefix, nested or not, in batches, in no particular order, holding
        only a batch in memory: for a walk over everything (garbage collection), where `list`
        pages would cost a scan of a huge directory each. A key present for the whole scan is
        yielded exactly once; one added or removed meanwhile, at most once."""
        ...

    async def move(self, src: str, dst: str) -> None:
        """Make src's object appear at dst atomically (replacing dst), then remove src."""
        ...

    async def ping(self) -> None:
        """Raise StorageError if the backend cannot serve requests."""
        ...

    async def aclose(self) -> None: ...


async def exists(storage: Storage, key: str) -> bool:
    try:
        await storage.stat(key)
    except NotFound:
        return False
    return True


@runtime_checkable
class SupportsRedirect(Protocol):
    """Storage whose objects clients can fetch directly with a presigned URL."""

    async def presigned_url(self, key: str, expires_in: int) -> str: ...


@runtime_checkable
class SupportsIncompleteWritePurge(Protocol):
    """Storage that can leave unfinished writes behind (S3 multipart uploads) and purge them."""

    async def purge_incomplete_writes(self, older_than_seconds: float) -> int: ...


@runtime_checkable
class SupportsTempFilePurge(Protocol):
    """Storage that writes through temporary files of its own, which a crash leaves behind."""

    async def purge_stale_temp_files(self, older_than_seconds: float) -> int: ...


@runtime_checkable
class SupportsCompose(Protocol):
    """Storage that can concatenate objects without reading them back through us (S3
    UploadPartCopy, the kernel's copy_file_range)."""

    # Every source but the last must be at least this long (0: no minimum).
    compose_min_part_size: int

    async def compose(self, sources: list[str], destination: str) -> None:
        """Raises ValueError when the sources do not qualify (e.g. too small parts). The
        sources are left in an unspecified state: they are meant to be deleted afterwards."""
        ...
