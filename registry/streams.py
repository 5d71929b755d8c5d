"""Helpers for byte streams: coalescing small chunks and hashing off the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import anyio.to_thread

from registry.digest import Hasher

BLOCK_SIZE = 1 << 20


async def coalesce(
    chunks: AsyncIterable[bytes], block_size: int = BLOCK_SIZE
) -> AsyncIterator[bytes]:
    """Re-cut a stream into blocks of at least block_size bytes (the last may be shorter)."""
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= block_size:
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_size = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else b"".join(pending)


class Counter:
    def __init__(self) -> None:
        self.count = 0


async def hashed(
    chunks: AsyncIterable[bytes], hashers: list[Hasher], counter: Counter | None = None
) -> AsyncIterator[bytes]:
    """Pass blocks through, feeding each to the hashers in a worker thread (and counting)."""
    async for block in coalesce(chunks):
        if hashers:
            await anyio.to_thread.run_sync(_update, hashers, block)
        if counter is not None:
            counter.count += len(block)
        yield block


def _update(hashers: list[Hasher], block: bytes) -> None:
    for h in hashers:
        h.update(block)
