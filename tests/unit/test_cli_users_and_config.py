"""`registry user list|add|remove` on the htpasswd file and `registry config check`: their
output as text and `--json`, and their one-line failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry.auth.htpasswd import HtpasswdUsers
from tests.unit.test_cli import run


def user(
    htpasswd: Path, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`registry user ARGS --file HTPASSWD`, the password (if any) on stdin."""
    command = [sys.executable, "-m", "registry", "user", *args, "--file", str(htpasswd)]
    if password is not None:
        command.append("--password-stdin")
    return subprocess.run(
        command,
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_add_list_remove(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    added = user(htpasswd, "add", "bob", password="first password")
    assert added.returncode == 0 and added.stdout == ""
    assert added.stderr == f"user bob written to {htpasswd}\n"
    assert user(htpasswd, "add", "alice", password="alice's password").returncode == 0

    again = user(htpasswd, "add", "bob", password="second password")  # a new password
    assert again.returncode == 0 and again.stderr == f"user bob password changed in {htpasswd}\n"
    users = HtpasswdUsers(htpasswd)
    assert users.check("bob", "second password") and not users.check("bob", "first password")

    listed = user(htpasswd, "list")
    assert listed.returncode == 0 and listed.stdout == "alice\nbob\n"
    as_json = user(htpasswd, "list", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == ["alice", "bob"]

    removed = user(htpasswd, "remove", "bob")
    assert removed.returncode == 0 and removed.stderr == f"user bob removed from {htpasswd}\n"
    assert json.loads(user(htpasswd, "list", "--json").stdout) == ["alice"]
    assert not HtpasswdUsers(htpasswd).check("bob", "second password")

    unknown = user(htpasswd, "remove", "bob")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == f"registry: no user bob in {htpasswd}\n"


def test_user_commands_read_the_configured_htpasswd_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"auth:\n  htpasswd:\n    path: {tmp_path / 'users'}\n")
    absent = run("user", "list", "--config", str(config))
    assert absent.returncode == 2 and absent.stderr == (
        f"registry: configuration error: cannot read htpasswd file {tmp_path / 'users'}:"
        " No such file or directory\n"
    )
    assert user(tmp_path / "users", "add", "carol", password="carol's password").returncode == 0
    listed = run("user", "list", "--json", "--config", str(config))
    assert listed.returncode == 0 and json.loads(listed.stdout) == ["carol"]
    none = tmp_path / "none.yaml"
    none.write_text("log:\n  level: info\n")
    missing = run("user", "remove", "carol", "--config", str(none))
    assert missing.returncode == 2 and missing.stderr == (
        "registry: configuration error: auth.htpasswd.path: not set (or pass --file)\n"
    )


CHECKED = """\
auth:
  mode: htpasswd
  htpasswd:
    path: {htpasswd}
storage:
  s3:
    bucket: images
    secret_key: hunter2
namespaces:
  - pattern: "team-a/**"
    quota: 50GiB
    retention:
      keep_days: 7
"""


def test_config_check_prints_the_effective_configuration_with_secrets_masked(
    tmp_path: Path,
) -> None:
    htpasswd = tmp_path / "htpasswd"
    assert user(htpasswd, "add", "dave", password="dave's password").returncode == 0
    config = tmp_path / "c.yaml"
    config.write_text(CHECKED.format(htpasswd=htpasswd))
    checked = run("config", "check", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == f"registry: configuration valid: {config}\n"
    assert "secret_key: (set)\n" in checked.stdout and "hunter2" not in checked.stdout
    assert "  quota: 50GiB\n" in checked.stdout
    # the same document as `config show`, which it shares its code with
    assert checked.stdout == run("config", "show", "--config", str(config)).stdout

    as_json = run("config", "check", "--json", "--config", str(config))
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)  # the whole of stdout, one document
    assert document["storage"]["s3"]["secret_key"] == "(set)"
    assert document["namespaces"][0]["quota"] == 50 << 30
    assert document["namespaces"][0]["retention"]["keep_days"] == 7


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'namespaces:\n  - pattern: ""\n',
            "namespaces[0].pattern: empty pattern",
        ),
        (
            "auth:\n  mode: htpasswd\n  htpasswd:\n    path: /nonexistent/htpasswd\n",
            "cannot read htpasswd file /nonexistent/htpasswd: No such file or directory",
        ),
    ],
    ids=["invalid-key", "unreadable-htpasswd"],
)
def test_config_check_of_an_invalid_file_is_one_line_and_exit_status_2(
    tmp_path: Path, text: str, error: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    checked = run("config", "check", "--config", str(config))
    assert checked.returncode == 2 and checked.stdout == ""
    assert checked.stderr == f"registry: configuration error: {error}\n"


@pytest.mark.parametrize(
    "command", [["namespaces"], ["repo", "list"], ["user", "list"], ["config", "check"]]
)
def test_the_new_commands_refuse_an_unknown_key_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("namespaces:\n  - pattern: a/**\n    publik: true\n")
    result = run(*command, "--config", str(config))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "registry: configuration error: namespaces[0].publik: unknown configuration key"
    )
    assert len(result.stderr.splitlines()) == 1
