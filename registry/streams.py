"""Helpers for byte streams: re-cutting into blocks read ahead, and hashing off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import anyio.to_thread

from registry.digest import Hasher
from registry.storage.protocol import BytesLike

BLOCK_SIZE = 1 << 20
READ_AHEAD_BLOCKS = 4
HOLD_SECONDS = 0.25


async def blocks(
    chunks: AsyncIterable[BytesLike],
    block_size: int = BLOCK_SIZE,
    depth: int = READ_AHEAD_BLOCKS,
    hold_at_most: float = HOLD_SECONDS,
) -> AsyncIterator[bytes]:
    """Re-cut a stream into blocks of block_size bytes, received up to depth blocks ahead.

    Receiving runs in a task, so the socket is read while the consumer hashes or writes a
    block. Bytes wait for the rest of their block at most hold_at_most seconds, then go on
    as a shorter block: a slow or stalled sender costs little memory, however it paces its
    bytes (the body timeout ends a stalled one later).
    """
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(depth)
    pending: list[BytesLike] = []
    pending_size = 0
    pending_since = 0.0
    loop = asyncio.get_running_loop()
    ticker: asyncio.TimerHandle | None = None

    def take_pending() -> bytes:
        nonlocal pending, pending_size
        block = _joined(pending)
        pending, pending_size = [], 0
        return block

    def hand_on_old_bytes() -> None:
        nonlocal ticker
        if pending and loop.time() - pending_since >= hold_at_most and not queue.full():
            queue.put_nowait(take_pending())
        ticker = loop.call_later(hold_at_most / 2, hand_on_old_bytes)

    async def produce() -> None:
        nonlocal pending_size, pending_since
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if not pending:
                    pending_since = loop.time()
                pending.append(chunk)
                pending_size += len(chunk)
                del chunk
                if pending_size >= block_size:
                    await queue.put(take_pending())
            if pending:
                await queue.put(take_pending())
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put(exc)
        else:
            await queue.put(None)

    ticker = loop.call_later(hold_at_most / 2, hand_on_old_bytes)
    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
            del item
    finally:
        if ticker is not None:
            ticker.cancel()
        producer.cancel()


def _joined(pieces: list[BytesLike]) -> bytes:
    only = pieces[0]
    if len(pieces) == 1 and isinstance(only, bytes):
        return only
    return b"".join(pieces)


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
        async for block in blocks(chunks):
            if hashers:
                if hashing is not None:
                    await hashing
                hashing = asyncio.create_task(anyio.to_thread.run_sync(_update, hashers, block))
            if counter is not None:
                counter.count += len(block)
            yield block
            del block  # not held while the next one is awaited (a stalled client's last block)
        if hashing is not None:
            await hashing
    finally:
        if hashing is not None and not hashing.done():
            hashing.cancel()


def _update(hashers: list[Hasher], block: bytes) -> None:
    for h in hashers:
        h.update(block)
