"""Helpers for byte streams: coalescing, reading ahead, and hashing off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import anyio.to_thread

from registry.digest import Hasher
from registry.storage.protocol import BytesLike

BLOCK_SIZE = 1 << 20
READ_AHEAD_BLOCKS = 4


async def coalesce(
    chunks: AsyncIterable[BytesLike], block_size: int = BLOCK_SIZE
) -> AsyncIterator[bytes]:
    """Re-cut a stream into blocks of at least block_size bytes (the last may be shorter)."""
    pending: list[BytesLike] = []
    pending_size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= block_size:
            yield _joined(pending)
            pending, pending_size = [], 0
    if pending:
        yield _joined(pending)


def _joined(pieces: list[BytesLike]) -> bytes:
    only = pieces[0]
    if len(pieces) == 1 and isinstance(only, bytes):
        return only
    return b"".join(pieces)


async def read_ahead(
    blocks: AsyncIterable[bytes], depth: int = READ_AHEAD_BLOCKS
) -> AsyncIterator[bytes]:
    """Yield blocks, receiving up to depth more in a task while the consumer is busy.

    Without it the socket is not read while a block is hashed or written, so receiving and
    processing take turns instead of overlapping. Memory stays bounded by depth blocks.
    """
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(depth)

    async def produce() -> None:
        try:
            async for block in blocks:
                await queue.put(block)
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put(exc)
        else:
            await queue.put(None)

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        producer.cancel()


class Counter:
    def __init__(self) -> None:
        self.count = 0


async def hashed(
    chunks: AsyncIterable[BytesLike], hashers: list[Hasher], counter: Counter | None = None
) -> AsyncIterator[bytes]:
    """Pass blocks through, feeding each to the hashers in a worker thread (and counting).

    A block is handed on as soon as its hashing has started, so the consumer writes it while
    it is hashed; the hashers see the blocks in order, and the stream ends only after the
    last block has been hashed (a digest check after the stream sees the whole content).
    """
    hashing: asyncio.Task[None] | None = None
    try:
        async for block in read_ahead(coalesce(chunks)):
            if hashers:
                if hashing is not None:
                    await hashing
                hashing = asyncio.create_task(anyio.to_thread.run_sync(_update, hashers, block))
            if counter is not None:
                counter.count += len(block)
            yield block
        if hashing is not None:
            await hashing
    finally:
        if hashing is not None and not hashing.done():
            hashing.cancel()


def _update(hashers: list[Hasher], block: bytes) -> None:
    for h in hashers:
        h.update(block)
