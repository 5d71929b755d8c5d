"""Immutable tags in the service, on each driver: a re-push of the digest an immutable tag
names writes nothing, and pushes, untags and deletes by digest interleaved at every storage
call (gates.py, as in test_tag_interleavings.py) never move or remove an immutable tag once
set: of two pushes that both read it absent, exactly one wins and the other is DENIED."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.config import NamespaceConfig
from registry.digest import Digest
from registry.errors import ErrorCode, RegistryError
from registry.namespaces import Namespaces
from registry.service import Registry
from registry.storage.filesystem import FilesystemStorage
from registry.storage.protocol import Storage
from testkit.oci import OCI_MANIFEST
from tests.service.counting import CountingStorage
from tests.service.gates import ACTOR, GatedStorage, Mode, SimulatedCrash
from tests.service.test_tag_interleavings import (
    MAX_STEPS,
    Scenario,
    _setup,
    every_interleaving,
    run_operation,
    violations,
)

pytestmark = pytest.mark.anyio
NAMESPACES = Namespaces((NamespaceConfig(pattern="im/**", immutable_tags=("t", "v*")),))
WRITES = {"put_bytes", "put_if_absent", "compare_and_swap", "delete", "delete_if_version", "move"}

# On every driver: the race that rests on the storage's conditional writes.
RACES = [Scenario("put t a", "put t b")]  # both read the tag absent: one wins
# On the filesystem (the order of calls is the driver's business no more than that).
SCENARIOS = [
    Scenario("put t b", "put t a"),
    Scenario("put t a", "put t a"),  # the same digest twice: both pass
    Scenario("put t a", "delete a"),  # the tag set while the manifest is deleted
    Scenario("delete a", "put t a"),
    Scenario("delete a", "put t a", (("u", "a"),)),  # ... with a mutable tag on it too
    Scenario("put t a", "untag t"),  # the tag deleted while it is set
]


async def test_a_repush_of_the_digest_an_immutable_tag_names_writes_nothing(
    counting: CountingStorage,
) -> None:
    registry = Registry(counting, namespaces=NAMESPACES)  # type: ignore[arg-type]
    manifests = await _setup(registry, "im/repush", Scenario("", "", (("v1", "a"),)))
    counting.reset()
    pushed = await registry.put_manifest("im/repush", "v1", manifests["a"], OCI_MANIFEST)
    assert pushed.digest == Digest.of(manifests["a"])
    assert [c for c in counting.calls if c.operation in WRITES] == []
    # 1: the references and the tag, together; 2: the manifest, read to see it is not being
    # deleted (and taken back if it is).
    assert counting.sequential == 2, counting.calls

    counting.reset()
    with pytest.raises(RegistryError) as denied:
        await registry.put_manifest("im/repush", "v1", manifests["b"], OCI_MANIFEST)
    assert denied.value.code is ErrorCode.DENIED
    assert [c for c in counting.calls if c.operation in WRITES] == []
    assert counting.sequential == 1  # the reads every push makes first


@dataclass
class Outcomes:
    stopped: str = "ok"
    other: str = "ok"


async def _run(
    registry: Registry, repository: str, manifests: dict[str, bytes], operation: str
) -> str:
    expected = (ErrorCode.DENIED, ErrorCode.MANIFEST_UNKNOWN)
    return await run_operation(registry, repository, manifests, operation, expected)


async def _interleave(
    driver: Storage, scenario: Scenario, step: int, mode: Mode
) -> tuple[bool, list[str], list[str]]:
    """Stop `scenario.stopped` at `step` (or crash it there) while `scenario.other` runs;
    whether the step was reached, the stopped operation's calls and what went wrong."""
    gated = GatedStorage(driver)
    first = Registry(gated, namespaces=NAMESPACES)  # type: ignore[arg-type]
    second = Registry(gated, namespaces=NAMESPACES)  # type: ignore[arg-type]
    repository = f"im/{uuid.uuid4().hex[:12]}"
    manifests = await _setup(second, repository, scenario)
    gated.stop("stopped", step, mode)
    outcomes = Outcomes()

    async def stopped() -> None:
        ACTOR.set("stopped")
        outcomes.stopped = await _run(first, repository, manifests, scenario.stopped)

    task = asyncio.create_task(stopped())
    reached = asyncio.create_task(gated.reached.wait())
    await asyncio.wait({task, reached}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
    was_reached = gated.reached.is_set()
    reached.cancel()
    if mode == "crash":
        with contextlib.suppress(SimulatedCrash):
            await task
        outcomes.stopped = "crashed"
        outcomes.other = await _run(second, repository, manifests, scenario.other)
    else:
        outcomes.other = await _run(second, repository, manifests, scenario.other)
        gated.released.set()
        await asyncio.wait_for(task, 60)
    found = await _immutability_broken(driver, repository, manifests, scenario, outcomes)
    return was_reached, gated.calls, found + await violations(driver, repository, manifests)


async def _immutability_broken(
    storage: Storage,
    repository: str,
    manifests: dict[str, bytes],
    scenario: Scenario,
    outcomes: Outcomes,
) -> list[str]:
    """A push that passed must have its digest under the tag now (nothing moved or removed
    it); two pushes of different digests must not both pass, nor both fail."""
    state = await Registry(storage).manifest_store.read_tag(repository, "t")
    named = state.digest if state is not None else None
    found = []
    puts = [
        (operation.split()[2], outcome)
        for operation, outcome in (
            (scenario.stopped, outcomes.stopped),
            (scenario.other, outcomes.other),
        )
        if operation.startswith("put t ")
    ]
    for manifest, outcome in puts:
        if outcome == "ok" and named != Digest.of(manifests[manifest]):
            found.append(f"put t {manifest} passed, but t names {named}")
        if outcome == "DENIED" and named == Digest.of(manifests[manifest]):
            found.append(f"put t {manifest} was denied, yet t names it")
    racing = len({manifest for manifest, _ in puts}) == 2 and outcomes.stopped != "crashed"
    if racing and sorted(outcome for _, outcome in puts) != ["DENIED", "ok"]:
        found.append(f"two pushes of different digests: {outcomes}, not one winner")
    return found


@pytest.mark.parametrize("scenario", RACES, ids=str)
async def test_two_pushes_racing_to_set_an_immutable_tag_have_exactly_one_winner(
    driver: Storage, scenario: Scenario
) -> None:
    await _every_interleaving(driver, scenario)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_every_interleaving_keeps_an_immutable_tag_where_its_one_winner_set_it(
    tmp_path: Path, scenario: Scenario
) -> None:
    storage = FilesystemStorage(tmp_path / "storage")
    try:
        await _every_interleaving(storage, scenario)
    finally:
        await storage.aclose()


async def _every_interleaving(driver: Storage, scenario: Scenario) -> None:
    steps, failures = await every_interleaving(driver, scenario, _interleave)
    assert 3 <= steps < MAX_STEPS
    assert not failures, f"{len(failures)} interleavings broke immutability:\n" + "\n".join(
        failures
    )
