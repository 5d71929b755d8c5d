"""`namespaces[].public: true`: anonymous pull of the namespace's repositories, in htpasswd and
token mode, added to `auth.policy` (here: no rules, so its defaults) without taking anything
away: no anonymous push or delete, `GET /v2/` still challenges, the catalog stays private."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from testkit.oci import digest_of, error_codes, image_manifest, put_manifest
from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user

CONFIG = """
auth:
  mode: {mode}
  htpasswd:
    path: {htpasswd}
namespaces:
  - pattern: "open/private/**"
    description: "declared first: not public"
  - pattern: "open/**"
    public: true
"""


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp(f"public-{request.param}")
    add_user(directory / "htpasswd", "alice", PASSWORD)
    config = directory / "config.yaml"
    config.write_text(CONFIG.format(mode=request.param, htpasswd=directory / "htpasswd"))
    with run_registry(directory, config_file=config) as s:
        yield s


def token_mode(server: RunningRegistry) -> bool:
    return "token" in server.data_dir.name


def token(server: RunningRegistry, scope: str, user: str | None) -> tuple[str, list[str]]:
    """A token for scope, and the actions it grants on the scope's repository."""
    auth = (user, PASSWORD) if user else None
    r = httpx.get(server.url + "/token", params={"service": "registry", "scope": scope}, auth=auth)
    assert r.status_code == 200, r.text
    document = r.json()["token"]
    payload = document.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    actions = [a for access in claims["access"] for a in access["actions"]]
    return document, actions


def client(server: RunningRegistry, user: str | None, repo: str) -> httpx.Client:
    """A client as `user` (None: anonymous) for pull and push on repo."""
    if token_mode(server):
        document, _ = token(server, f"repository:{repo}:pull,push,delete", user)
        headers = {"Authorization": f"Bearer {document}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=30)
    auth = (user, PASSWORD) if user else None
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


def push(server: RunningRegistry, repo: str, n: int) -> bytes:
    with client(server, "alice", repo) as alice:
        manifest = image_manifest(alice, repo, [f"layer of {repo}".encode()], n=n)
        assert put_manifest(alice, repo, "v1", manifest).status_code == 201
    return manifest


def test_anonymous_callers_pull_a_public_repository(server: RunningRegistry) -> None:
    manifest = push(server, "open/app", 1)
    layer = json.loads(manifest)["layers"][0]["digest"]
    with client(server, None, "open/app") as anonymous:
        got = anonymous.get("/v2/open/app/manifests/v1")
        assert got.status_code == 200 and got.content == manifest
        blob = anonymous.get(f"/v2/open/app/blobs/{layer}")
        assert blob.status_code == 200 and digest_of(blob.content) == layer
        assert anonymous.get("/v2/open/app/tags/list").json()["tags"] == ["v1"]


def test_a_public_namespace_never_lets_anonymous_callers_push_or_delete(
    server: RunningRegistry,
) -> None:
    manifest = push(server, "open/kept", 2)
    if token_mode(server):  # the token service grants the pull that was asked, only that
        _, actions = token(server, "repository:open/kept:pull,push,delete", None)
        assert actions == ["pull"]
    with client(server, None, "open/kept") as anonymous:
        upload = anonymous.post("/v2/open/kept/blobs/uploads/")
        assert upload.status_code == 401 and error_codes(upload) == ["UNAUTHORIZED"]
        scheme = "Bearer" if token_mode(server) else "Basic"
        assert upload.headers["www-authenticate"].startswith(scheme)
        deleted = anonymous.delete(f"/v2/open/kept/manifests/{digest_of(manifest)}")
        assert deleted.status_code == 401
        assert anonymous.get("/v2/open/kept/manifests/v1").content == manifest


def test_the_first_matching_namespace_decides_and_others_stay_private(
    server: RunningRegistry,
) -> None:
    push(server, "open/private/app", 3)
    push(server, "closed/app", 4)
    for repo in ("open/private/app", "closed/app"):
        if token_mode(server):
            assert token(server, f"repository:{repo}:pull", None)[1] == []
        with client(server, None, repo) as anonymous:
            refused = anonymous.get(f"/v2/{repo}/manifests/v1")
            assert refused.status_code == 401 and error_codes(refused) == ["UNAUTHORIZED"]


def test_authenticated_users_keep_the_defaults_and_login_still_challenges(
    server: RunningRegistry,
) -> None:
    # Without rules, authenticated users may do everything: a public namespace changes nothing.
    manifest = push(server, "elsewhere/app", 5)
    with client(server, "alice", "elsewhere/app") as alice:
        gone = alice.delete(f"/v2/elsewhere/app/manifests/{digest_of(manifest)}")
        assert gone.status_code == 202
    probe = httpx.get(server.url + "/v2/")  # docker login checks the password here
    assert probe.status_code == 401 and error_codes(probe) == ["UNAUTHORIZED"]
    catalog = httpx.get(server.url + "/v2/_catalog")  # auth.policy.catalog: authenticated
    assert catalog.status_code == 401
    if token_mode(server):
        assert token(server, "registry:catalog:*", None)[1] == []
