"""auth.mode: token — the built-in Docker token service and bearer verification."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_htpasswd import PASSWORD, add_user
from tests.harness import RunningRegistry, run_registry
from tests.oci import error_codes, image_manifest, put_manifest


def token_env(registry_dir: str) -> dict[str, str]:
    return {
        "REGISTRY_AUTH_MODE": "token",
        "REGISTRY_AUTH_HTPASSWD_PATH": f"{registry_dir}/htpasswd",
    }


@pytest.fixture(scope="module")
def tokened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp("token")
    add_user(directory / "htpasswd", "alice", PASSWORD)
    with run_registry(directory, token_env(str(directory))) as server:
        yield server


def challenge(response: httpx.Response) -> dict[str, str]:
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    return dict(
        (key, value.strip('"')) for key, _, value in (p.partition("=") for p in params.split('",'))
    )


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_requests_without_a_token_get_a_bearer_challenge_naming_the_scope(
    tokened: RunningRegistry,
) -> None:
    root = httpx.get(tokened.url + "/v2/")
    assert root.status_code == 401
    assert challenge(root) == {"realm": f"{tokened.url}/token", "service": "registry"}
    r = httpx.get(tokened.url + "/v2/team/app/manifests/v1")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert challenge(r)["scope"] == "repository:team/app:pull"


def test_token_service_grants_what_was_asked_to_authenticated_users(
    tokened: RunningRegistry,
) -> None:
    r = httpx.get(
        tokened.url + "/token",
        params={"service": "registry", "scope": "repository:team/app:pull,push"},
        auth=("alice", PASSWORD),
    )
    assert r.status_code == 200
    document = r.json()
    assert document["token"] == document["access_token"] and document["expires_in"] >= 60
    assert claims(document["token"])["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    assert claims(document["token"])["sub"] == "alice"
    with httpx.Client(
        base_url=tokened.url, headers={"Authorization": f"Bearer {document['token']}"}
    ) as c:
        body = image_manifest(c, "team/app")
        assert put_manifest(c, "team/app", "v1", body).status_code == 201
        assert c.get("/v2/team/app/manifests/v1").content == body
        other = c.get("/v2/other/app/manifests/v1")
        assert other.status_code == 401
        assert challenge(other)["error"] == "insufficient_scope"


def test_anonymous_and_wrong_credentials_get_nothing(tokened: RunningRegistry) -> None:
    anonymous = httpx.get(
        tokened.url + "/token",
        params={"service": "registry", "scope": "repository:team/app:pull"},
        headers={"Authorization": "Basic Og=="},
    )
    assert anonymous.status_code == 200
    assert claims(anonymous.json()["token"])["access"] == []
    wrong = httpx.get(tokened.url + "/token", auth=("alice", "wrong"))
    assert wrong.status_code == 401


def test_oauth_password_and_refresh_grants(tokened: RunningRegistry) -> None:
    r = httpx.post(
        tokened.url + "/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "service": "registry",
            "client_id": "containerd-client",
            "access_type": "offline",
            "scope": "repository:team/app:pull",
        },
    )
    assert r.status_code == 200, r.text
    document = r.json()
    assert document["scope"] == "repository:team/app:pull"
    refreshed = httpx.post(
        tokened.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": document["refresh_token"],
            "service": "registry",
            "client_id": "containers/image",
            "scope": "repository:team/app:pull,push",
        },
    )
    assert refreshed.status_code == 200
    assert claims(refreshed.json()["access_token"])["sub"] == "alice"
    bad = httpx.post(tokened.url + "/token", data={"grant_type": "client_credentials"})
    assert bad.status_code == 400
    forged = httpx.post(
        tokened.url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": document["access_token"]},
    )
    assert forged.status_code == 401  # an access token is not a refresh token


def test_a_tampered_token_is_refused(tokened: RunningRegistry) -> None:
    token = httpx.get(tokened.url + "/token", auth=("alice", PASSWORD)).json()["token"]
    header, _, signature = token.split(".")
    forged_claims = claims(token) | {
        "access": [{"type": "repository", "name": "x", "actions": ["*"]}]
    }
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    r = httpx.get(tokened.url + "/v2/x/tags/list", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and challenge(r)["error"] == "invalid_token"
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    r = httpx.get(
        tokened.url + "/v2/x/tags/list",
        headers={"Authorization": f"Bearer {none_alg}.{forged_payload.decode()}."},
    )
    assert r.status_code == 401


def test_the_signing_key_is_generated_once_and_kept_in_storage(tokened: RunningRegistry) -> None:
    assert tokened.stored_keys("secrets/") == ["secrets/token-signing-key.pem"]
