"""The garbage collectors as measured processes: ours (`python -m registry gc`) and
Distribution's (`docker-registry garbage-collect CONFIG`).

Each runs as a dedicated child process in a session of its own, with its output in files; a
thread reaps it with `os.wait4`, which gives the wall time from `Popen` to exit and the
child's own peak resident set (`ru_maxrss`). A collection still running after its time limit
is killed with its process group and fails the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import DISTRIBUTION_BINARY, BenchError, slug
from testkit.process import log_tail

KILL_WAIT_SECONDS = 10.0
GRACE, SETTLE = "0s", "1s"  # our collector: keep no young blob; wait 1 s inside the run
SUMMARY_KEYS = frozenset(
    {
        "dry_run",
        "manifests_deleted",
        "blobs_deleted",
        "bytes_freed",
        "repositories_deleted",
        "duration_seconds",
    }
)
_DISTRIBUTION_SUMMARY = re.compile(
    r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion"
)


@dataclass(frozen=True)
class Finished:
    seconds: float  # from Popen to exit
    ended_at: float  # time.perf_counter() at exit
    peak_rss_mib: float  # the child's ru_maxrss
    stdout_path: Path


class MeasuredProcess:
    """A child process started now, stdout and stderr to files below log_dir, reaped by a
    thread blocked in os.wait4 (so its end is timed exactly)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log_dir: Path,
        timeout: float,
    ) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{slug(name)}.out"
        self.stderr_path = log_dir / f"{slug(name)}.err"
        self.timeout = timeout
        self._exit: tuple[float, int, float] | None = None  # ended_at, status, ru_maxrss KiB
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        self._reaper = threading.Thread(target=self._reap, name=f"reap {name}", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        _, status, usage = os.wait4(self.process.pid, 0)
        self._exit = (time.perf_counter(), status, usage.ru_maxrss)

    def running(self) -> bool:
        return self._reaper.is_alive()

    def wait(self) -> Finished:
        """Its figures once it has exited; a BenchError if it failed or outlived its time."""
        self._reaper.join(max(0.0, self.started + self.timeout - time.perf_counter()))
        if self._exit is None:
            self.kill()
            raise BenchError(f"{self.name} did not finish in {self.timeout:.0f} s; killed")
        ended_at, status, max_rss_kib = self._exit
        code = os.waitstatus_to_exitcode(status)
        self.process.returncode = code  # reaped here: Popen must not wait for it again
        if code != 0:
            raise BenchError(
                f"{self.name} exited with status {code}:\n" + log_tail(self.stderr_path, 20)
            )
        return Finished(ended_at - self.started, ended_at, max_rss_kib / 1024, self.stdout_path)

    def kill(self) -> None:
        """Kill its process group (it has a session of its own) if it still runs; reaped by
        the thread."""
        if self._reaper.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self._reaper.join(KILL_WAIT_SECONDS)
            self.process.returncode = -signal.SIGKILL


def run_measured(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log_dir: Path,
    timeout: float,
) -> Finished:
    process = MeasuredProcess(name, command, env, cwd, log_dir, timeout)
    try:
        return process.wait()
    finally:
        process.kill()


# -- ours ---------------------------------------------------------------------------------------


def ours_gc_command(dry_run: bool = False) -> list[str]:
    command = [sys.executable, "-m", "registry", "gc", "--grace", GRACE, "--settle", SETTLE]
    return [*command, "--json", *(["--dry-run"] if dry_run else [])]


def ours_gc_environment(base: Mapping[str, str], storage_env: Mapping[str, str]) -> dict[str, str]:
    return {**base, **storage_env, "REGISTRY_LOG_LEVEL": "warning"}


def ours_summary(stdout_path: Path) -> dict[str, Any]:
    """The JSON object on the last line of our collector's stdout, checked for every key."""
    lines = [line for line in stdout_path.read_text().splitlines() if line.strip()]
    if not lines:
        raise BenchError("registry gc printed nothing on stdout")
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise BenchError(f"registry gc: the last line is not JSON: {lines[-1][:200]}") from exc
    if not isinstance(summary, dict) or not summary.keys() >= SUMMARY_KEYS:
        raise BenchError(f"registry gc: the summary lacks {sorted(SUMMARY_KEYS)}: {summary}")
    return summary


# -- Distribution -------------------------------------------------------------------------------


def distribution_gc_command(config: Path) -> list[str]:
    """Its offline collector; untagged manifests kept (its default, like ours)."""
    return [DISTRIBUTION_BINARY, "garbage-collect", str(config)]


@dataclass(frozen=True)
class DistributionSummary:
    marked: int
    blobs_deleted: int  # layers, configs and the deleted manifests' own blobs
    manifests_deleted: int


def distribution_summary(stdout_path: Path) -> DistributionSummary:
    """Its count line (it also prints a line for every repository and marked blob before
    it, and one for every blob it deletes after it)."""
    found = None
    with open(stdout_path, errors="replace") as f:
        for line in f:
            if "blobs marked" in line:
                found = _DISTRIBUTION_SUMMARY.match(line.strip())
    if found is None:
        raise BenchError(f"docker-registry garbage-collect: no summary line in {stdout_path}")
    marked, blobs, manifests = (int(n) for n in found.groups())
    return DistributionSummary(marked, blobs, manifests)
