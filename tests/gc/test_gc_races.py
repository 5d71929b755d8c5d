"""A collection stopped at each phase boundary while a client pushes an image made of old
orphaned blobs (the blobs a collection with `--grace 0s` is about to delete): the client
checks each blob (HEAD), mounts it from another repository, or uploads it again, then puts a
manifest naming them. Whatever the interleaving, the manifest PUT succeeds and afterwards
every blob it names is there, and the collection leaves no mark or tombstone behind."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest

from registry.gc.collector import PHASES
from registry.service import Registry
from testkit.oci import digest_of
from tests.gc.conftest import Deployment, collector, registry_on
from tests.gc.pushes import assert_pulls, manifest_of, put, upload

pytestmark = pytest.mark.anyio

# How long a stopped collection waits for the client before it goes on; a client may be
# waiting for the collection itself (an upload waits out a blob deletion under way).
CLIENT_HEAD_START = 1.0

Scenario = Callable[[httpx.AsyncClient, httpx.AsyncClient, str, list[bytes]], Awaitable[None]]


async def head_then_put(
    first: httpx.AsyncClient, second: httpx.AsyncClient, repo: str, blobs: list[bytes]
) -> None:
    """docker's push: HEAD each blob, upload only the missing ones, put the manifest."""
    for data in blobs:
        r = await first.head(f"/v2/{repo}/blobs/{digest_of(data)}")
        assert r.status_code in (200, 404), r.text
        if r.status_code == 404:
            await upload(first, repo, data)
    await put(second, repo, "latest", manifest_of(blobs))


async def mount_then_put(
    first: httpx.AsyncClient, second: httpx.AsyncClient, repo: str, blobs: list[bytes]
) -> None:
    """A cross-repository mount from the repository the blobs were orphaned in; an upload
    where the mount is refused (202: the session the client then finishes)."""
    for data in blobs:
        digest = digest_of(data)
        r = await first.post(
            f"/v2/{repo}-copy/blobs/uploads/", params={"mount": digest, "from": repo}
        )
        assert r.status_code in (201, 202), r.text
        if r.status_code == 202:
            finish = await first.put(r.headers["location"], params={"digest": digest}, content=data)
            assert finish.status_code == 201, finish.text
    await put(second, f"{repo}-copy", "latest", manifest_of(blobs))


async def upload_then_put(
    first: httpx.AsyncClient, second: httpx.AsyncClient, repo: str, blobs: list[bytes]
) -> None:
    """A client that uploads every blob again, as if it had never checked."""
    for data in blobs:
        await upload(first, repo, data)
    await put(second, repo, "latest", manifest_of(blobs))


SCENARIOS: dict[str, Scenario] = {
    "head": head_then_put,
    "mount": mount_then_put,
    "upload": upload_then_put,
}


def assert_nothing_left_behind(deployment: Deployment) -> None:
    assert deployment.keys("gc/blob-tombstones/") == []
    assert deployment.keys("gc/lease") == []
    for key in deployment.keys("repositories/") + deployment.keys("catalog/"):
        if "/_blobs/" in key or key.startswith("catalog/"):
            assert deployment.servers[0].stored_bytes(key) == b"", key
        if "/_manifests/" in key:
            assert not deployment.servers[0].stored_bytes(key).startswith(b"~"), key


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_a_push_of_orphaned_blobs_succeeds_whatever_phase_the_collection_is_in(
    module_deployment: Deployment, scenario: str, phase: str
) -> None:
    async with registry_on(module_deployment) as registry:
        await push_during_a_collection(module_deployment, registry, scenario, phase)
    assert_nothing_left_behind(module_deployment)


async def push_during_a_collection(
    deployment: Deployment, collector_registry: Registry, scenario: str, phase: str
) -> None:
    repo = f"race/{scenario}-{phase}"
    blobs = [json.dumps({"config": os.urandom(8).hex()}).encode(), os.urandom(3000)]
    urls = deployment.urls
    async with (
        httpx.AsyncClient(base_url=urls[0], timeout=60) as first,
        httpx.AsyncClient(base_url=urls[-1], timeout=60) as second,
    ):
        for data in blobs:  # orphans: uploaded, never referenced
            await upload(first, repo, data)
        outcome: list[BaseException | None] = []
        done = anyio.Event()

        async def client() -> None:
            try:
                await SCENARIOS[scenario](first, second, repo, blobs)
                outcome.append(None)
            except BaseException as exc:  # reported below, with the phase
                outcome.append(exc)
            finally:
                done.set()

        async with anyio.create_task_group() as tasks:

            async def pause(reached: str) -> None:
                if reached == phase:
                    tasks.start_soon(client)
                    with anyio.move_on_after(CLIENT_HEAD_START):
                        await done.wait()

            await collector(collector_registry, pause=pause).collect()
        assert outcome == [None], f"client failed with the collection at {phase}: {outcome}"
        target = f"{repo}-copy" if scenario == "mount" else repo
        await assert_pulls(second, target, "latest", blobs)
        again = await collector(collector_registry).collect()
        assert again.blobs_deleted == 0 and again.manifests_deleted == 0
        await assert_pulls(first, target, "latest", blobs)
