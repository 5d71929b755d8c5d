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
    """The reserved segment of a repository key (`_manifests`, `_tags`, ...)."""
    return next(part for part in key.split("/") if part.startswith("_"))


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


async def test_a_ten_layer_manifest_put_waits_for_three_round_trips(
    registry: Registry, counting: CountingStorage
) -> None:
    manifest = await ten_layer_manifest(registry, "rt/app", 1)
    counting.reset()
    await registry.put_manifest("rt/app", "v1", manifest, OCI_MANIFEST)
    # 1: the 22 reference stats and the tag's old target, together (the catalog marker was
    # written by the first blob push); 2: the manifest and the reverse tag index; 3: the tag.
    assert counting.sequential == 3, counting.calls
    first = [c.operation for c in counting.calls if c.depth == 1]
    assert sorted(first) == ["get_bytes"] + ["stat"] * 2 * (LAYERS + 1)
    writes = [(c.depth, c.operation, kind(c.key)) for c in counting.calls if c.depth > 1]
    assert sorted(writes) == [
        (2, "put_bytes", "_manifests"),
        (2, "put_bytes", "_tagged"),
        (3, "put_bytes", "_tags"),
    ]


async def test_moving_a_tag_adds_one_round_trip_to_drop_the_old_reverse_index(
    registry: Registry, counting: CountingStorage
) -> None:
    for revision in (1, 2):
        manifest = await ten_layer_manifest(registry, "rt/moved", revision)
        counting.reset()
        await registry.put_manifest("rt/moved", "latest", manifest, OCI_MANIFEST)
    assert counting.sequential == 4
    assert counting.calls[-1].operation == "delete" and counting.calls[-1].depth == 4


async def test_a_blob_get_waits_for_two_round_trips(
    registry: Registry, counting: CountingStorage
) -> None:
    data = b"blob bytes" * 1000
    await push(registry, "rt/blob", data)
    counting.reset()
    blob = await registry.open_blob("rt/blob", Digest.of(data), redirect=True)
    assert b"".join([bytes(block) async for block in blob.read()]) == data
    # 1: the repository's link, and the blob opened, together; 2: the content.
    assert [(c.operation, c.depth) for c in counting.calls] == [
        ("stat", 1),
        ("open", 1),
        ("read", 2),
    ]


async def test_a_referrer_entry_follows_its_manifest_and_precedes_the_tag(
    registry: Registry, counting: CountingStorage
) -> None:
    subject = Digest.of(b"some subject")
    document = json.loads(await ten_layer_manifest(registry, "rt/referrer", 1))
    document["subject"] = {"mediaType": OCI_MANIFEST, "digest": str(subject), "size": 12}
    counting.reset()
    await registry.put_manifest("rt/referrer", "sig", json.dumps(document).encode(), OCI_MANIFEST)
    depths = {kind(c.key): c.depth for c in counting.calls if c.operation == "put_bytes"}
    assert depths == {"_manifests": 2, "_tagged": 2, "_referrers": 3, "_tags": 4}
