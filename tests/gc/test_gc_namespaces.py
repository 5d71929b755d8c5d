"""Namespaces in garbage collection (filesystem): a namespace's `retention.untagged_days`
takes precedence over `gc.untagged` for its repositories; a deleted manifest takes its pull
record along; and a scheduled collection applies retention first, under its lease, so the
manifests retention untags go in the same run."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from registry.config import NamespaceConfig, RetentionConfig
from registry.digest import Digest
from registry.namespaces import Namespaces
from registry.service import Registry
from registry.storage import layout
from testkit.oci import OCI_MANIFEST, digest_of
from testkit.process import wait_until
from testkit.registry import FilesystemBackend, run_registry
from tests.gc.conftest import SETTINGS, Deployment, collector, deployed, registry_on
from tests.gc.pushes import config_blob, manifest_of, push_image
from tests.gc.test_gc_schedule import SCHEDULED

pytestmark = pytest.mark.anyio


@pytest.fixture
def filesystem_deployment(tmp_path: Path) -> Iterator[Deployment]:
    with deployed(FilesystemBackend(), tmp_path) as deployment:
        yield deployment


def with_untagged_days(days: float) -> Namespaces:
    retention = RetentionConfig(untagged_days=days)
    return Namespaces((NamespaceConfig(pattern="ns/**", retention=retention),))


async def manifest_exists(registry: Registry, repo: str, manifest: bytes) -> bool:
    try:
        await registry.storage.stat(layout.manifest(repo, Digest.parse(digest_of(manifest))))
    except Exception:
        return False
    return True


async def test_untagged_days_of_a_namespace_takes_precedence_over_gc_untagged(
    filesystem_deployment: Deployment,
) -> None:
    async with (
        httpx.AsyncClient(base_url=filesystem_deployment.urls[0], timeout=60) as client,
        registry_on(filesystem_deployment) as registry,
    ):
        governed = await push_image(client, "ns/app", None, [config_blob(), os.urandom(300)])
        plain = await push_image(client, "plain/app", None, [config_blob(), os.urandom(300)])
        record = layout.pulled("ns/app", Digest.parse(digest_of(governed)))
        await registry.storage.put_bytes(record, b"")

        # gc.untagged keep, the namespace's untagged_days 30: both stay (the one is young).
        registry.namespaces = with_untagged_days(30)
        summary = await collector(registry).collect()
        assert summary.manifests_deleted == 0
        # gc.untagged delete (no grace): the namespace's 30 days still keep its manifest.
        deleting = dataclasses.replace(SETTINGS, delete_untagged=True)
        summary = await collector(registry, deleting).collect()
        assert summary.manifests_deleted == 1
        assert await manifest_exists(registry, "ns/app", governed)
        assert not await manifest_exists(registry, "plain/app", plain)
        # untagged_days 0 and gc.untagged keep: the namespace's untagged manifest goes, with
        # its pull record.
        plain = await push_image(client, "plain/app", None, [config_blob(), os.urandom(300)])
        registry.namespaces = with_untagged_days(0)
        summary = await collector(registry).collect()
        assert summary.manifests_deleted == 1
        assert not await manifest_exists(registry, "ns/app", governed)
        assert await manifest_exists(registry, "plain/app", plain)
        assert filesystem_deployment.keys("repositories/ns/app/_pulled/") == []


def test_a_scheduled_collection_applies_retention_first(tmp_path: Path) -> None:
    config = tmp_path / "namespaces.yaml"
    namespaces = [{"pattern": "ns/**", "retention": {"keep_last": 1, "untagged_days": 0}}]
    config.write_text(yaml.safe_dump({"namespaces": namespaces}))
    blobs = {tag: [config_blob(), os.urandom(300)] for tag in ("old", "new")}
    with (
        run_registry(tmp_path, {"REGISTRY_GC_SETTLE": "1s"}) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        for tag in ("old", "new"):  # pushed in this order: keep_last 1 keeps "new"
            for data in blobs[tag]:
                r = client.post(
                    "/v2/ns/app/blobs/uploads/", params={"digest": digest_of(data)}, content=data
                )
                assert r.status_code == 201, r.text
            r = client.put(
                f"/v2/ns/app/manifests/{tag}",
                content=manifest_of(blobs[tag]),
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert r.status_code == 201, r.text
    env = {**SCHEDULED, "REGISTRY_GC_SETTLE": "1s"}
    with run_registry(tmp_path, env, config_file=config) as server:
        wait_until(
            lambda: "gc: deleted" in server.log(),
            timeout=60,
            what="a scheduled collection",
            process=server.process,
        )
        assert "retention deleted 1 tags first" in server.log(), server.log()
        assert "retention: deleted tag ns/app:old" in server.log()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/v2/ns/app/tags/list").json()["tags"] == ["new"]
            old = digest_of(manifest_of(blobs["old"]))
            assert client.get(f"/v2/ns/app/manifests/{old}").status_code == 404
            for data in blobs["old"]:
                assert client.get(f"/v2/ns/app/blobs/{digest_of(data)}").status_code == 404
            assert client.get("/v2/ns/app/manifests/new").status_code == 200
