"""Start the two registries under test on loopback ports, and stop them by process group."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUR_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"
READY_TIMEOUT_SECONDS = 30.0
READY_POLL_SECONDS = 0.01
STOP_TIMEOUT_SECONDS = 10.0
LOOPBACK = "127.0.0.1"
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


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _wait_ready(
    name: str, url: str, process: subprocess.Popen[bytes], log_path: Path, started: float
) -> float:
    """Seconds from started (monotonic) until url/v2/ answers 200, polled every
    READY_POLL_SECONDS."""
    deadline = started + READY_TIMEOUT_SECONDS
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(f"{name} exited at start-up:\n{log_tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{url}/v2/").status_code == 200:
                    return time.monotonic() - started
            time.sleep(READY_POLL_SECONDS)
    raise BenchError(f"{name} not ready after {READY_TIMEOUT_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group (it leads it), SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def running_server(
    name: str, command: list[str], env: dict[str, str], port: int, workdir: Path
) -> Iterator[Server]:
    log_path = workdir / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it by its group id
        )
    try:
        url = f"http://{LOOPBACK}:{port}"
        ready_seconds = _wait_ready(name, url, process, log_path, started)
        yield Server(name, url, process, log_path, ready_seconds)
    finally:
        if process.poll() is not None:  # it died during the run: say so, with its last words
            print(
                f"{name} exited on its own (status {process.returncode}); its log ends:\n"
                + log_tail(log_path, 30),
                file=sys.stderr,
                flush=True,
            )
        _stop(process)


def base_environment() -> dict[str, str]:
    """Our environment minus REGISTRY_*, AWS_* settings and proxies, which could skew a server.

    (AWS_CA_BUNDLE, for one, makes Distribution's S3 driver panic at start-up.)
    """
    dropped = ("REGISTRY_", "AWS_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def run_ours(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    root = workdir / "ours-storage"
    root.mkdir()
    port = free_port()
    env = base_environment() | {
        "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{port}",
        "REGISTRY_STORAGE_FILESYSTEM_ROOT": str(root),
        "REGISTRY_LOG_LEVEL": "warning",
        "REGISTRY_LOG_ACCESS_LOG": "false",
    }
    python = str(OUR_PYTHON) if OUR_PYTHON.exists() else sys.executable
    return running_server(OURS, [python, "-m", "registry", "serve"], env, port, workdir)


def distribution_config(root: Path, port: int) -> str:
    return "\n".join(
        [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {root}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {LOOPBACK}:{port}",
            f"  secret: {secrets.token_hex(16)}",
            "",
        ]
    )


def run_distribution(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    root = workdir / "distribution-storage"
    root.mkdir()
    port = free_port()
    config = workdir / "distribution.yml"
    config.write_text(distribution_config(root, port))
    command = [DISTRIBUTION_BINARY, "serve", str(config)]
    return running_server(DISTRIBUTION, command, base_environment(), port, workdir)


def distribution_version() -> str:
    try:
        result = subprocess.run(
            [DISTRIBUTION_BINARY, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.split()[-1] if result.stdout.split() else "unknown"
