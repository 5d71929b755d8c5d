"""The htpasswd file as the server sees it: re-read on every change, a broken version never
replacing a good one, and entry fingerprints that change with the entry."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from registry.auth.htpasswd import HtpasswdError, HtpasswdUsers, add_user


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    add_user(path, "alice", "secret")
    return path


def test_the_fingerprint_is_the_entry_verified_and_changes_with_the_password(
    htpasswd: Path,
) -> None:
    users = HtpasswdUsers(htpasswd)
    first = users.verify("alice", "secret")
    assert first is not None and users.fingerprint("alice") == first
    assert users.verify("alice", "wrong") is None and users.verify("nobody", "secret") is None
    add_user(htpasswd, "alice", "secret")  # same password, new salt: a new entry
    assert users.fingerprint("alice") not in (None, first)
    assert users.verify("alice", "secret") == users.fingerprint("alice")


def test_a_removed_user_has_no_fingerprint(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    add_user(htpasswd, "bob", "x")
    assert users.fingerprint("bob") is not None
    htpasswd.write_text(htpasswd.read_text().splitlines()[0] + "\n")  # alice only
    assert users.fingerprint("bob") is None and users.fingerprint("alice") is not None


def test_a_broken_or_missing_file_leaves_the_last_good_users_warned_once(
    htpasswd: Path, caplog: pytest.LogCaptureFixture
) -> None:
    users = HtpasswdUsers(htpasswd)
    good = htpasswd.read_text()
    htpasswd.write_text("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    for _ in range(3):
        assert users.check("alice", "secret")
    htpasswd.unlink()
    assert users.check("alice", "secret")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "does not have a bcrypt hash" in warnings[0] and "cannot read" in warnings[1]
    htpasswd.write_text(good.replace("alice:", "carol:"))
    assert users.check("carol", "secret") and not users.check("alice", "secret")


@pytest.mark.parametrize(
    ("user", "password"), [("a:b", "x"), ("a\nb", "x"), ("", "x"), ("u" * 256, "x"), ("a", "p\0")]
)
def test_unusable_names_and_passwords_are_refused_by_user_add(
    tmp_path: Path, user: str, password: str
) -> None:
    with pytest.raises(HtpasswdError):
        add_user(tmp_path / "htpasswd", user, password)
    assert not (tmp_path / "htpasswd").exists()


@pytest.mark.parametrize("user", ["al\0ice", "a" * 300, "a:b", ""])
def test_unusable_names_never_reach_passlib(htpasswd: Path, user: str) -> None:
    users = HtpasswdUsers(htpasswd)
    assert users.verify(user, "secret") is None and users.fingerprint(user) is None
