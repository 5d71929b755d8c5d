"""One collector at a time, and a collector that dies leaves nothing the next one cannot
finish: `registry gc` run as operators run it, killed as crashes kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from registry.errors import RegistryError
from registry.gc.lease import Lease, LeaseHeld
from registry.gc.marks import DELETION_WAIT_SECONDS
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import PreconditionFailed
from testkit.oci import digest_of
from testkit.process import wait_until
from testkit.registry import PROJECT_ROOT
from tests.gc.conftest import SERVER_SETTLE, Deployment, collector
from tests.gc.pushes import assert_pulls, config_blob, push_image, upload

pytestmark = pytest.mark.anyio

SUMMARY_KEYS = {
    "dry_run",
    "manifests_deleted",
    "blobs_deleted",
    "bytes_freed",
    "repositories_deleted",
    "duration_seconds",
}


def gc_command(deployment: Deployment, *args: str) -> subprocess.Popen[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
        **deployment.backend.environment(deployment.data_dir),
        "REGISTRY_GC_SETTLE": SERVER_SETTLE,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "registry", "gc", "--grace", "0s", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


async def push_garbage(client: httpx.AsyncClient, count: int) -> list[bytes]:
    blobs = [os.urandom(500) for _ in range(count)]
    for data in blobs:
        await upload(client, "junk", data)
    return blobs


async def test_a_second_collector_names_the_holder_of_the_lease_and_fails(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        await push_garbage(client, 3)
    first = gc_command(deployment, "--settle", "3s")
    wait_until(
        lambda: deployment.keys(layout.GC_LEASE) != [], timeout=30, what="the lease", process=first
    )
    second = gc_command(deployment, "--settle", "3s")
    status, stdout, stderr = finish(second)
    assert status == 1, (stdout, stderr)
    assert "another collector is running" in stderr and "test" not in stderr
    assert f"pid {first.pid}" in stderr  # who holds it
    status, stdout, stderr = finish(first)
    assert status == 0, stderr
    summary = json.loads(stdout.splitlines()[-1])
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["dry_run"], summary["blobs_deleted"]) == (False, 3)


async def test_a_dry_run_deletes_nothing_and_says_what_would_go(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        garbage = await push_garbage(client, 2)
    before = deployment.keys()
    status, stdout, stderr = finish(gc_command(deployment, "--dry-run"))
    assert status == 0, stderr
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["dry_run"] is True and summary["blobs_deleted"] == 2
    assert summary["bytes_freed"] == sum(len(d) for d in garbage)
    assert deployment.keys() == before


async def test_a_collector_killed_mid_run_is_finished_by_the_next_and_loses_nothing_in_use(
    deployment: Deployment, collector_registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[-1], timeout=60) as client:
        garbage = await push_garbage(client, 20)
        kept_blobs = [config_blob(), os.urandom(700)]
        await push_image(client, "app", "v1", kept_blobs)
        killed = gc_command(deployment, "--settle", "30s")
        wait_until(
            lambda: len(deployment.keys(layout.BLOB_TOMBSTONES_PREFIX)) == len(garbage),
            timeout=60,
            what="the tombstones of the killed collector",
            process=killed,
        )
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=10)  # and close its pipes
        # A client uses some of the marked garbage after all, while the lease still holds.
        used = [config_blob(), garbage[0]]
        await push_image(client, "junk", "used", used)
        await expire_lease(collector_registry)

        status, stdout, stderr = finish(gc_command(deployment, "--settle", "1s"))
        assert status == 0, stderr
        summary = json.loads(stdout.splitlines()[-1])
        assert summary["leftovers_cleared"] == len(garbage)
        assert summary["blobs_deleted"] == len(garbage) - 1
        await assert_pulls(client, "junk", "used", used)
        await assert_pulls(client, "app", "v1", kept_blobs)
        assert deployment.keys(layout.BLOB_TOMBSTONES_PREFIX) == []
        assert deployment.keys(layout.GC_LEASE) == []


async def expire_lease(registry: Registry) -> None:
    """What two minutes of waiting would do to a dead collector's lease."""
    data, version = await registry.storage.get_bytes(layout.GC_LEASE)
    lease = json.loads(data) | {"expires": time.time() - 1}
    await registry.storage.compare_and_swap(layout.GC_LEASE, json.dumps(lease).encode(), version)


class SimulatedCrash(Exception):
    pass


