"""Server processes for tests and benchmarks: started with a log file, waited for with a
deadline, and always stopped by PID (SIGTERM, then SIGKILL), never by process name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

DEFAULT_GRACE_SECONDS = 20.0


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes],
    interval: float = 0.05,
) -> None:
    """Poll `ready` until it holds; fail if the deadline passes or the process exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready within {timeout}s")
        time.sleep(interval)


def stop(
    process: subprocess.Popen[bytes], grace: float = DEFAULT_GRACE_SECONDS, group: bool = False
) -> None:
    """SIGTERM the process (its whole group when it leads one), SIGKILL it after `grace`."""

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(timeout=grace)


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def daemon(
    command: Sequence[str],
    log_path: Path,
    ready: Callable[[], bool],
    *,
    name: str,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    own_group: bool = False,
    poll_interval: float = 0.05,
    grace: float = DEFAULT_GRACE_SECONDS,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a daemon logging to `log_path`, wait for `ready`, and always stop it by PID.

    With `own_group` it leads a process group of its own (a Ctrl-C reaches only us) and is
    stopped with its children."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=own_group,
        )
    try:
        try:
            wait_until(ready, timeout, name, process, poll_interval)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}\n--- {log_path} ---\n{log_tail(log_path, 60)}") from None
        yield process
    finally:
        stop(process, grace, own_group)
