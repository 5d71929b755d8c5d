"""Per-repository policies in htpasswd and token mode: public pull, catalog, mounts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from testkit.oci import image_manifest, push_blob, put_manifest
from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user

POLICY = """
auth:
  mode: {mode}
  htpasswd:
    path: {htpasswd}
  policy:
    groups:
      - name: team-a
        members: [alice]
    rules:
      - repositories: ["public/**"]
        principals: [anonymous, authenticated]
        actions: [pull]
      - repositories: ["public/**", "team-a/**"]
        principals: ["group:team-a"]
        actions: ["*"]
      - repositories: ["bob/**"]
        principals: [bob]
        actions: ["*"]
"""


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def governed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp(f"policy-{request.param}")
    add_user(directory / "htpasswd", "alice", PASSWORD)
    add_user(directory / "htpasswd", "bob", PASSWORD)
    config = directory / "config.yaml"
    config.write_text(POLICY.format(mode=request.param, htpasswd=directory / "htpasswd"))
    with run_registry(directory, config_file=config) as server:
        yield server


def bearer(server: RunningRegistry, scope: str, user: str | None) -> dict[str, str]:
    auth = (user, PASSWORD) if user else None
    r = httpx.get(server.url + "/token", params={"service": "registry", "scope": scope}, auth=auth)
    return {"Authorization": f"Bearer {r.json()['token']}"}


def as_user(server: RunningRegistry, user: str | None, scope: str) -> httpx.Client:
    if "token" in server.data_dir.name:
        return httpx.Client(base_url=server.url, headers=bearer(server, scope, user))
    return httpx.Client(base_url=server.url, auth=(user, PASSWORD) if user else None)


def test_public_namespace_is_pullable_anonymously_but_not_pushable(
    governed: RunningRegistry,
) -> None:
    with as_user(governed, "alice", "repository:public/app:pull,push") as alice:
        body = image_manifest(alice, "public/app")
        assert put_manifest(alice, "public/app", "v1", body).status_code == 201
    with as_user(governed, None, "repository:public/app:pull,push") as anonymous:
        assert anonymous.get("/v2/public/app/manifests/v1").content == body
        refused = anonymous.post("/v2/public/app/blobs/uploads/")
        assert refused.status_code == 401
    assert httpx.get(governed.url + "/v2/").status_code == 401  # docker login still checks


def test_an_authenticated_user_without_permission_is_refused(governed: RunningRegistry) -> None:
    with as_user(governed, "bob", "repository:team-a/app:pull,push") as bob:
        r = bob.post("/v2/team-a/app/blobs/uploads/")
        expected = 401 if "token" in governed.data_dir.name else 403
        assert r.status_code == expected
        assert r.json()["errors"][0]["code"] == ("UNAUTHORIZED" if expected == 401 else "DENIED")


def test_catalog_lists_only_pullable_repositories(governed: RunningRegistry) -> None:
    with as_user(governed, "bob", "repository:bob/own:pull,push") as bob:
        push_blob(bob, "bob/own", b"bob's")
    with as_user(governed, "alice", "repository:team-a/secret:pull,push") as alice:
        push_blob(alice, "team-a/secret", b"secret")
    with as_user(governed, "bob", "registry:catalog:*") as bob:
        listed = bob.get("/v2/_catalog").json()["repositories"]
    assert "bob/own" in listed and "public/app" in listed and "team-a/secret" not in listed


def test_mount_from_a_repository_the_caller_cannot_pull_falls_back_to_an_upload(
    governed: RunningRegistry,
) -> None:
    with as_user(governed, "alice", "repository:team-a/src:pull,push") as alice:
        digest = push_blob(alice, "team-a/src", b"private layer")
    scope = "repository:bob/dst:pull,push repository:team-a/src:pull"
    with as_user(governed, "bob", scope) as bob:
        r = bob.post("/v2/bob/dst/blobs/uploads/", params={"mount": digest, "from": "team-a/src"})
        assert r.status_code == 202
        assert bob.head(f"/v2/bob/dst/blobs/{digest}").status_code == 404