async def test_deletions_a_dead_collector_had_won_are_finished_by_an_upload_or_the_next_run(
    deployment: Deployment, collector_registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        garbage = await push_garbage(client, 3)

        async def crash(phase: str) -> None:
            if phase == "deleting-blobs":
                raise SimulatedCrash

        dying = collector(collector_registry, pause=crash)
        with pytest.raises(SimulatedCrash):
            await dying.collect()
        tombstones = deployment.keys(layout.BLOB_TOMBSTONES_PREFIX)
        assert len(tombstones) == 3
        assert all(
            deployment.servers[0].stored_bytes(k).startswith(b"deleting ") for k in tombstones
        )
        # (Its lease went with it here: a real crash leaves it to expire; see above.)
        # An upload of one of them waits for the deletion, then finishes it itself.
        started = time.monotonic()
        await upload(client, "junk", garbage[0])
        assert time.monotonic() - started >= DELETION_WAIT_SECONDS
        await assert_pulls_blob(client, "junk", garbage[0])
        summary = await collector(collector_registry).collect()
        assert summary.leftovers_cleared == 2
        assert summary.blobs_deleted == 1  # garbage[0], orphaned again
        assert deployment.keys(layout.BLOB_TOMBSTONES_PREFIX) == []
        assert deployment.keys(layout.BLOBS_PREFIX) == []


async def assert_pulls_blob(client: httpx.AsyncClient, repo: str, data: bytes) -> None:
    r = await client.get(f"/v2/{repo}/blobs/{digest_of(data)}")
    assert r.status_code == 200, r.text
    assert r.content == data


async def test_read_only_mode_stops_a_collection_before_it_deletes_anything(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        await push_garbage(client, 2)
    before = deployment.keys()
    flag = deployment.storage()
    try:
        await flag.put_bytes(layout.READ_ONLY_FLAG, b"{}")
        status, stdout, stderr = finish(gc_command(deployment, "--settle", "1s"))
        assert (status, stdout) == (1, "")
        assert stderr.endswith("registry: UNSUPPORTED: registry is in read-only mode\n"), stderr
        assert deployment.keys() == sorted([*before, layout.READ_ONLY_FLAG])
        await flag.delete(layout.READ_ONLY_FLAG)
    finally:
        await flag.aclose()
    status, stdout, stderr = finish(gc_command(deployment, "--settle", "1s"))
    assert status == 0, stderr
    assert json.loads(stdout.splitlines()[-1])["blobs_deleted"] == 2


async def test_a_collection_stopped_before_it_deletes_takes_its_marks_back(
    deployment: Deployment, collector_registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=deployment.urls[0], timeout=60) as client:
        await push_garbage(client, 2)
    before = deployment.keys()

    async def read_only_meanwhile(phase: str) -> None:
        if phase == "settled":
            await collector_registry.storage.put_bytes(layout.READ_ONLY_FLAG, b"{}")

    with pytest.raises(RegistryError, match="read-only mode"):
        await collector(collector_registry, pause=read_only_meanwhile).collect()
    await collector_registry.storage.delete(layout.READ_ONLY_FLAG)
    assert deployment.keys() == before
    marked = [k for k in before if "/_blobs/" in k or k.startswith("catalog/")]
    assert marked and all(deployment.servers[0].stored_bytes(k) == b"" for k in marked)


async def test_a_lease_is_renewed_again_and_again_and_refused_to_others_meanwhile(
    collector_registry: Registry,
) -> None:
    storage = collector_registry.storage
    lease = Lease(storage, holder="first")
    await lease.acquire()
    for _ in range(3):
        await lease.renew()
        lease.check()
    with pytest.raises(LeaseHeld, match="held by first"):
        await Lease(storage, holder="second").acquire()
    await lease.release()
    await Lease(storage, holder="second").acquire()


async def test_a_renewal_whose_answer_was_lost_keeps_the_lease(
    collector_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An S3 client retries a write whose answer timed out; the retry of a compare-and-swap
    that had landed fails its precondition, though the lease holds what the holder wrote."""
    storage = collector_registry.storage
    lease = Lease(storage, holder="first")
    await lease.acquire()
    swap = storage.compare_and_swap

    async def landed_but_answered_412(key: str, data: bytes, version: str) -> str:
        await swap(key, data, version)
        raise PreconditionFailed(key)

    monkeypatch.setattr(storage, "compare_and_swap", landed_but_answered_412)
    await lease.renew()
    lease.check()
    monkeypatch.undo()
    await lease.renew()  # with the version read back, the next renewal works as usual
    await lease.release()
    assert await storage.list(layout.GC_LEASE) == []
