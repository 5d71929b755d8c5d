"""Scheduled collection: replicas with `gc.enabled` collect by themselves, one at a time."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from registry.digest import Digest
from registry.storage import layout
from testkit.oci import digest_of
from testkit.process import wait_until
from testkit.registry import Backend
from tests.conftest import BACKENDS
from tests.gc.conftest import chosen_backend, deployed
from tests.gc.pushes import config_blob

SCHEDULED = {
    "REGISTRY_GC_ENABLED": "true",
    "REGISTRY_GC_BLOB_GRACE": "0s",
    "REGISTRY_GC_INTERVAL": "1h",
    "REGISTRY_LOG_LEVEL": "info",
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return chosen_backend(request)


def test_replicas_with_gc_enabled_collect_by_themselves_and_only_one_of_them(
    backend: Backend, tmp_path: Path
) -> None:
    garbage = [os.urandom(400) for _ in range(3)]
    kept = config_blob()
    with (
        deployed(backend, tmp_path) as deployment,
        httpx.Client(base_url=deployment.urls[0], timeout=60) as client,
    ):
        for data in [*garbage, kept]:
            r = client.post(
                "/v2/app/blobs/uploads/", params={"digest": digest_of(data)}, content=data
            )
            assert r.status_code == 201, r.text
        manifest = (
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json",'
            f'"digest":"{digest_of(kept)}","size":{len(kept)}}},"layers":[]}}'
        )
        r = client.put(
            "/v2/app/manifests/v1",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
    with deployed(backend, tmp_path, SCHEDULED) as deployment:
        wait_until(
            lambda: any("gc: deleted" in server.log() for server in deployment.servers),
            timeout=60,
            what="a scheduled collection",
            process=deployment.servers[0].process,
        )
        assert deployment.keys(layout.GC_LAST_RUN) == [layout.GC_LAST_RUN]
        blobs = deployment.keys(layout.BLOBS_PREFIX)
        assert blobs == [layout.blob(Digest.parse(digest_of(kept)))]
        logs = [server.log() for server in deployment.servers]
        assert sum(log.count("gc: deleted") for log in logs) == 1, logs
        with httpx.Client(base_url=deployment.urls[-1], timeout=60) as client:
            assert client.get("/v2/app/manifests/v1").status_code == 200
            assert client.get(f"/v2/app/blobs/{digest_of(kept)}").content == kept
