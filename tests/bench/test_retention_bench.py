"""The retention-plan benchmark works end to end at a small scale (no figure is judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_retention_plan_benchmark_plans_what_it_seeded(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.retention_plan",
            "--tags",
            "200",
            "--repositories",
            "4",
            "--root",
            str(tmp_path / "storage"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(done.stdout)
    # Every other tag is 30 days old and not among the 10 newest: those go.
    assert (result["tags"], result["removals"]) == (200, 100)
