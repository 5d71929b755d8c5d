"""When the S3 endpoint goes away, requests fail fast with 503 and nothing stored is lost."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from testkit.oci import error_codes, image_manifest, push_blob, put_manifest
from testkit.registry import S3Backend, run_registry
from testkit.seaweed import running_seaweedfs

SHORT_TIMEOUTS = {
    "REGISTRY_STORAGE_S3_CONNECT_TIMEOUT": "2",
    "REGISTRY_STORAGE_S3_READ_TIMEOUT": "5",
    "REGISTRY_STORAGE_S3_MAX_ATTEMPTS": "2",
}
BUDGET_SECONDS = 15


def timed(call: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    started = time.monotonic()
    response = call.request(method, path, **kwargs)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_SECONDS, f"{method} {path} took {elapsed:.1f}s"
    return response


def test_storage_outage_is_503_unavailable_then_everything_works_again(tmp_path: Path) -> None:
    with running_seaweedfs(tmp_path / "seaweedfs") as seaweedfs:
        backend = S3Backend(seaweedfs, seaweedfs.create_bucket("outage"))
        with (
            run_registry(tmp_path, SHORT_TIMEOUTS, backend=backend) as registry,
            httpx.Client(base_url=registry.url, timeout=60) as c,
        ):
            body = image_manifest(c, "kept/app")
            assert put_manifest(c, "kept/app", "v1", body).status_code == 201
            blob = push_blob(c, "kept/app", b"stored before the outage")

            seaweedfs.stop()
            for method, path in [
                ("GET", "/v2/kept/app/manifests/v1"),
                ("GET", f"/v2/kept/app/blobs/{blob}"),
                ("POST", "/v2/kept/app/blobs/uploads/"),
                ("GET", "/v2/kept/app/tags/list"),
                ("GET", "/v2/_catalog"),
            ]:
                r = timed(c, method, path)
                assert r.status_code == 503, (method, path, r.status_code, r.text)
                assert error_codes(r) == ["UNAVAILABLE"]
            assert timed(c, "HEAD", f"/v2/kept/app/blobs/{blob}").status_code == 503
            assert timed(c, "GET", "/readyz").status_code == 503
            assert c.get("/healthz").status_code == 200
            assert "Traceback" not in registry.log()

            seaweedfs.start()
            deadline = time.monotonic() + 60
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "registry did not become ready again"
                time.sleep(0.2)
            assert c.get("/v2/kept/app/manifests/v1").content == body
            assert c.get(f"/v2/kept/app/blobs/{blob}").content == b"stored before the outage"
            assert push_blob(c, "kept/app", b"after the outage")
