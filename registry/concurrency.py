"""Awaiting independent storage calls together, with a bound on how many run at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")

# Per request: S3 connections are pooled (64 per process), and a manifest may name thousands
# of blobs.
MAX_CONCURRENT_CALLS = 16


async def all_of(*awaitables: Awaitable[T]) -> list[T]:
    """Await them concurrently and wait for every one (none is left running behind the
    caller); then raise the first failure in argument order, or return the results."""
    outcomes = await asyncio.gather(*awaitables, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)


async def map_bounded(
    func: Callable[[T], Awaitable[R]], items: Sequence[T], limit: int = MAX_CONCURRENT_CALLS
) -> list[R]:
    """func over items, at most `limit` at a time (a fixed pool of workers, so a long list
    costs no more tasks than that); results in the order of items."""
    results: list[R | None] = [None] * len(items)
    indexes = iter(range(len(items)))

    async def worker() -> None:
        for index in indexes:  # shared: each index goes to exactly one worker
            results[index] = await func(items[index])

    await all_of(*(worker() for _ in range(min(limit, len(items)))))
    return cast(list[R], results)


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """all_of for two awaitables of different types."""
    a, b = await all_of(first, second)
    return cast(A, a), cast(B, b)
