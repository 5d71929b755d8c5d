"""Deleting a whole repository in the service: paging through its keys, and pushes racing it."""

from __future__ import annotations

import asyncio
import json

import pytest

from registry import repository_delete
from registry.errors import RegistryError
from registry.service import Registry
from registry.storage import layout
from testkit.oci import OCI_CONFIG, OCI_MANIFEST
from tests.service.test_round_trips import push

pytestmark = pytest.mark.anyio
RACE_ROUNDS = 8
SETTLE = 0.05  # what the delete waits before removing the catalog marker


@pytest.fixture(autouse=True)
def trust_no_catalog_entry(registry: Registry) -> None:
    """A replica trusts a marker it saw for less than the settle (here: not at all)."""
    registry.repository_cache_seconds = 0.0


async def pushed_manifest(registry: Registry, name: str, n: int) -> bytes:
    config = await push(registry, name, json.dumps({"n": n}).encode())
    layer = await push(registry, name, f"layer {n}".encode())
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**config, "mediaType": OCI_CONFIG},
        "layers": [layer],
    }
    return json.dumps(document).encode()


async def test_a_repository_larger_than_a_page_is_deleted_whole(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository_delete, "PAGE_SIZE", 3)
    for n in range(6):  # 6 tags and manifests: two full pages; 12 links: four
        manifest = await pushed_manifest(registry, "big/app", n)
        await registry.put_manifest("big/app", f"v{n}", manifest, OCI_MANIFEST)
    reported: list[tuple[str, str]] = []
    dry = await repository_delete.delete_repository(
        registry, "big/app", settle=SETTLE, dry_run=True, report=lambda *item: reported.append(item)
    )
    assert (dry.tags, dry.manifests, dry.blob_links) == (6, 6, 12) and len(reported) == 24
    assert len(await registry.storage.list("repositories/big/app/")) > 24  # nothing went

    deleted = await repository_delete.delete_repository(registry, "big/app", settle=SETTLE)
    assert (deleted.tags, deleted.manifests, deleted.blob_links) == (6, 6, 12)
    assert not deleted.pushed_meanwhile
    assert await registry.storage.list("repositories/big/app/") == []
    assert (await registry.catalog(10, None)).items == []
    with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
        await repository_delete.delete_repository(registry, "big/app", settle=SETTLE)


async def push_tag(registry: Registry, name: str, index: int, manifest: bytes) -> None:
    await asyncio.sleep(0.002 * index)  # into different steps of the delete
    await registry.put_manifest(name, f"t{index}", manifest, OCI_MANIFEST)


async def test_pushes_racing_a_repository_delete_never_leave_a_tag_naming_a_missing_manifest(
    registry: Registry,
) -> None:
    name = "race/app"
    for round_ in range(RACE_ROUNDS):
        manifests = [await pushed_manifest(registry, name, round_ * 10 + n) for n in range(3)]
        await registry.put_manifest(name, "first", manifests[0], OCI_MANIFEST)

        deletion, *pushes = await asyncio.gather(
            repository_delete.delete_repository(registry, name, settle=SETTLE),
            push_tag(registry, name, 1, manifests[1]),
            push_tag(registry, name, 2, manifests[2]),
            return_exceptions=True,
        )
        assert isinstance(deletion, repository_delete.RepositoryDeletion), deletion
        for outcome in pushes:  # done, or refused: the delete unlinked its blobs first
            assert outcome is None or "MANIFEST_BLOB_UNKNOWN" in str(outcome), outcome
        prefix = layout.tags_prefix(name)
        for key in await registry.storage.list(prefix):  # the pushes may have won
            await registry.get_manifest(name, key[len(prefix) :])  # MANIFEST_UNKNOWN if not
        # Whatever happened, the next push leaves a listed, readable repository.
        after = await pushed_manifest(registry, name, round_ * 10 + 9)
        await registry.put_manifest(name, "after", after, OCI_MANIFEST)
        assert name in (await registry.catalog(10, None)).items
        assert "after" in (await registry.list_tags(name, 10, None)).items
        await repository_delete.delete_repository(registry, name, settle=SETTLE)
