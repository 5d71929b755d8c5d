"""auth.mode: htpasswd — Basic credentials from an htpasswd file of bcrypt entries."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry.auth.login_limits import FREE_FAILURES
from testkit.oci import error_codes, image_manifest, push_blob, put_manifest
from testkit.registry import RunningRegistry, run_registry

PASSWORD = "correct horse battery staple"


def add_user(htpasswd: Path, name: str, password: str) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "user",
            "add",
            name,
            "--password-stdin",
            "--file",
            str(htpasswd),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr


def htpasswd_env(htpasswd: Path) -> dict[str, str]:
    return {"REGISTRY_AUTH_MODE": "htpasswd", "REGISTRY_AUTH_HTPASSWD_PATH": str(htpasswd)}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp("htpasswd")
    add_user(directory / "htpasswd", "alice", PASSWORD)
    with run_registry(directory, htpasswd_env(directory / "htpasswd")) as server:
        yield server


def test_api_root_challenges_callers_without_credentials(secured: RunningRegistry) -> None:
    r = httpx.get(secured.url + "/v2/")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert r.headers["www-authenticate"].startswith('Basic realm="registry"')
    assert httpx.get(secured.url + "/v2/", auth=("alice", PASSWORD)).status_code == 200


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", PASSWORD)])
def test_wrong_credentials_are_refused_and_logged(
    secured: RunningRegistry, user: str, password: str
) -> None:
    r = httpx.get(secured.url + "/v2/", auth=(user, password))
    assert r.status_code == 401 and "www-authenticate" in r.headers
    assert f"failed login for user '{user}'" in secured.log()
    assert password not in secured.log()


def test_authenticated_users_push_and_pull_anonymous_callers_get_a_challenge(
    secured: RunningRegistry,
) -> None:
    with httpx.Client(base_url=secured.url, auth=("alice", PASSWORD)) as alice:
        body = image_manifest(alice, "team/app")
        assert put_manifest(alice, "team/app", "v1", body).status_code == 201
        assert alice.get("/v2/team/app/manifests/v1").content == body
        assert alice.get("/v2/_catalog").json() == {"repositories": ["team/app"]}
    with httpx.Client(base_url=secured.url) as anonymous:
        for method, path in [
            ("GET", "/v2/team/app/manifests/v1"),
            ("GET", "/v2/team/app/tags/list"),
            ("POST", "/v2/team/app/blobs/uploads/"),
            ("DELETE", "/v2/team/app/manifests/v1"),
            ("GET", "/v2/_catalog"),
        ]:
            r = anonymous.request(method, path)
            assert r.status_code == 401, (method, path)
            assert r.headers["www-authenticate"].startswith("Basic ")
        with pytest.raises(AssertionError):
            push_blob(anonymous, "team/app", b"refused")


def test_health_probes_need_no_credentials(secured: RunningRegistry) -> None:
    assert httpx.get(secured.url + "/healthz").status_code == 200
    assert httpx.get(secured.url + "/readyz").status_code == 200


def test_a_user_added_while_running_can_log_in(
    secured: RunningRegistry,
) -> None:
    htpasswd = secured.data_dir / "htpasswd"
    add_user(htpasswd, "bob", "bobs password")
    assert httpx.get(secured.url + "/v2/", auth=("bob", "bobs password")).status_code == 200


def test_non_bcrypt_entries_stop_the_registry_at_start(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    run = subprocess.run(
        [sys.executable, "-m", "registry", "serve"],
        env={**htpasswd_env(htpasswd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"registry: configuration error: htpasswd file {htpasswd}: user 'carol' does not have "
        "a bcrypt hash (create entries with `registry user add` or `htpasswd -B`)"
    ]


def test_failed_logins_lock_out_only_that_user_from_that_address_with_a_growing_backoff(
    tmp_path: Path,
) -> None:
    """Behind one proxy every user shares an address: bob's correct password still works
    while alice's guesses lock alice out, and each further guess locks her out longer."""
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", PASSWORD)
    add_user(htpasswd, "bob", "bobs password")
    with run_registry(tmp_path, htpasswd_env(htpasswd)) as server:
        root = server.url + "/v2/"
        for _ in range(FREE_FAILURES):
            assert httpx.get(root, auth=("alice", "guess")).status_code == 401
        limited = httpx.get(root, auth=("alice", PASSWORD))
        assert limited.status_code == 429 and error_codes(limited) == ["TOOMANYREQUESTS"]
        first_wait = int(limited.headers["retry-after"])
        assert first_wait == 1
        for _ in range(3):
            assert httpx.get(root, auth=("bob", "bobs password")).status_code == 200
            assert httpx.get(root, auth=("bob", "typo")).status_code == 401
        time.sleep(first_wait)
        assert httpx.get(root, auth=("alice", "guess")).status_code == 401
        limited = httpx.get(root, auth=("alice", PASSWORD))
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 2
        lockouts = re.findall(
            r"failed login for user 'alice' from [^;\n]+; locked out for (\d+) s", server.log()
        )
        assert lockouts == ["1", "2"]
        time.sleep(2)
        assert httpx.get(root, auth=("alice", PASSWORD)).status_code == 200
        assert httpx.get(root, auth=("alice", "guess")).status_code == 401  # counted from 0 again
        assert httpx.get(root, auth=("alice", PASSWORD)).status_code == 200
