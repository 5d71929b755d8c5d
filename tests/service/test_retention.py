"""Retention in the service, on each storage driver: what recording pulls costs in storage
writes, and what a run does with a tag that changed after it was planned."""

from __future__ import annotations

import time

import anyio
import pytest

from registry.config import NamespaceConfig, RetentionConfig
from registry.digest import Digest
from registry.namespaces import Namespaces
from registry.repository_delete import delete_repository
from registry.retention import planner
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import exists
from testkit.oci import OCI_MANIFEST
from tests.service.counting import CountingStorage
from tests.service.test_round_trips import ten_layer_manifest

pytestmark = pytest.mark.anyio
PULLS = 1000


def namespaces(**retention: object) -> Namespaces:
    rules = RetentionConfig(**retention)  # type: ignore[arg-type]
    return Namespaces((NamespaceConfig(pattern="team/**", retention=rules),))


def pull_record_writes(counting: CountingStorage) -> list[str]:
    writes = ("put_bytes", "put_if_absent", "compare_and_swap", "write", "move")
    return [c.key for c in counting.calls if c.operation in writes and "/_pulled/" in c.key]


async def pulled_by_get(registry: Registry, name: str, reference: str | Digest) -> None:
    """What the API does on a manifest GET (a HEAD stops after get_manifest)."""
    stored = await registry.get_manifest(name, reference)
    registry.record_pull(name, stored.digest)


async def test_a_thousand_pulls_write_one_pull_record(
    registry: Registry, counting: CountingStorage
) -> None:
    registry.namespaces = namespaces(keep_pulled_days=30)
    manifest = await ten_layer_manifest(registry, "team/app", 1)
    pushed = await registry.put_manifest("team/app", "v1", manifest, OCI_MANIFEST)
    counting.reset()
    for n in range(PULLS):
        await pulled_by_get(registry, "team/app", "v1" if n % 2 else pushed.digest)
    await registry.pulls.flush()
    record = layout.pulled("team/app", pushed.digest)
    assert pull_record_writes(counting) == [record]
    assert time.time() - (await counting.stat(record)).modified < 60


async def test_pulls_write_nothing_where_keep_pulled_days_is_off(
    registry: Registry, counting: CountingStorage
) -> None:
    registry.namespaces = namespaces(keep_last=3, keep_pulled_days=0)
    for name in ("team/app", "other/app"):
        manifest = await ten_layer_manifest(registry, name, 1)
        await registry.put_manifest(name, "v1", manifest, OCI_MANIFEST)
    counting.reset()
    for name in ("team/app", "other/app"):  # off, and no namespace at all
        for _ in range(10):
            await pulled_by_get(registry, name, "v1")
    await registry.pulls.flush()
    assert pull_record_writes(counting) == []


async def test_a_run_leaves_alone_a_tag_pushed_again_after_the_plan(registry: Registry) -> None:
    registry.namespaces = namespaces(keep_last=1)
    storage = registry.storage
    manifests = [await ten_layer_manifest(registry, "team/app", n) for n in range(3)]
    for tag in ("moved", "same", "gone"):
        await registry.put_manifest("team/app", tag, manifests[0], OCI_MANIFEST)
    await registry.put_manifest("team/app", "newest", manifests[1], OCI_MANIFEST)
    # Planned with the push times as they are now, an hour ahead: every tag is older than
    # "newest" by then or tied with it, so keep_last 1 keeps exactly one tag.
    plan = await planner.plan(storage, registry.namespaces, time.time() + 3600)
    planned = {r.tag for r in plan.removals}
    assert len(planned) == 3 and planned <= {"moved", "same", "gone", "newest"}
    await registry.put_manifest("team/app", "moved", manifests[2], OCI_MANIFEST)
    await anyio.sleep(1.1)  # the same digest again: only its push time tells (S3: seconds)
    await registry.put_manifest("team/app", "same", manifests[0], OCI_MANIFEST)
    removed = await planner.apply(storage, plan.removals)
    for tag in planned & {"moved", "same"}:
        assert tag not in {r.tag for r in removed}
        assert await registry.manifest_store.read_tag("team/app", tag) is not None
    assert {r.tag for r in removed} == planned - {"moved", "same"}
    for tag in planned - {"moved", "same"}:
        assert await registry.manifest_store.read_tag("team/app", tag) is None


async def test_deleting_a_manifest_or_its_repository_removes_its_pull_records(
    registry: Registry,
) -> None:
    registry.namespaces = namespaces(keep_pulled_days=30)
    registry.repository_cache_seconds = 0.0
    pushed = []
    for n in range(2):
        manifest = await ten_layer_manifest(registry, "team/app", n)
        pushed.append(await registry.put_manifest("team/app", f"v{n}", manifest, OCI_MANIFEST))
        await pulled_by_get(registry, "team/app", f"v{n}")
    await registry.pulls.flush()
    records = [layout.pulled("team/app", p.digest) for p in pushed]
    assert all([await exists(registry.storage, key) for key in records])

    await registry.delete_manifest("team/app", pushed[0].digest)
    assert [await exists(registry.storage, key) for key in records] == [False, True]
    await delete_repository(registry, "team/app", settle=0.0)
    assert await registry.storage.list(layout.pulled_prefix("team/app", "sha256")) == []
