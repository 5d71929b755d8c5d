"""Start the two registries under test on loopback ports, and stop them by process group.

The process mechanics are `testkit.process.daemon` (log file, readiness deadline, stop by
process group); this module adds what the benchmark measures at start-up, the cold start:
from `Popen` until the first 200 on `/v2/`, polled every READY_POLL_SECONDS on one keep-alive
client, and says so when a server died during the run, with the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit.ports import LOOPBACK
from testkit.process import daemon, log_tail

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"
READY_TIMEOUT_SECONDS = 30.0
READY_POLL_SECONDS = 0.01
STOP_TIMEOUT_SECONDS = 10.0
OURS, DISTRIBUTION = "ours", "Distribution"


class BenchError(RuntimeError):
    """Something in the benchmark setup or a measured request went wrong."""


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_seconds: float  # from the process start to its first 200 on /v2/

    @property
    def pid(self) -> int:
        return self.process.pid


class _FirstAnswer:
    """The readiness probe: whether url/v2/ answers 200 yet, and when it first did."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/v2/"
        self.answered_at: float | None = None
        self._client = httpx.Client(trust_env=False, timeout=2.0)

    def __call__(self) -> bool:
        try:
            ready = self._client.get(self.url).status_code == 200
        except httpx.TransportError:
            return False
        if ready:
            self.answered_at = time.monotonic()
        return ready

    def close(self) -> None:
        self._client.close()


def slug(name: str) -> str:
    """A file name for a server's log and configuration: `Distribution (redirect)` gives
    `distribution-redirect`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@contextlib.contextmanager
def running_server(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    port: int,
    workdir: Path,
    cwd: Path = PROJECT_ROOT,
) -> Iterator[Server]:
    """The server started in a process group of its own, ready; stopped by its group id."""
    log_path = workdir / f"{slug(name)}.log"
    url = f"http://{LOOPBACK}:{port}"
    with contextlib.closing(_FirstAnswer(url)) as probe, contextlib.ExitStack() as stack:
        started = time.monotonic()
        try:
            process = stack.enter_context(
                daemon(
                    command,
                    log_path,
                    probe,
                    name=name,
                    timeout=READY_TIMEOUT_SECONDS,
                    env=env,
                    cwd=cwd,
                    own_group=True,
                    poll_interval=READY_POLL_SECONDS,
                    grace=STOP_TIMEOUT_SECONDS,
                )
            )
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None
        ready_seconds = (probe.answered_at or time.monotonic()) - started
        try:
            yield Server(name, url, process, log_path, ready_seconds)
        finally:
            if process.poll() is not None:  # it died during the run: say so, with its last words
                print(
                    f"{name} exited on its own (status {process.returncode}); its log ends:\n"
                    + log_tail(log_path, 30),
                    file=sys.stderr,
                    flush=True,
                )


def base_environment() -> dict[str, str]:
    """Our environment minus REGISTRY_*, AWS_* settings and proxies, which could skew a server.

    (AWS_CA_BUNDLE, for one, makes Distribution's S3 driver panic at start-up.)
    """
    dropped = ("REGISTRY_", "AWS_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
