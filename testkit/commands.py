"""Operator commands (`python -m registry ...`) run against the storage of a running registry,
configured through a `--config` file as an operator would."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from testkit.registry import PROJECT_ROOT, FilesystemBackend, RunningRegistry


def storage_section(server: RunningRegistry) -> dict[str, Any]:
    """The `storage` configuration that reaches the same storage as `server`."""
    backend = server.backend
    if isinstance(backend, FilesystemBackend):
        return {"filesystem": {"root": str(backend.root(server.data_dir))}}
    s3 = backend.config(backend.prefix(server.data_dir))
    return {
        "s3": {
            f.name: getattr(s3, f.name)
            for f in dataclasses.fields(s3)
            if getattr(s3, f.name) != f.default
        }
    }


def config_file(server: RunningRegistry) -> Path:
    """A configuration file for operator commands on the storage of `server`."""
    path = server.data_dir / "operator.yaml"
    # A short settle: `repo delete` waits it out before it removes a catalog marker (servers
    # started with REGISTRY_GC_SETTLE=1s trust a marker for a third of that).
    document = {"storage": storage_section(server), "gc": {"settle": "1s"}}
    path.write_text(yaml.safe_dump(document))
    return path


def registry_command(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    """`python -m registry ARGS --config FILE`, nothing configured by the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run(
        [sys.executable, "-m", "registry", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=PROJECT_ROOT,
    )


def seconds_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> float:
    """How long until condition() held; TimeoutError after `timeout` seconds."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start
