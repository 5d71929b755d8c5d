"""The benchmark suite works: its quick mode runs end to end, and its charts are written.

Only that it runs and reports every row is checked; no figure is judged (benchmarks are not
timed tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.charts import Bar, write_chart

ROOT = Path(__file__).resolve().parents[2]
QUICK_TIMEOUT_SECONDS = 600


def test_quick_filesystem_benchmark_runs_and_reports_every_row(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "bench.run", "--quick", "--rounds", "1"]
    command += ["--workdir", str(tmp_path)]
    result = subprocess.run(
        [*command, "--doc", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for row in (
        "monolithic push, 512 MiB",
        "chunked push, 512 MiB in 16 MiB PATCHes",
        "chunked push, 512 MiB in 1 MiB PATCHes",
        "blob GET, 512 MiB",
        "manifest GET by tag, c=128",
        "manifest GET by digest, c=1",
        "push of new 4 KiB blobs",
        "manifest PUT of a 10-layer image",
        "32 concurrent GETs of a 4 MiB blob",
        "skopeo copy of 10 x 20 MiB layers: layout to registry",
        "skopeo copy of 10 x 20 MiB layers: registry to layout",
        "cold start to the first 200 on /v2/",
        "tags/list, 10,000 tags, first page",
        "catalog, 5,000 repositories, first page",
        "peak RSS while pushing 1 GiB",
    ):
        line = next((line for line in table.splitlines() if line.startswith(f"| {row}")), "")
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 4 and cells[1] != "-" and cells[2] != "-", (row, line)
    assert not doc.exists()  # the quick mode never writes the page
    assert not list(tmp_path.glob("registry-bench-*"))  # temporary files removed


def test_chart_is_a_png_with_a_bar_per_row(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    write_chart(chart, "title", [Bar("faster row", 2.5), Bar("slower row", 0.8)])
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.stat().st_size > 5_000
