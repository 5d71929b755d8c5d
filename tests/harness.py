"""Start real registry servers for tests: uvicorn in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_http(
    url: str, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class RunningRegistry:
    url: str
    host: str  # host:port, as clients name the registry
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_registry(
    data_dir: Path, extra_env: dict[str, str] | None = None, config_file: Path | None = None
) -> Iterator[RunningRegistry]:
    """A `registry serve` process on a free port, storing under data_dir/storage."""
    port = free_port()
    root = data_dir / "storage"
    env = {
        **os.environ,
        "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
        "REGISTRY_STORAGE_FILESYSTEM_ROOT": str(root),
        "REGISTRY_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "registry", "serve"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    log_path = data_dir / f"registry-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/healthz", process=process)
        yield RunningRegistry(url, f"127.0.0.1:{port}", root, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
