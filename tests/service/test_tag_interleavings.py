"""Tag writes, tag moves, untags and manifest deletes interleaved at every storage call.

One operation is stopped right before, or right after, each of its storage calls in turn
(gates.py); meanwhile a second operation, on another registry instance sharing the storage
(a second replica), runs to completion; then the first one finishes. Or the first one dies at
that call (a process crash) and the second runs after it. Every time, a third instance with
an empty cache checks the invariants of docs/tags.md: every listed tag resolves, by tag and
by the digest it names, and deleting every manifest by digest leaves no tag behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from registry.digest import Digest
from registry.errors import ErrorCode, RegistryError
from registry.service import Registry
from registry.storage.protocol import Storage
from testkit.oci import OCI_CONFIG, OCI_MANIFEST
from tests.service.gates import ACTOR, GatedStorage, Mode, SimulatedCrash

pytestmark = pytest.mark.anyio
MANIFESTS = ("a", "b")
MAX_STEPS = 60  # far more storage calls than any of these operations makes


@dataclass(frozen=True)
class Scenario:
    """`stopped` is held at each of its calls while `other` runs; tags start as `initial`."""

    stopped: str
    other: str
    initial: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        start = ",".join(f"{t}={m}" for t, m in self.initial) or "untagged"
        return f"{self.stopped} | {self.other} | {start}"


SCENARIOS = [
    # a tag PUT and a DELETE of the manifest it names
    Scenario("put t a", "delete a"),
    Scenario("put t a", "delete a", (("t", "b"),)),
    Scenario("put t a", "delete a", (("t", "a"), ("u", "a"))),
    Scenario("delete a", "put t a"),
    Scenario("delete a", "put t a", (("t", "b"),)),
    Scenario("delete a", "put t a", (("t", "a"), ("u", "a"))),
    # a tag moving while it moves elsewhere, or back
    Scenario("put t a", "put t b"),
    Scenario("put t a", "put t b", (("t", "b"),)),
    Scenario("put t b", "put t a", (("t", "a"),)),
    Scenario("put t a", "put t a", (("t", "b"),)),
    # a tag moving away from a manifest being deleted, and onto it
    Scenario("put t a", "delete b", (("t", "b"),)),
    Scenario("delete b", "put t a", (("t", "b"),)),
    Scenario("delete a", "put t b", (("t", "a"),)),
    # untagging against tagging, and two deletes of one manifest
    Scenario("untag t", "put t a", (("t", "b"),)),
    Scenario("put t a", "untag t", (("t", "b"),)),
    Scenario("untag t", "put t b", (("t", "b"),)),
    Scenario("delete a", "delete a", (("t", "a"),)),
]


async def _blob(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _setup(registry: Registry, repository: str, initial: Scenario) -> dict[str, bytes]:
    config = b'{"architecture":"amd64","os":"linux"}'
    await registry.push_blob(repository, Digest.of(config), _blob(config), len(config))
    manifests: dict[str, bytes] = {}
    for name in MANIFESTS:
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": str(Digest.of(config)), "size": 37},
            "layers": [],
            "annotations": {"name": name},
        }
        manifests[name] = json.dumps(document).encode()
        await registry.put_manifest(
            repository, Digest.of(manifests[name]), manifests[name], OCI_MANIFEST
        )
    for tag, name in initial.initial:
        await registry.put_manifest(repository, tag, manifests[name], OCI_MANIFEST)
    return manifests


async def run_operation(
    registry: Registry,
    repository: str,
    manifests: dict[str, bytes],
    operation: str,
    expected: tuple[ErrorCode, ...] = (ErrorCode.MANIFEST_UNKNOWN,),
) -> str:
    """Run `put TAG NAME`, `delete NAME` (by digest) or `untag TAG`: "ok", or the code of an
    `expected` refusal (by default: the other operation removed it first)."""
    verb, *arguments = operation.split()
    try:
        if verb == "put":
            tag, name = arguments
            await registry.put_manifest(repository, tag, manifests[name], OCI_MANIFEST)
        elif verb == "delete":
            await registry.delete_manifest(repository, Digest.of(manifests[arguments[0]]))
        else:
            await registry.delete_manifest(repository, arguments[0])
    except RegistryError as error:
        if error.code not in expected:
            raise
        return error.code.name
    return "ok"


async def violations(storage: Storage, repository: str, manifests: dict[str, bytes]) -> list[str]:
    """What breaks the invariants, seen by a registry without a cache; then deletes every
    manifest by digest, which must take every tag with it."""
    reader = Registry(storage)
    found: list[str] = []
    for tag in (await reader.list_tags(repository, 100, None)).items:
        try:
            by_tag = await reader.get_manifest(repository, tag)
        except RegistryError as error:
            found.append(f"listed tag {tag}: {error}")
            continue
        try:
            by_digest = await reader.get_manifest(repository, by_tag.digest)
        except RegistryError as error:
            found.append(f"tag {tag} names {by_tag.digest}: {error}")
            continue
        if by_digest.body != by_tag.body:
            found.append(f"tag {tag} and {by_tag.digest} serve different bytes")
    for body in manifests.values():
        try:
            await reader.delete_manifest(repository, Digest.of(body))
        except RegistryError as error:
            if error.code != ErrorCode.MANIFEST_UNKNOWN:
                found.append(f"deleting {Digest.of(body)}: {error}")
    survivors = (await reader.list_tags(repository, 100, None)).items
    if survivors:
        found.append(f"tags {survivors} outlived the deletion of every manifest")
    return found


async def _interleave(
    driver: Storage, scenario: Scenario, step: int, mode: Mode
) -> tuple[bool, list[str], list[str]]:
    """Stop `scenario.stopped` at `step` (or crash it there), run `scenario.other` meanwhile.

    Returns whether the step was reached, the stopped operation's calls, and the violations."""
    gated = GatedStorage(driver)
    first = Registry(gated)  # type: ignore[arg-type]  # a Storage in all but name
    second = Registry(gated)  # type: ignore[arg-type]
    repository = f"il/{uuid.uuid4().hex[:12]}"
    manifests = await _setup(second, repository, scenario)
    gated.stop("stopped", step, mode)

    async def stopped() -> None:
        ACTOR.set("stopped")
        await run_operation(first, repository, manifests, scenario.stopped)

    task = asyncio.create_task(stopped())
    reached = asyncio.create_task(gated.reached.wait())
    await asyncio.wait({task, reached}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
    was_reached = gated.reached.is_set()
    reached.cancel()
    if mode == "crash":
        with contextlib.suppress(SimulatedCrash):
            await task
        await run_operation(second, repository, manifests, scenario.other)
    else:
        await run_operation(second, repository, manifests, scenario.other)
        gated.released.set()
        await asyncio.wait_for(task, 60)
    return was_reached, gated.calls, await violations(driver, repository, manifests)


Interleave = Callable[
    [Storage, Scenario, int, Mode], Awaitable[tuple[bool, list[str], list[str]]]
]


async def every_interleaving(
    driver: Storage, scenario: Scenario, interleave: Interleave
) -> tuple[int, list[str]]:
    """Stop the scenario's first operation at each of its storage calls in turn (before the
    call, after it, and as a crash there) and run the other then; how many calls it made,
    and what broke at which."""
    failures: list[str] = []
    steps = 0
    for step in range(1, MAX_STEPS + 1):
        reached_any = False
        for mode in ("before", "after", "crash"):
            reached, calls, found = await interleave(driver, scenario, step, mode)
            reached_any |= reached
            if reached and found:
                failures.append(f"{mode} call {step} ({calls[step - 1]}): {'; '.join(found)}")
        if not reached_any:
            break
        steps = step
    return steps, failures


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_every_interleaving_at_a_storage_call_keeps_tags_consistent(
    driver: Storage, scenario: Scenario
) -> None:
    steps, failures = await every_interleaving(driver, scenario, _interleave)
    assert steps >= 3, "the stopped operation made almost no storage calls"
    assert steps < MAX_STEPS
    assert not failures, f"{len(failures)} interleavings broke the invariants:\n" + "\n".join(
        failures
    )
