"""A storage driver wrapper that counts the storage round trips made one after another.

Each call gets a depth: one more than the deepest call that had completed when it started.
Calls started together (awaited concurrently) share a depth, so the deepest depth is the
number of round trips a request waits for in sequence. Every call first yields to the event
loop SETTLE_YIELDS times (each lets every ready task take a step), so calls started together,
even from tasks nested a few levels deep, all start before any of them completes, also on a
driver that answers without waiting (the filesystem's stat): asyncio runs ready tasks in
order, so the count does not depend on timing.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from registry.storage.protocol import BytesLike, ObjectInfo, OpenObject, Storage

T = TypeVar("T")
SETTLE_YIELDS = 20  # far more than the nesting of tasks that start storage calls together


@dataclass(frozen=True)
class Call:
    operation: str
    key: str
    depth: int


class CountingStorage:
    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.calls: builtins.list[Call] = []
        self._finished_depth = 0

    def __getattr__(self, name: str) -> Any:  # optional capabilities, uncounted
        return getattr(self.inner, name)

    def reset(self) -> None:
        self.calls, self._finished_depth = [], 0

    @property
    def sequential(self) -> int:
        """Round trips made one after another since the last reset."""
        return max((call.depth for call in self.calls), default=0)

    async def _counted(self, operation: str, key: str, call: Callable[[], Awaitable[T]]) -> T:
        depth = self._finished_depth + 1
        await _settle()
        try:
            return await call()
        finally:
            self.calls.append(Call(operation, key, depth))
            self._finished_depth = max(self._finished_depth, depth)

    async def stat(self, key: str) -> ObjectInfo:
        return await self._counted("stat", key, lambda: self.inner.stat(key))

    async def open(self, key: str) -> OpenObject:
        opened = await self._counted("open", key, lambda: self.inner.open(key))
        return _CountedObject(self, key, opened)

    async def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[BytesLike]:
        async for block in self._counted_read(key, self.inner.read(key, start, end)):
            yield block

    async def _counted_read(
        self, key: str, blocks: AsyncIterator[BytesLike]
    ) -> AsyncIterator[BytesLike]:
        depth = self._finished_depth + 1
        await _settle()
        try:
            async for block in blocks:
                yield block
        finally:
            self.calls.append(Call("read", key, depth))
            self._finished_depth = max(self._finished_depth, depth)

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[BytesLike],
        verify: Callable[[], None] | None = None,
    ) -> int:
        return await self._counted("write", key, lambda: self.inner.write(key, chunks, verify))

    async def get_bytes(self, key: str) -> tuple[bytes, str]:
        return await self._counted("get_bytes", key, lambda: self.inner.get_bytes(key))

    async def put_bytes(self, key: str, data: bytes) -> str:
        return await self._counted("put_bytes", key, lambda: self.inner.put_bytes(key, data))

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        return await self._counted(
            "put_if_absent", key, lambda: self.inner.put_if_absent(key, data)
        )

    async def compare_and_swap(self, key: str, data: bytes, version: str) -> str:
        return await self._counted(
            "compare_and_swap", key, lambda: self.inner.compare_and_swap(key, data, version)
        )

    async def delete(self, key: str) -> bool:
        return await self._counted("delete", key, lambda: self.inner.delete(key))

    async def delete_if_version(self, key: str, version: str) -> bool:
        return await self._counted(
            "delete_if_version", key, lambda: self.inner.delete_if_version(key, version)
        )

    async def list(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> builtins.list[str]:
        return await self._counted(
            "list", prefix, lambda: self.inner.list(prefix, start_after, limit)
        )

    async def move(self, src: str, dst: str) -> None:
        await self._counted("move", src, lambda: self.inner.move(src, dst))

    async def ping(self) -> None:
        await self._counted("ping", "", self.inner.ping)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CountedObject:
    def __init__(self, storage: CountingStorage, key: str, inner: OpenObject) -> None:
        self.storage, self.key, self.inner = storage, key, inner

    @property
    def size(self) -> int:
        return self.inner.size

    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[BytesLike]:
        return self.storage._counted_read(self.key, self.inner.read(start, end))

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _settle() -> None:
    for _ in range(SETTLE_YIELDS):
        await asyncio.sleep(0)
