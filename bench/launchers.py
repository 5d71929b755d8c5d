"""The two registries under test as server processes: ours (`python -m registry serve`) and
Distribution (`docker-registry serve CONFIG`), each on a free loopback port, logging only
warnings and no access log, with the storage settings the caller gives."""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.machine import command_words
from bench.servers import DISTRIBUTION_BINARY, Server, base_environment, running_server, slug
from testkit.ports import LOOPBACK, free_port


def run_ours(
    workdir: Path, name: str, storage_env: Mapping[str, str], source: Path | None = None
) -> contextlib.AbstractContextManager[Server]:
    """Ours with the REGISTRY_STORAGE_* variables of `storage_env` (see testkit.registry);
    the code of this checkout, or of another `source` tree (its directory first on the path).
    """
    port = free_port()
    env = base_environment() | {
        "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{port}",
        **storage_env,
        "REGISTRY_LOG_LEVEL": "warning",
        "REGISTRY_LOG_ACCESS_LOG": "false",
    }
    command = [sys.executable, "-m", "registry", "serve"]
    if source is None:
        return running_server(name, command, env, port, workdir)
    env["PYTHONPATH"] = str(source)
    return running_server(name, command, env, port, workdir, cwd=source)


def distribution_config(storage_lines: Sequence[str], port: int) -> str:
    """Distribution's configuration: `storage_lines` (indented below `storage:`) name the
    driver and its settings; deletes enabled, warnings only, no access log."""
    return "\n".join(
        [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            *storage_lines,
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {LOOPBACK}:{port}",
            f"  secret: {secrets.token_hex(16)}",
            "",
        ]
    )


def run_distribution(
    workdir: Path, name: str, storage_lines: Sequence[str]
) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    config = workdir / f"{slug(name)}.yml"
    config.write_text(distribution_config(storage_lines, port))
    command = [DISTRIBUTION_BINARY, "serve", str(config)]
    return running_server(name, command, base_environment(), port, workdir)


def distribution_version() -> str:
    words = command_words([DISTRIBUTION_BINARY, "--version"])
    return words[-1] if words else "unknown"
