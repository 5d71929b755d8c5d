"""SIGHUP: a serving registry re-reads `auth.policy` and `namespaces` from its config file and
applies them in place, with one worker and with two (whose supervisor would otherwise restart
them); an invalid file is refused in one log line and the running configuration stays."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from testkit.commands import seconds_until
from testkit.oci import error_codes, image_manifest, put_manifest
from testkit.process_tree import tree_pids
from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user

START = """
http:
  workers: {workers}
auth:
  mode: htpasswd
  htpasswd:
    path: {htpasswd}
"""
# open/** becomes public; alice may push to open/** only (a rule ends the defaults).
RELOADED = (
    START
    + """
  policy:
    rules:
      - repositories: ["open/**"]
        principals: [alice]
        actions: ["*"]
namespaces:
  - pattern: "open/**"
    public: true
"""
)
INVALID = RELOADED + '  - pattern: ""\n'
REFUSED = (
    "ERROR registry: reload refused, keeping the running configuration: "
    "namespaces[1].pattern: empty pattern"
)
# The rule stays, open/** is private again, and gc changed (which takes a restart).
AGAIN = RELOADED.replace("    public: true\n", "") + "gc:\n  settle: 5s\n"
RESTART_NOTE = "WARNING registry: reload: gc changed, which takes a restart"


def reloads(server: RunningRegistry) -> list[int]:
    """The processes that logged a reload, one entry per reload."""
    return [int(pid) for pid in re.findall(r"reloaded in process (\d+)", server.log())]


def started_workers(server: RunningRegistry) -> list[int]:
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", server.log())]


def hang_up(server: RunningRegistry, config: Path, text: str) -> None:
    config.write_text(text)
    server.process.send_signal(signal.SIGHUP)


def anonymous_pulls(server: RunningRegistry, times: int = 6) -> set[int]:
    """Status codes of anonymous manifest GETs, each on a new connection (so with two workers
    both answer some, in all likelihood)."""
    return {httpx.get(server.url + "/v2/open/app/manifests/v1").status_code for _ in range(times)}


def alice_pushes(server: RunningRegistry, repo: str, n: int) -> httpx.Response:
    with httpx.Client(base_url=server.url, auth=("alice", PASSWORD), timeout=30) as alice:
        upload = alice.post(f"/v2/{repo}/blobs/uploads/")
        if upload.status_code != 202:
            return upload
        manifest = image_manifest(alice, repo, [f"layer {n}".encode()], n=n)
        return put_manifest(alice, repo, "v1", manifest)


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_policy_and_namespaces_in_place_and_refuses_an_invalid_file(
    tmp_path: Path, workers: int
) -> None:
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", PASSWORD)
    config = tmp_path / "config.yaml"
    config.write_text(START.format(workers=workers, htpasswd=htpasswd))
    quiet = {"REGISTRY_LOG_LEVEL": "info", "REGISTRY_LOG_ACCESS_LOG": "false"}
    with run_registry(tmp_path, quiet, config_file=config) as server:
        seconds_until(lambda: len(started_workers(server)) == workers, 20)
        serving = started_workers(server)
        processes = sorted(tree_pids(server.process.pid))
        assert alice_pushes(server, "open/app", 1).status_code == 201
        assert alice_pushes(server, "other/app", 2).status_code == 201  # the defaults
        assert anonymous_pulls(server) == {401}

        hang_up(server, config, RELOADED.format(workers=workers, htpasswd=htpasswd))
        seconds_until(lambda: sorted(reloads(server)) == sorted(serving), 20)
        assert anonymous_pulls(server) == {200}
        denied = alice_pushes(server, "other/app", 3)
        assert denied.status_code == 403 and error_codes(denied) == ["DENIED"]
        assert alice_pushes(server, "open/app", 4).status_code == 201

        hang_up(server, config, INVALID.format(workers=workers, htpasswd=htpasswd))
        seconds_until(lambda: REFUSED in server.log(), 20)
        assert anonymous_pulls(server) == {200}
        assert alice_pushes(server, "other/app", 5).status_code == 403

        # A valid file again: reloaded by every worker, after (signals are taken in order)
        # any process that would also have logged the refusal.
        hang_up(server, config, AGAIN.format(workers=workers, htpasswd=htpasswd))
        seconds_until(lambda: len(reloads(server)) == 2 * workers, 20)
        assert sorted(set(reloads(server))) == sorted(serving)
        assert anonymous_pulls(server) == {401}
        log = server.log()
        refusals = [line for line in log.splitlines() if "reload refused" in line]
        assert len(refusals) == 1 and refusals[0].endswith(REFUSED)
        assert log.count(RESTART_NOTE) == 1

        # Nothing restarted: the same processes serve.
        assert server.process.poll() is None
        assert started_workers(server) == serving
        assert sorted(tree_pids(server.process.pid)) == processes
