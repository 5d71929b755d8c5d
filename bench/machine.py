"""The circumstances of a run: the machine, the software versions, the load, the date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT_SECONDS = 10


@dataclass
class RunInfo:
    """The circumstances of a run, printed under the results."""

    date: str
    distribution_version: str
    load_before: str
    started: float = field(default_factory=time.monotonic)
    machine: list[tuple[str, str]] = field(default_factory=list)
    load_after: str = "?"
    duration: str = "?"

    def finish(self, load_after: str) -> None:
        self.load_after = load_after
        self.duration = f"{time.monotonic() - self.started:.0f} s"


def command_words(command: list[str]) -> list[str]:
    """The words a short command prints on stdout; none if it cannot run."""
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return result.stdout.split()


def _first_value(path: str, prefix: str) -> str | None:
    """What follows `prefix` on the first line of a /proc file that starts with it."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    model = _first_value("/proc/cpuinfo", "model name")
    return model.lstrip(":").strip() if model else platform.processor() or "unknown"


def _memory_gib() -> str:
    total = _first_value("/proc/meminfo", "MemTotal:")
    return f"{int(total.split()[0]) / (1 << 20):.1f} GiB" if total else "unknown"


def _filesystem_of(path: Path) -> str:
    """`type (device)` of the mount holding path."""
    best = ("", "unknown", "")
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts") as f:
            for line in f:
                device, mount_point, fs_type = line.split()[:3]
                inside = resolved == mount_point or resolved.startswith(
                    mount_point.rstrip("/") + "/"
                )
                if inside and len(mount_point) > len(best[0]):
                    best = (mount_point, fs_type, device)
    except OSError:
        pass
    return f"{best[1]} ({best[2]})"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _git_commit() -> str:
    """The project's commit, `+dirty` if registry/ has uncommitted changes."""
    git = ["git", "-C", str(PROJECT_ROOT)]
    head = command_words([*git, "rev-parse", "--short", "HEAD"])
    dirty = command_words([*git, "status", "--porcelain", "--", "registry"])
    commit = head[0] if head else "?"
    return f"{commit}+dirty" if dirty else commit


def _curl_version() -> str:
    words = command_words(["curl", "--version"])
    return words[1] if len(words) > 1 else "?"


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_description(
    workdir: Path, distribution_version: str, disk_label: str
) -> list[tuple[str, str]]:
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("Memory", _memory_gib()),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        (disk_label, _filesystem_of(workdir)),
        (
            "Software",
            f"ours {_version('registry')} (commit {_git_commit()}; uvicorn {_version('uvicorn')}, "
            f"starlette {_version('starlette')}); Distribution {distribution_version}; "
            f"curl {_curl_version()}",
        ),
    ]


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
