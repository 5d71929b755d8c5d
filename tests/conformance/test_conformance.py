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

from testkit.registry import FILESYSTEM, PROJECT_ROOT, Backend, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user

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


def run_suite(
    tmp_path: Path,
    backend: Backend,
    report_name: str,
    registry_env: dict[str, str] | None = None,
    suite_env: dict[str, str] | None = None,
) -> None:
    assert SUITE.exists(), f"{SUITE} is missing: run scripts/install-test-deps.sh"
    results = tmp_path / "results"
    reports = REPORTS / report_name
    with run_registry(tmp_path, registry_env, backend=backend) as server:
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
            **(suite_env or {}),
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


@pytest.mark.conformance
def test_oci_conformance_suite_passes_with_zero_failures(tmp_path: Path, backend: Backend) -> None:
    run_suite(tmp_path, backend, backend.name)


@pytest.mark.conformance
def test_oci_conformance_suite_passes_with_token_authentication(tmp_path: Path) -> None:
    add_user(tmp_path / "htpasswd", "conformance", PASSWORD)
    run_suite(
        tmp_path,
        FILESYSTEM,
        "token-auth",
        {"REGISTRY_AUTH_MODE": "token", "REGISTRY_AUTH_HTPASSWD_PATH": str(tmp_path / "htpasswd")},
        {"OCI_USERNAME": "conformance", "OCI_PASSWORD": PASSWORD},
    )
