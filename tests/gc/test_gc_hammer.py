"""Collections back to back with `--grace 0s` while clients push (fresh and shared layers,
mounts, multi-arch indexes, referrers), delete and pull, through two replicas on S3. Bounded
in time. Afterwards every tag pulls completely, and exactly the unreferenced is gone."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

from registry.service import Registry
from registry.storage import layout
from testkit.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of
from tests.gc.conftest import SETTINGS, Deployment, collector
from tests.gc.pushes import assert_pulls, config_blob, index_of, manifest_of

pytestmark = pytest.mark.anyio

DURATION_SECONDS = 12.0
# Untagged manifests go too, so what is kept is exactly what tags reach.
HAMMER = dataclasses.replace(SETTINGS, delete_untagged=True)
WORKERS = 3
SHARED_LAYERS = 4
MAX_ACTIONS = 400  # per worker, a bound besides the time


@dataclass
class Image:
    body: bytes
    blobs: list[bytes]  # config first; empty for an index
    children: list[Image] = field(default_factory=list)
    media_type: str = OCI_MANIFEST


@dataclass
class Model:
    """What the clients believe is in the registry: repository -> tag -> image, and the
    referrers pushed (untagged) for tagged images."""

    tags: dict[str, dict[str, Image]] = field(default_factory=dict)
    referrers: list[tuple[str, Image, Image]] = field(default_factory=list)  # repo, subject, it
    retried_pushes: int = 0

    def kept_blobs(self) -> set[str]:
        kept: set[str] = set()
        subjects: set[tuple[str, str]] = set()
        for repo, tags in self.tags.items():
            for image in tags.values():
                for manifest in [image, *image.children]:
                    kept |= {digest_of(b) for b in manifest.blobs}
                    subjects.add((repo, digest_of(manifest.body)))
        for repo, subject, referrer in self.referrers:
            if (repo, digest_of(subject.body)) in subjects:
                kept |= {digest_of(b) for b in referrer.blobs}
        return kept


class Worker:
    def __init__(self, number: int, push: httpx.AsyncClient, pull: httpx.AsyncClient) -> None:
        self.number = number
        self.client = push
        self.other_replica = pull
        self.random = random.Random(number)
        self.repo = f"hammer/w{number}"

    async def ensure_blob(self, data: bytes) -> None:
        """HEAD, then mount from the shared repository, then upload: what clients do."""
        digest = digest_of(data)
        r = await self.client.head(f"/v2/{self.repo}/blobs/{digest}")
        if r.status_code == 200:
            return
        assert r.status_code == 404, r.text
        r = await self.client.post(
            f"/v2/{self.repo}/blobs/uploads/", params={"mount": digest, "from": "hammer/base"}
        )
        if r.status_code == 201:
            return
        assert r.status_code == 202, r.text
        r = await self.client.put(r.headers["location"], params={"digest": digest}, content=data)
        assert r.status_code == 201, r.text

    async def put(self, model: Model, reference: str, image: Image) -> None:
        """Push the image's blobs and manifest; a push whose blobs a collection deleted between
        the client's check and its PUT (clients that take longer than the settle) is pushed
        again, as clients do."""
        for _ in range(5):
            for child in image.children:
                await self.put(model, digest_of(child.body), child)
            for data in image.blobs:
                await self.ensure_blob(data)
            r = await self.other_replica.put(  # a manifest through the other replica
                f"/v2/{self.repo}/manifests/{reference}",
                content=image.body,
                headers={"Content-Type": image.media_type},
            )
            if r.status_code == 201:
                return
            codes = [e["code"] for e in r.json()["errors"]]
            assert r.status_code in (400, 503) and codes[0] in (
                "MANIFEST_BLOB_UNKNOWN",
                "UNAVAILABLE",
            ), r.text
            model.retried_pushes += 1
        raise AssertionError(f"push of {reference} kept failing")

    def image(self, shared: list[bytes]) -> Image:
        blobs = [config_blob(), os.urandom(600), self.random.choice(shared)]
        return Image(manifest_of(blobs), blobs)

    async def act(self, model: Model, shared: list[bytes], step: int) -> None:
        tags = model.tags.setdefault(self.repo, {})
        choice = self.random.random()
        if choice < 0.35 or not tags:
            image = self.image(shared)
            await self.put(model, f"t{step}", image)
            tags[f"t{step}"] = image
        elif choice < 0.45:
            children = [self.image(shared), self.image(shared)]
            body = index_of([c.body for c in children])
            image = Image(body, [], children, OCI_INDEX)
            await self.put(model, f"t{step}", image)
            tags[f"t{step}"] = image
        elif choice < 0.55:
            subject = tags[self.random.choice(sorted(tags))]
            blobs = [config_blob(), os.urandom(300)]
            body = manifest_of(blobs, subject=descriptor(subject.body, subject.media_type))
            referrer = Image(body, blobs)
            await self.put(model, digest_of(body), referrer)
            model.referrers.append((self.repo, subject, referrer))
        elif choice < 0.75:
            tag = self.random.choice(sorted(tags))
            image = tags.pop(tag)
            r = await self.client.delete(f"/v2/{self.repo}/manifests/{digest_of(image.body)}")
            assert r.status_code == 202, r.text
            for other in [t for t, i in tags.items() if i.body == image.body]:
                del tags[other]
        else:
            tag = self.random.choice(sorted(tags))
            image = tags[tag]
            await assert_pulls(self.other_replica, self.repo, tag, image.blobs)
            for child in image.children:
                await assert_pulls(
                    self.other_replica, self.repo, digest_of(child.body), child.blobs
                )


async def test_collections_in_a_loop_under_pushes_pulls_and_deletes_lose_nothing_in_use(
    deployment: Deployment, collector_registry: Registry
) -> None:
    model = Model()
    urls = deployment.urls
    async with (
        httpx.AsyncClient(base_url=urls[0], timeout=60) as first,
        httpx.AsyncClient(base_url=urls[-1], timeout=60) as second,
    ):
        base = Worker(-1, first, second)
        base.repo = "hammer/base"
        shared = [os.urandom(800) for _ in range(SHARED_LAYERS)]
        base_blobs = [config_blob(), *shared]
        base_image = Image(manifest_of(base_blobs), base_blobs)
        await base.put(model, "base", base_image)
        model.tags["hammer/base"] = {"base": base_image}
        deadline = time.monotonic() + DURATION_SECONDS
        runs, deleted = 0, 0

        async def collect_in_a_loop() -> None:
            nonlocal runs, deleted
            while time.monotonic() < deadline:
                summary = await collector(collector_registry, HAMMER).collect()
                runs, deleted = runs + 1, deleted + summary.blobs_deleted

        async def work(worker: Worker) -> None:
            for step in range(MAX_ACTIONS):
                if time.monotonic() >= deadline:
                    return
                await worker.act(model, shared, step)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(collect_in_a_loop)
            for number in range(WORKERS):
                tasks.start_soon(work, Worker(number, (first, second)[number % 2], second))
        assert runs >= 3 and deleted > 0  # collections ran, and found garbage amid the pushes
        print(f"{runs} collections deleted {deleted} blobs; {model.retried_pushes} pushes retried")

        final = await collector(collector_registry, HAMMER).collect()
        assert final.rescued == 0
        for repo, tags in model.tags.items():
            for tag, image in tags.items():
                for client in (first, second):
                    await assert_pulls(client, repo, tag, image.blobs)
                    for child in image.children:
                        await assert_pulls(client, repo, digest_of(child.body), child.blobs)
    stored = {
        f"sha256:{key.rsplit('/', 1)[1]}" for key in deployment.keys(layout.blobs_prefix("sha256"))
    }
    assert stored == model.kept_blobs()
    assert deployment.keys(layout.BLOB_TOMBSTONES_PREFIX) == []
