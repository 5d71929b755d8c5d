"""The namespaces benchmark works: its quick mode runs against the three servers, reports
both rows with a figure for each, and its guarded server did refuse to move a pushed tag (the
run fails otherwise). No figure is judged (benchmarks are not timed tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.namespaces import ROWS

ROOT = Path(__file__).resolve().parents[2]
QUICK_TIMEOUT_SECONDS = 300
NUMBER = r"[0-9]+\.[0-9]{2}"


def test_quick_namespaces_benchmark_reports_both_rows(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.run", "--namespaces", "--quick", "--rounds", "1"]
    result = subprocess.run(
        [*command, "--workdir", str(tmp_path), "--doc", str(tmp_path / "benchmarks.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ROWS:
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"| {row}"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert re.fullmatch(NUMBER, cells[1]) and re.fullmatch(NUMBER, cells[2]), line
        assert re.fullmatch(rf"[+-]{NUMBER} ms \([+-]?[0-9]+%\)", cells[3]), line
        assert re.fullmatch(NUMBER, cells[4]) and re.fullmatch(rf"{NUMBER}x", cells[5]), line
    assert not (tmp_path / "benchmarks.md").exists()  # quick runs only print
