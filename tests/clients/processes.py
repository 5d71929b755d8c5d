"""Run client tools: bounded commands in private mount namespaces (daemons: `testkit.process`)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import pytest


def tool(path_or_name: str) -> str:
    """The executable to run; a missing tool fails the test (the suite must not skip clients)."""
    found = shutil.which(path_or_name)
    if found is None:
        pytest.fail(f"{path_or_name} is not installed (run `make deps`)", pytrace=False)
    return found


def run(
    command: Sequence[str],
    *,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion within `timeout` seconds; by default fail on a non-zero exit."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{shlex.join(command)}` exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result


def in_private_mounts(
    command: Sequence[str],
    tmpfs: Sequence[str] = (),
    binds: Mapping[str, Path] | None = None,
) -> list[str]:
    """`command` in its own mount namespace, with empty tmpfs over `tmpfs` paths and then
    `binds` (target -> source directory), so the tools write nothing outside our temp dirs.

    The shell execs the command, so the PID of the returned command line is the tool's PID.
    """
    steps = ["set -e"]
    steps += [f"mount -n -t tmpfs tmpfs {shlex.quote(path)}" for path in tmpfs]
    for target, source in (binds or {}).items():
        source.mkdir(parents=True, exist_ok=True)
        quoted = shlex.quote(target)
        steps.append(f"mkdir -p {quoted} && mount -n --bind {shlex.quote(str(source))} {quoted}")
    steps.append('exec "$@"')
    script = "; ".join(steps)
    unshare = tool("unshare")
    return [
        unshare,
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        *command,
    ]


def kill_pid_file(pid_file: Path, must_mention: str) -> None:
    """SIGKILL the process a pid file names if it still runs and its command line mentions
    `must_mention` (so a recycled PID is left alone): cleanup after a parent that was killed."""
    with suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if must_mention.encode() in cmdline:
            os.kill(pid, signal.SIGKILL)


