"""A reconciliation of a namespace's quota racing with a push, each stopped at the step that
matters (registry/quota.py gives the argument): the push between its charge and its link,
the reconciliation between reading a marker and deleting it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from registry.config import NamespaceConfig
from registry.digest import Digest
from registry.namespaces import Namespaces
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import Storage
from registry.units import ByteSize
from tests.service.gates import ACTOR, GATED_CALLS

pytestmark = pytest.mark.anyio
NAMESPACES = Namespaces((NamespaceConfig(pattern="ns/**", quota=ByteSize(1 << 20)),))
NAMESPACE = next(iter(NAMESPACES))


class PauseAt:
    """Stops the `actor`'s storage call `operation` on a key containing `part` (the first
    such call, or the one after `after` of them), after the call completed, until released;
    every other call passes straight through."""

    def __init__(
        self, inner: Storage, actor: str, operation: str, part: str, after: int = 0
    ) -> None:
        self.inner, self.actor, self.operation, self.part = inner, actor, operation, part
        self.after = after
        self.reached, self.released = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in GATED_CALLS:
            return attribute

        async def gated(*args: Any, **kwargs: Any) -> Any:
            result = await attribute(*args, **kwargs)
            stop = ACTOR.get() == self.actor and name == self.operation and self.part in args[0]
            if stop and self.after:
                self.after -= 1
            elif stop and not self.reached.is_set():
                self.reached.set()
                await self.released.wait()
            return result

        return gated


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def digest(data: bytes) -> Digest:
    return Digest.of(data)


async def as_actor(actor: str, operation: Callable[[], Awaitable[None]]) -> None:
    ACTOR.set(actor)
    await operation()


async def used(registry: Registry) -> int:
    return await registry.quotas.used(NAMESPACE)


def marker(data: bytes) -> str:
    return layout.namespace_charged(NAMESPACE.key, "blobs", digest(data))


async def test_a_push_between_its_charge_and_its_link_keeps_its_marker_through_a_reconciliation(
    driver: Storage,
) -> None:
    gate = PauseAt(driver, "push", "put_if_absent", "/charged/blobs/")
    registry = Registry(gate, namespaces=NAMESPACES)  # type: ignore[arg-type]
    data = os.urandom(1000)
    push = asyncio.create_task(
        as_actor("push", lambda: registry.push_blob("ns/a", digest(data), body(data), len(data)))
    )
    await asyncio.wait_for(gate.reached.wait(), 10)
    # Charged, not linked: the marker is younger than the settle, so it stays.
    result = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=2.0)
    assert result.returned == 0 and result.used == 1000
    gate.released.set()
    await asyncio.wait_for(push, 10)
    assert await used(registry) == 1000
    await driver.stat(marker(data))
    await driver.stat(layout.blob_link("ns/a", digest(data)))
    again = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=0.0)
    assert (again.added, again.returned, again.used) == (0, 0, 1000)


async def test_a_marker_a_reconciliation_took_from_a_slow_push_is_counted_again_by_the_next(
    driver: Storage,
) -> None:
    """The documented inexact window: a push slower than the settle between charge and link
    loses its marker; it is uncounted until the next reconciliation (at most the uploads in
    flight), which counts it again."""
    gate = PauseAt(driver, "push", "put_if_absent", "/charged/blobs/")
    registry = Registry(gate, namespaces=NAMESPACES)  # type: ignore[arg-type]
    data = os.urandom(1000)
    push = asyncio.create_task(
        as_actor("push", lambda: registry.push_blob("ns/a", digest(data), body(data), len(data)))
    )
    await asyncio.wait_for(gate.reached.wait(), 10)
    await asyncio.sleep(1.1)  # older than the settle below (S3 times are whole seconds)
    taken = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=0.0)
    assert taken.returned == 1000 and taken.used == 0
    gate.released.set()
    await asyncio.wait_for(push, 10)
    assert await used(registry) == 0  # the window: linked, uncounted
    again = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=0.0)
    assert (again.added, again.used) == (1000, 1000)


async def test_a_push_touching_an_old_marker_wins_over_a_reconciliation_about_to_delete_it(
    driver: Storage,
) -> None:
    # (after the marker's read in the usage check that opens a reconciliation)
    gate = PauseAt(driver, "reconcile", "get_bytes", "/charged/blobs/", after=1)
    registry = Registry(gate, namespaces=NAMESPACES)  # type: ignore[arg-type]
    data = os.urandom(1000)
    await registry.push_blob("ns/a", digest(data), body(data), len(data))
    await registry.delete_blob("ns/a", digest(data))  # counted, no longer linked
    await asyncio.sleep(1.1)  # the marker is older than the settle
    reconcile_result: list[int] = []

    async def reconcile() -> None:
        result = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=1.0)
        reconcile_result.append(result.returned)

    reconciling = asyncio.create_task(as_actor("reconcile", reconcile))
    await asyncio.wait_for(gate.reached.wait(), 10)
    # The reconciliation read the old marker's version; a push to another repository of the
    # namespace touches the marker and links the blob.
    started = time.monotonic()
    await registry.push_blob("ns/b", digest(data), body(data), len(data))
    assert time.monotonic() - started < 5
    gate.released.set()
    await asyncio.wait_for(reconciling, 10)
    assert reconcile_result == [0]
    assert await used(registry) == 1000
    await driver.stat(marker(data))
    final = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=0.0)
    assert (final.added, final.returned, final.used) == (0, 0, 1000)


async def test_a_push_between_its_reservation_and_its_marker_is_not_taken_for_a_leak(
    driver: Storage,
) -> None:
    """The usage check of a reconciliation (registry/quota.py): its first measurement catches
    a push that has reserved and not yet written its marker; the push finishes within the
    settle, so the second measurement does not, and nothing is taken off the usage."""
    push_gate = PauseAt(driver, "push", "compare_and_swap", "/usage")
    # The reconciliation stops after its second read of the usage (the second measurement's).
    gate = PauseAt(push_gate, "reconcile", "get_bytes", "/usage", after=1)
    registry = Registry(gate, namespaces=NAMESPACES)  # type: ignore[arg-type]
    first, second = os.urandom(700), os.urandom(1000)
    await registry.push_blob("ns/a", digest(first), body(first), len(first))  # makes the usage
    push = asyncio.create_task(
        as_actor(
            "push", lambda: registry.push_blob("ns/a", digest(second), body(second), len(second))
        )
    )
    await asyncio.wait_for(push_gate.reached.wait(), 10)  # reserved, no marker yet
    results: list[tuple[int, int]] = []

    async def reconcile() -> None:
        result = await registry.quotas.reconcile(NAMESPACES, NAMESPACE, settle=1.0)
        results.append((result.corrected, result.used))

    reconciling = asyncio.create_task(as_actor("reconcile", reconcile))
    await asyncio.wait_for(gate.reached.wait(), 10)  # measured once with the push in flight
    push_gate.released.set()
    await asyncio.wait_for(push, 10)
    gate.released.set()
    await asyncio.wait_for(reconciling, 10)
    assert results == [(0, 1700)]
    assert await used(registry) == 1700
