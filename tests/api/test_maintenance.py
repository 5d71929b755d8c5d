"""Read-only maintenance mode over HTTP, on the filesystem: by configuration and by the flag
`registry maintenance on|off` writes into storage (two replicas on S3:
tests/replicas/test_maintenance_replicas.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.commands import config_file, registry_command, seconds_until
from testkit.oci import OCI_MANIFEST, digest_of, image_manifest, put_manifest
from testkit.registry import run_registry
from tests.api.test_htpasswd import PASSWORD, add_user
from tests.api.test_token import token_env

READ_ONLY = {"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED": "true"}
REPO = "ro/app"
# The flag is polled every 2 s: a replica must follow well within this.
FOLLOW_SECONDS = 10.0


def is_read_only_refusal(response: httpx.Response) -> bool:
    return response.status_code == 405 and response.json()["errors"] == [
        {"code": "UNSUPPORTED", "message": "registry is in read-only mode"}
    ]


def push_refused(client: httpx.Client) -> bool:
    """Whether a push is refused for read-only mode (a push let through must succeed)."""
    r = client.post(
        f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(b"probe")}, content=b"probe"
    )
    assert r.status_code in (201, 405), r.text
    return is_read_only_refusal(r)


def pulls_work(client: httpx.Client, manifest: bytes) -> None:
    digest = digest_of(manifest)
    for reference in ("v1", digest):
        got = client.get(f"/v2/{REPO}/manifests/{reference}")
        assert got.status_code == 200 and got.content == manifest
        assert client.head(f"/v2/{REPO}/manifests/{reference}").status_code == 200
    for layer in json.loads(manifest)["layers"]:
        assert client.get(f"/v2/{REPO}/blobs/{layer['digest']}").status_code == 200
        assert client.head(f"/v2/{REPO}/blobs/{layer['digest']}").status_code == 200
    assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1"]
    assert REPO in client.get("/v2/_catalog").json()["repositories"]
    assert client.get(f"/v2/{REPO}/referrers/{digest}").status_code == 200
    assert client.get("/v2/").status_code == 200


@pytest.fixture
def pushed(tmp_path: Path) -> Iterator[tuple[Path, bytes, str]]:
    """A data directory holding image `ro/app:v1`, and an upload session left open."""
    with run_registry(tmp_path) as server, httpx.Client(base_url=server.url) as c:
        manifest = image_manifest(c, REPO)
        assert put_manifest(c, REPO, "v1", manifest).status_code == 201
        upload = c.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
    yield tmp_path, manifest, upload


def test_read_only_by_configuration_refuses_every_change_and_serves_every_pull(
    pushed: tuple[Path, bytes, str],
) -> None:
    data_dir, manifest, upload = pushed
    layer = json.loads(manifest)["layers"][0]["digest"]
    digest = digest_of(manifest)
    with run_registry(data_dir, READ_ONLY) as server, httpx.Client(base_url=server.url) as c:
        before = server.stored_keys()
        changes = [
            c.post(f"/v2/{REPO}/blobs/uploads/"),
            c.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"x"),
            c.post("/v2/ro/other/blobs/uploads/", params={"mount": layer, "from": REPO}),
            c.patch(upload, content=b"chunk"),
            c.put(upload, params={"digest": digest_of(b"chunk")}, content=b"chunk"),
            c.delete(upload),
            put_manifest(c, REPO, "v2", manifest),
            put_manifest(c, REPO, digest, manifest),
            c.delete(f"/v2/{REPO}/manifests/v1"),
            c.delete(f"/v2/{REPO}/manifests/{digest}"),
            c.delete(f"/v2/{REPO}/blobs/{layer}"),
        ]
        refused = [is_read_only_refusal(r) for r in changes]
        assert refused == [True] * len(changes), [r.text for r in changes]
        pulls_work(c, manifest)
        assert c.get(upload).status_code == 204  # an upload's status is a read
        assert server.stored_keys() == before


def test_read_only_refuses_a_push_only_once_the_caller_is_admitted(tmp_path: Path) -> None:
    add_user(tmp_path / "htpasswd", "alice", PASSWORD)
    env = {**token_env(str(tmp_path)), **READ_ONLY}
    with run_registry(tmp_path, env) as server, httpx.Client(base_url=server.url) as c:
        anonymous = c.post(f"/v2/{REPO}/blobs/uploads/")
        assert anonymous.status_code == 401  # not told anything before logging in
        scope = f"repository:{REPO}:pull,push"
        token = c.get(
            "/token", params={"service": "registry", "scope": scope}, auth=("alice", PASSWORD)
        )
        assert token.status_code == 200
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        assert c.get("/v2/", headers=headers).status_code == 200
        assert is_read_only_refusal(c.post(f"/v2/{REPO}/blobs/uploads/", headers=headers))


def test_maintenance_on_through_the_cli_stops_pushes_within_seconds_and_off_lets_them_in(
    tmp_path: Path,
) -> None:
    with run_registry(tmp_path) as server, httpx.Client(base_url=server.url) as c:
        manifest = image_manifest(c, REPO)
        assert put_manifest(c, REPO, "v1", manifest).status_code == 201
        assert not push_refused(c)

        config = config_file(server)
        on = registry_command("maintenance", "on", "--json", config=config)
        assert on.returncode == 0, on.stderr
        status = json.loads(on.stdout)
        assert status["read_only"] is True and status["configured"] is False
        assert set(status["flag"]) == {"set_by", "set_at"}
        seconds_until(lambda: push_refused(c), FOLLOW_SECONDS)
        assert is_read_only_refusal(put_manifest(c, REPO, "v2", manifest, OCI_MANIFEST))
        pulls_work(c, manifest)
        shown = registry_command("maintenance", "status", config=config)
        assert shown.returncode == 0 and shown.stdout.startswith("read-only mode: on\n")

        off = registry_command("maintenance", "off", "--json", config=config)
        assert off.returncode == 0, off.stderr
        assert json.loads(off.stdout) == {"read_only": False, "configured": False, "flag": None}
        seconds_until(lambda: not push_refused(c), FOLLOW_SECONDS)
        assert put_manifest(c, REPO, "v2", manifest).status_code == 201


def test_maintenance_off_fails_while_the_configuration_keeps_the_registry_read_only(
    tmp_path: Path,
) -> None:
    config = tmp_path / "read-only.yaml"
    config.write_text(
        f"storage:\n  filesystem:\n    root: {tmp_path / 'storage'}\n"
        "  maintenance:\n    readonly:\n      enabled: true\n"
    )
    assert registry_command("maintenance", "on", config=config).returncode == 0
    off = registry_command("maintenance", "off", "--json", config=config)
    assert off.returncode == 1 and "storage.maintenance.readonly.enabled is true" in off.stderr
    assert json.loads(off.stdout) == {"read_only": True, "configured": True, "flag": None}
