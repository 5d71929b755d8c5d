"""Blob upload sessions, kept in storage so any process can continue them.

A session is a state object plus one part object per received chunk. The running hash of a
session lives in this process as a fast path; a process that lacks it re-hashes the parts.
Nothing becomes a blob until the digest given at completion matched the received bytes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from registry.digest import Digest, Hasher, new_hasher
from registry.errors import ErrorCode, RegistryError, UploadOutOfOrder
from registry.storage import layout
from registry.storage.protocol import (
    BytesLike,
    NotFound,
    PreconditionFailed,
    Storage,
    SupportsCompose,
    exists,
)
from registry.streams import Counter, hashed

RUNNING_HASH = "sha256"
_HASH_CACHE_SIZE = 4096
_PARALLEL_DELETES = 16


@dataclass(frozen=True, slots=True)
class Part:
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    repository: str
    size: int
    parts: tuple[Part, ...]
    started: float
    version: str

    def encode(self, size: int, parts: tuple[Part, ...]) -> bytes:
        return _encode_state(self.repository, size, parts, self.started)


def _unknown(upload_id: str) -> RegistryError:
    return RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id})


class Uploads:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        # upload id -> (offset, running hasher); bounded, and only a fast path.
        self._hashes: OrderedDict[str, tuple[int, Hasher]] = OrderedDict()

    async def start(self, repository: str) -> Session:
        upload_id = uuid.uuid4().hex
        now = time.time()
        data = _encode_state(repository, 0, (), now)
        await self.storage.put_if_absent(layout.upload_state(upload_id), data)
        session = Session(upload_id, repository, 0, (), now, "")
        self._remember(upload_id, 0, new_hasher(RUNNING_HASH))
        return session

    async def get(self, repository: str, upload_id: str) -> Session:
        try:
            uuid.UUID(hex=upload_id)
        except ValueError:
            raise _unknown(upload_id) from None
        if len(upload_id) != 32:
            raise _unknown(upload_id)
        try:
            data, version = await self.storage.get_bytes(layout.upload_state(upload_id))
        except NotFound:
            raise _unknown(upload_id) from None
        try:
            state = json.loads(data)
            parts = tuple(Part(key, size) for key, size in state["parts"])
            session = Session(
                upload_id, state["repository"], state["size"], parts, state["started"], version
            )
        except (ValueError, KeyError, TypeError):
            # Torn by a power loss (the filesystem does not fsync upload sessions): the client
            # has to start again, as after any lost session.
            raise _unknown(upload_id) from None
        if session.repository != repository:
            raise _unknown(upload_id)
        return session

    async def append(
        self,
        session: Session,
        chunks: AsyncIterable[bytes],
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> Session:
        """Add a chunk to the session; the part is kept only if it is exactly what was declared."""
        expected = expected_length(session, content_range, content_length)
        key = layout.upload_part(session.id, session.size, secrets.token_hex(8))
        cached = self._hashes.get(session.id)
        hasher = cached[1].copy() if cached and cached[0] == session.size else None
        written = await self.storage.write(key, hashed(chunks, [hasher] if hasher else []))
        if expected is not None and written != expected:
            await self.storage.delete(key)
            raise RegistryError(
                ErrorCode.SIZE_INVALID,
                f"received {written} bytes, expected {expected}",
                {"received": written, "expected": expected},
            )
        if written == 0:
            await self.storage.delete(key)
            return session
        parts = (*session.parts, Part(key, written))
        size = session.size + written
        try:
            version = await self.storage.compare_and_swap(
                layout.upload_state(session.id),
                session.encode(size=size, parts=parts),
                session.version,
            )
        except PreconditionFailed:
            await self.storage.delete(key)
            self._forget(session.id)
            current = await self.get(session.repository, session.id)
            raise _out_of_order("the upload moved on concurrently", current) from None
        if hasher is not None:
            self._remember(session.id, size, hasher)
        else:
            self._forget(session.id)
        return Session(session.id, session.repository, size, parts, session.started, version)

    async def complete(self, session: Session, digest: Digest, destination: str) -> None:
        """Verify the session's bytes against digest and place them at destination.

        The session is consumed either way: a mismatch is DIGEST_INVALID and stores nothing.
        """
        try:
            claimed = await self.storage.delete_if_version(
                layout.upload_state(session.id), session.version
            )
        except NotFound:
            claimed = False
        if not claimed:
            raise _unknown(session.id)
        try:
            stored = await exists(self.storage, destination)
            running = self._running_digest(session, digest.algorithm)
            if running is not None:
                _check(running, digest)
            elif stored or len(session.parts) <= 1:
                _check(await self._rehash(session, digest.algorithm), digest)
            else:  # re-hash while assembling, in one pass
                hasher = new_hasher(digest.algorithm)
                await self.storage.write(
                    destination,
                    hashed(self._read_parts(session), [hasher]),
                    lambda: _check(Digest(digest.algorithm, hasher.hexdigest()), digest),
                )
                return
            if not stored:
                await self._place(session, destination)
        finally:
            await self.discard(session)

    async def cancel(self, session: Session) -> None:
        await self.storage.delete(layout.upload_state(session.id))
        await self.discard(session)

    async def discard(self, session: Session) -> None:
        self._forget(session.id)
        for first in range(0, len(session.parts), _PARALLEL_DELETES):
            batch = session.parts[first : first + _PARALLEL_DELETES]
            await asyncio.gather(*(self.storage.delete(part.key) for part in batch))

    async def receive_whole(
        self,
        chunks: AsyncIterable[bytes],
        digest: Digest,
        destination: str,
        content_length: int | None,
    ) -> None:
        """Receive a whole blob in one request straight to destination, if it matches digest."""
        hasher = new_hasher(digest.algorithm)
        counter = Counter()

        def verify() -> None:
            if content_length is not None and counter.count != content_length:
                raise RegistryError(
                    ErrorCode.SIZE_INVALID,
                    f"received {counter.count} bytes, expected {content_length}",
                )
            _check(Digest(digest.algorithm, hasher.hexdigest()), digest)

        body = hashed(chunks, [hasher], counter)
        if await exists(self.storage, destination):
            async for _ in body:  # already stored: only check what the client claims
                pass
            verify()
        else:
            await self.storage.write(destination, body, verify)

    async def purge(self, max_age: float) -> int:
        """Delete every upload whose objects were all left untouched for max_age seconds.

        Returns how many objects were removed. An upload in use always has a fresh state
        object (each chunk rewrites it), so its older parts are kept.
        """
        cutoff = time.time() - max_age
        removed = 0
        group: list[str] = []
        async for key in self._upload_keys():
            if group and layout.upload_id_of(key) != layout.upload_id_of(group[0]):
                removed += await self._purge_if_stale(group, cutoff)
                group = []
            group.append(key)
        if group:
            removed += await self._purge_if_stale(group, cutoff)
        return removed

    async def _upload_keys(self) -> AsyncIterator[str]:
        """Every key below the uploads prefix, in order (an upload's keys are contiguous)."""
        start_after: str | None = None
        while keys := await self.storage.list(layout.UPLOADS_PREFIX, start_after, 1000):
            for key in keys:
                yield key
            start_after = keys[-1]

    async def _purge_if_stale(self, keys: list[str], cutoff: float) -> int:
        for key in keys:
            try:
                if (await self.storage.stat(key)).modified >= cutoff:
                    return 0
            except NotFound:
                continue
        return sum([await self.storage.delete(key) for key in keys])

    # -- internals -----------------------------------------------------------------------------

    def _running_digest(self, session: Session, algorithm: str) -> Digest | None:
        cached = self._hashes.get(session.id)
        if algorithm == RUNNING_HASH and cached and cached[0] == session.size:
            return Digest(algorithm, cached[1].hexdigest())
        return None

    async def _rehash(self, session: Session, algorithm: str) -> Digest:
        hasher = new_hasher(algorithm)
        async for _ in hashed(self._read_parts(session), [hasher]):
            pass
        return Digest(algorithm, hasher.hexdigest())

    async def _read_parts(self, session: Session) -> AsyncIterator[BytesLike]:
        for part in session.parts:
            async for block in self.storage.read(part.key):
                yield block

    async def _place(self, session: Session, destination: str) -> None:
        if not session.parts:
            await self.storage.put_bytes(destination, b"")
        elif len(session.parts) == 1:
            await self.storage.move(session.parts[0].key, destination)
        elif isinstance(self.storage, SupportsCompose) and all(
            part.size >= self.storage.compose_min_part_size for part in session.parts[:-1]
        ):
            await self.storage.compose([part.key for part in session.parts], destination)
        else:
            await self.storage.write(destination, self._read_parts(session))

    def _remember(self, upload_id: str, offset: int, hasher: Hasher) -> None:
        self._hashes[upload_id] = (offset, hasher)
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > _HASH_CACHE_SIZE:
            self._hashes.popitem(last=False)

    def _forget(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)


def _out_of_order(message: str, session: Session) -> UploadOutOfOrder:
    return UploadOutOfOrder(message, session.repository, session.id, session.size)


def _check(actual: Digest, expected: Digest) -> None:
    if actual != expected:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID,
            f"content digest is {actual}, not {expected}",
            {"expected": str(expected), "actual": str(actual)},
        )


def _encode_state(repository: str, size: int, parts: tuple[Part, ...], started: float) -> bytes:
    state = {
        "repository": repository,
        "size": size,
        "parts": [[p.key, p.size] for p in parts],
        "started": started,
        "updated": time.time(),
    }
    return json.dumps(state, separators=(",", ":")).encode()


def expected_length(
    session: Session, content_range: tuple[int, int] | None, content_length: int | None
) -> int | None:
    """How many bytes a chunk must have, if declared; 416/400 when the declaration is wrong."""
    if content_range is None:
        return content_length
    start, end = content_range
    if start != session.size:
        message = f"chunk starts at {start} but the upload holds {session.size} bytes"
        raise _out_of_order(message, session)
    if end < start:
        raise _out_of_order(f"invalid chunk range {start}-{end}", session)
    length = end - start + 1
    if content_length is not None and content_length != length:
        raise RegistryError(
            ErrorCode.SIZE_INVALID,
            f"declared length {content_length} does not match the chunk range {start}-{end}",
        )
    return length
