"""What a collection deletes: exactly what its dry run listed, exactly the unreferenced, and
nothing a kept tag, index or subject still needs."""

from __future__ import annotations

import dataclasses
import os

import httpx
import pytest

from registry.digest import Digest
from registry.gc.collector import Summary
from registry.service import Registry
from registry.storage import layout
from testkit.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of
from tests.gc.conftest import SETTINGS, Deployment, collector
from tests.gc.pushes import (
    assert_pulls,
    config_blob,
    index_of,
    push_image,
    put,
    upload,
)

pytestmark = pytest.mark.anyio


def layer() -> bytes:
    return os.urandom(1000 + os.urandom(1)[0])


async def stored_blobs(registry: Registry) -> dict[str, int]:
    """Every global blob, by digest, with its size."""
    sizes: dict[str, int] = {}
    for key in await registry.storage.list("blobs/sha256/"):
        digest = Digest("sha256", key.rsplit("/", 1)[1])
        sizes[str(digest)] = (await registry.storage.stat(layout.blob(digest))).size
    return sizes


def counts(summary: Summary) -> tuple[int, int, int, int, int]:
    return (
        summary.manifests_deleted,
        summary.links_deleted,
        summary.blobs_deleted,
        summary.bytes_freed,
        summary.repositories_deleted,
    )


async def test_a_collection_frees_exactly_what_its_dry_run_listed_and_keeps_what_is_reachable(
    deployment: Deployment, collector_registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        shared = layer()
        a_blobs = [config_blob(), layer(), shared]
        b_blobs = [config_blob(), shared, layer()]
        a = await push_image(client, "app", "a", a_blobs)
        b = await push_image(client, "app", "b", b_blobs)
        subject_a = descriptor(a, OCI_MANIFEST)
        subject_b = descriptor(b, OCI_MANIFEST)
        referrer_a_blobs = [config_blob(), layer()]
        referrer_a = await push_image(client, "app", None, referrer_a_blobs, subject=subject_a)
        referrer_b_blobs = [config_blob(), layer()]
        await push_image(client, "app", None, referrer_b_blobs, subject=subject_b)
        child_blobs = [[config_blob(), layer()], [config_blob(), layer()]]
        children = [await push_image(client, "app", None, blobs) for blobs in child_blobs]
        await put(client, "app", "multi", index_of(children), OCI_INDEX)
        orphan = layer()
        await upload(client, "app", orphan)
        gone_blobs = [config_blob(), layer()]
        gone = await push_image(client, "gone", "z", gone_blobs)
        r = await client.delete(f"/v2/gone/manifests/{digest_of(gone)}")
        assert r.status_code == 202, r.text
        r = await client.post(
            "/v2/shared/blobs/uploads/", params={"mount": digest_of(a_blobs[1]), "from": "app"}
        )
        assert r.status_code == 201, r.text
        shared_blobs = [config_blob(), a_blobs[1]]
        await push_image(client, "shared", "s", shared_blobs)
        r = await client.delete(f"/v2/app/manifests/{digest_of(b)}")
        assert r.status_code == 202, r.text

        unreferenced = [b_blobs[0], b_blobs[2], *referrer_b_blobs, orphan, *gone_blobs]
        before = await stored_blobs(collector_registry)
        dry = await collector(collector_registry).collect(dry_run=True)
        assert await stored_blobs(collector_registry) == before
        summary = await collector(collector_registry).collect()
        assert counts(summary) == counts(dataclasses.replace(dry, dry_run=False))
        freed = sum(len(data) for data in unreferenced)
        assert counts(summary) == (1, 7, 7, freed, 1)  # referrer of b; its links and gone's
        after = await stored_blobs(collector_registry)
        assert sorted(after) == sorted(set(before) - {digest_of(d) for d in unreferenced})
        assert sum(before.values()) - sum(after.values()) == summary.bytes_freed

        await assert_pulls(client, "app", "a", a_blobs)
        await assert_pulls(client, "app", digest_of(referrer_a), referrer_a_blobs)
        await assert_pulls(client, "app", "multi", [])
        for child, blobs in zip(children, child_blobs, strict=True):
            await assert_pulls(client, "app", digest_of(child), blobs)
        await assert_pulls(client, "shared", "s", shared_blobs)
        referrers = (await client.get(f"/v2/app/referrers/{digest_of(a)}")).json()
        assert [m["digest"] for m in referrers["manifests"]] == [digest_of(referrer_a)]
        assert (await client.get(f"/v2/app/referrers/{digest_of(b)}")).json()["manifests"] == []
        catalog = (await client.get("/v2/_catalog")).json()["repositories"]
        assert catalog == ["app", "shared"]
        assert (await client.get("/v2/gone/tags/list")).status_code == 404

        # Nothing says "exists" for what went: a push of b uploads its blobs again.
        for data in (b_blobs[0], b_blobs[2]):
            r = await client.head(f"/v2/app/blobs/{digest_of(data)}")
            assert r.status_code == 404
        assert await push_image(client, "app", "b", b_blobs) == b
        await assert_pulls(client, "app", "b", b_blobs)
        again = await collector(collector_registry).collect()
        assert counts(again) == (0, 0, 0, 0, 0)


async def test_untagged_manifests_go_when_asked_but_not_the_children_of_a_kept_index(
    deployment: Deployment, collector_registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        child_blobs = [config_blob(), layer()]
        child = await push_image(client, "app", None, child_blobs)
        await put(client, "app", "multi", index_of([child]), OCI_INDEX)
        untagged_blobs = [config_blob(), layer()]
        untagged = await push_image(client, "app", None, untagged_blobs)
        kept = await collector(collector_registry).collect()
        assert kept.manifests_deleted == 0  # untagged: keep, the default

        settings = dataclasses.replace(SETTINGS, delete_untagged=True)
        summary = await collector(collector_registry, settings).collect()
        assert (summary.manifests_deleted, summary.blobs_deleted) == (1, 2)
        r = await client.get(f"/v2/app/manifests/{digest_of(untagged)}")
        assert r.status_code == 404
        await assert_pulls(client, "app", digest_of(child), child_blobs)
        await assert_pulls(client, "app", "multi", [])


async def test_with_delete_referrers_off_a_referrer_outlives_its_subject(
    deployment: Deployment, collector_registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        subject = await push_image(client, "app", "v1", [config_blob(), layer()])
        signature_blobs = [config_blob(), layer()]
        fields = {"subject": descriptor(subject, OCI_MANIFEST)}
        signature = await push_image(client, "app", None, signature_blobs, **fields)
        r = await client.delete(f"/v2/app/manifests/{digest_of(subject)}")
        assert r.status_code == 202, r.text
        settings = dataclasses.replace(SETTINGS, delete_referrers=False)
        summary = await collector(collector_registry, settings).collect()
        assert (summary.manifests_deleted, summary.blobs_deleted) == (0, 2)  # the subject's
        await assert_pulls(client, "app", digest_of(signature), signature_blobs)
