"""The official OCI distribution-spec conformance suite (redesigned suite, OCI_VERSION=1.1).

Built by scripts/install-test-deps.sh from the Go module proxy into .tools/bin. It runs once per
storage backend; reports are kept under reports/conformance-main/<backend>/ (junit.xml,
report.html, results.yaml, output.txt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.harness import PROJECT_ROOT, Backend, run_registry

SUITE = PROJECT_ROOT / ".tools" / "bin" / "conformance-main"
REPORTS = PROJECT_ROOT / "reports" / "conformance-main"


def _count(junit: Path) -> dict[str, int]:
    root = ET.parse(junit).getroot()
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    return totals


@pytest.mark.conformance
def test_oci_conformance_suite_passes_with_zero_failures(tmp_path: Path, backend: Backend) -> None:
    assert SUITE.exists(), f"{SUITE} is missing: run scripts/install-test-deps.sh"
    results = tmp_path / "results"
    reports = REPORTS / backend.name
    with run_registry(tmp_path, backend=backend) as server:
        env = {
            **os.environ,
            "OCI_REGISTRY": server.host,
            "OCI_TLS": "disabled",
            "OCI_REPO1": "conformance/repo1",
            "OCI_REPO2": "conformance/repo2",
            "OCI_VERSION": "1.1",
            "OCI_RESULTS_DIR": str(results),
            # Features we implement beyond the defaults are tested too.
            "OCI_API_BLOBS_UPLOAD_CANCEL": "true",
            "OCI_API_BLOBS_DIGEST_HEADER": "true",
            "OCI_API_MANIFESTS_DIGEST_HEADER": "true",
        }
        run = subprocess.run(
            [str(SUITE)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
    if reports.exists():
        shutil.rmtree(reports)
    shutil.copytree(results, reports)
    (reports / "output.txt").write_text(run.stdout + run.stderr)
    totals = _count(results / "junit.xml")
    summary = f"{totals}; see {reports}/output.txt"
    assert totals["tests"] > 0, f"the suite ran no test: {summary}"
    assert totals["failures"] == 0 and totals["errors"] == 0, summary
    assert run.returncode == 0, summary
