"""How many storage round trips the hot paths wait for one after another: independent reads
run together, while the crash-safe write order (DESIGN.md) stays sequential."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from registry.digest import Digest
from registry.service import Registry
from testkit.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from tests.service.counting import CountingStorage

pytestmark = pytest.mark.anyio
LAYERS = 10


def kind(key: str) -> str:
    """The reserved segment of a repository key (`_manifests`, `_tags`, ...), else the first."""
    return next((part for part in key.split("/") if part.startswith("_")), key.split("/")[0])


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push(registry: Registry, name: str, data: bytes) -> dict[str, object]:
    digest = Digest.of(data)
    await registry.push_blob(name, digest, body(data), len(data))
    return {"mediaType": OCI_LAYER, "digest": str(digest), "size": len(data)}


async def ten_layer_manifest(registry: Registry, name: str, revision: int) -> bytes:
    config = await push(registry, name, json.dumps({"revision": revision}).encode())
    layers = [await push(registry, name, f"layer {i}".encode()) for i in range(LAYERS)]
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**config, "mediaType": OCI_CONFIG},
        "layers": layers,
    }
    return json.dumps(document).encode()


async def test_a_ten_layer_manifest_put_waits_for_four_round_trips(
    registry: Registry, counting: CountingStorage
) -> None:
    manifest = await ten_layer_manifest(registry, "rt/app", 1)
    counting.reset()
    await registry.put_manifest("rt/app", "v1", manifest, OCI_MANIFEST)
    # 1: the 22 reference stats, the tag's old state and the catalog marker (written again:
    # the repository may have been deleted meanwhile), together; 2: the manifest and the
    # reverse tag index; 3: the tag, created only if absent; 4: the check that no delete of
    # the manifest ran meanwhile (docs/tags.md: nothing else can see such a delete) and the
    # reverse entry written again.
    assert counting.sequential == 4, counting.calls
    first = [c.operation for c in counting.calls if c.depth == 1]
    assert sorted(first) == ["get_bytes", "put_if_absent"] + ["stat"] * 2 * (LAYERS + 1)
    writes = [(c.depth, c.operation, kind(c.key)) for c in counting.calls if c.depth > 1]
    assert sorted(writes) == [
        (2, "put_bytes", "_manifests"),
        (2, "put_bytes", "_tagged"),
        (3, "put_if_absent", "_tags"),
        (4, "put_bytes", "_tagged"),
        (4, "stat", "_manifests"),
    ]


async def test_moving_a_tag_drops_the_old_reverse_entry_within_the_same_four_round_trips(
    registry: Registry, counting: CountingStorage
) -> None:
    for revision in (1, 2):
        manifest = await ten_layer_manifest(registry, "rt/moved", revision)
        counting.reset()
        await registry.put_manifest("rt/moved", "latest", manifest, OCI_MANIFEST)
    assert counting.sequential == 4
    later = [(c.depth, c.operation, kind(c.key)) for c in counting.calls if c.depth > 1]
    assert sorted(later) == [
        (2, "get_bytes", "_tagged"),  # the old entry's version: it goes only if unchanged
        (2, "put_bytes", "_manifests"),
        (2, "put_bytes", "_tagged"),
        (3, "compare_and_swap", "_tags"),
        (4, "delete_if_version", "_tagged"),
        (4, "put_bytes", "_tagged"),
        (4, "stat", "_manifests"),
    ]


async def test_a_get_by_tag_waits_for_two_round_trips_and_one_when_cached(
    registry: Registry, counting: CountingStorage
) -> None:
    manifest = await ten_layer_manifest(registry, "rt/get", 1)
    await registry.put_manifest("rt/get", "v1", manifest, OCI_MANIFEST)
    fresh = Registry(counting)  # type: ignore[arg-type]  # a Storage in all but name
    counting.reset()
    assert (await fresh.get_manifest("rt/get", "v1")).body == manifest
    assert [(c.operation, kind(c.key), c.depth) for c in counting.calls] == [
        ("get_bytes", "_tags", 1),
        ("get_bytes", "_manifests", 2),
    ]
    counting.reset()
    assert (await fresh.get_manifest("rt/get", "v1")).body == manifest
    assert [(c.operation, kind(c.key)) for c in counting.calls] == [("get_bytes", "_tags")]


async def test_a_blob_get_waits_for_two_round_trips(
    registry: Registry, counting: CountingStorage
) -> None:
    data = b"blob bytes" * 1000
    await push(registry, "rt/blob", data)
    counting.reset()
    blob = await registry.open_blob("rt/blob", Digest.of(data), redirect=True)
    assert b"".join([bytes(block) async for block in blob.read()]) == data
    # 1: the repository's link, and the blob opened, together (in either order); 2: the content.
    calls = sorted((c.depth, c.operation) for c in counting.calls)
    assert calls == [(1, "open"), (1, "stat"), (2, "read")]


async def test_a_referrer_entry_follows_its_manifest_and_precedes_the_tag(
    registry: Registry, counting: CountingStorage
) -> None:
    subject = Digest.of(b"some subject")
    document = json.loads(await ten_layer_manifest(registry, "rt/referrer", 1))
    document["subject"] = {"mediaType": OCI_MANIFEST, "digest": str(subject), "size": 12}
    counting.reset()
    await registry.put_manifest("rt/referrer", "sig", json.dumps(document).encode(), OCI_MANIFEST)
    writes = [(c.depth, kind(c.key)) for c in counting.calls if c.operation != "stat"]
    assert sorted(writes) == [
        (1, "_tags"),  # read
        (1, "catalog"),
        (2, "_manifests"),
        (2, "_tagged"),
        (3, "_referrers"),
        (4, "_tags"),
        (5, "_tagged"),
    ]
