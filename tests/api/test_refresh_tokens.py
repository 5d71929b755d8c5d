"""Refresh tokens live as long as the htpasswd entry they were issued for: removing the user
or changing the password (the running server re-reads the file) revokes them."""

from __future__ import annotations

from pathlib import Path

import httpx
from passlib.apache import HtpasswdFile

from testkit.oci import error_codes
from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user
from tests.api.test_token import claims, token_env

SCOPE = "repository:team/app:pull,push"


def password_grant(server: RunningRegistry, user: str, password: str) -> httpx.Response:
    return httpx.post(
        server.url + "/token",
        data={
            "grant_type": "password",
            "username": user,
            "password": password,
            "service": "registry",
            "client_id": "test",
            "access_type": "offline",
            "scope": SCOPE,
        },
    )


def refresh(server: RunningRegistry, refresh_token: str) -> httpx.Response:
    return httpx.post(
        server.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "service": "registry",
            "client_id": "test",
            "scope": SCOPE,
        },
    )


def refresh_token_of(server: RunningRegistry, user: str, password: str) -> str:
    response = password_grant(server, user, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


def can_push(server: RunningRegistry, access_token: str) -> bool:
    headers = {"Authorization": f"Bearer {access_token}"}
    response = httpx.post(server.url + "/v2/team/app/blobs/uploads/", headers=headers)
    return response.status_code == 202


def remove_user(htpasswd: Path, user: str) -> None:
    users = HtpasswdFile(str(htpasswd))
    assert users.delete(user)
    users.save()


def test_a_refresh_token_stops_working_once_its_user_is_removed(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", PASSWORD)
    add_user(htpasswd, "bob", "bobs password")
    with run_registry(tmp_path, token_env(str(tmp_path))) as server:
        alice_token = refresh_token_of(server, "alice", PASSWORD)
        bob_token = refresh_token_of(server, "bob", "bobs password")
        refreshed = refresh(server, alice_token)
        assert refreshed.status_code == 200 and can_push(server, refreshed.json()["access_token"])
        remove_user(htpasswd, "alice")
        refused = refresh(server, alice_token)
        assert refused.status_code == 401 and error_codes(refused) == ["UNAUTHORIZED"]
        assert "revoked" in refused.json()["errors"][0]["message"]
        assert refresh(server, bob_token).status_code == 200  # other users keep theirs


def test_a_refresh_token_stops_working_once_the_password_changes(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", PASSWORD)
    with run_registry(tmp_path, token_env(str(tmp_path))) as server:
        old_token = refresh_token_of(server, "alice", PASSWORD)
        add_user(htpasswd, "alice", "a new password")
        assert refresh(server, old_token).status_code == 401
        new_token = refresh_token_of(server, "alice", "a new password")
        refreshed = refresh(server, new_token)
        assert refreshed.status_code == 200 and can_push(server, refreshed.json()["access_token"])
        add_user(htpasswd, "alice", PASSWORD)  # back to the first password: a new entry (salt)
        assert refresh(server, old_token).status_code == 401
        assert refresh(server, new_token).status_code == 401


def test_the_refresh_token_names_its_entry_without_revealing_the_hash(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", PASSWORD)
    stored = HtpasswdFile(str(htpasswd)).get_hash("alice").decode()
    with run_registry(tmp_path, token_env(str(tmp_path))) as server:
        token = refresh_token_of(server, "alice", PASSWORD)
        basic = httpx.get(
            server.url + "/token", params={"offline_token": "true"}, auth=("alice", PASSWORD)
        )
    bound = claims(token)["htpasswd_entry"]
    assert isinstance(bound, str) and 16 <= len(bound) <= 32
    assert claims(basic.json()["refresh_token"])["htpasswd_entry"] == bound
    assert bound not in stored and stored[7:29] not in token and stored[29:] not in token
