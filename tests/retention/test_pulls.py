"""Pull records through HTTP (filesystem): a manifest GET records the pull once an hour at
most, a HEAD never; `retention plan` keeps what was pulled within keep_pulled_days."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from testkit.commands import seconds_until
from testkit.oci import digest_of
from testkit.registry import FilesystemBackend, RunningRegistry, run_registry
from tests.retention.conftest import operator_config, push_image, retention_json

NAMESPACES = [
    {"pattern": "pulled/**", "retention": {"keep_pulled_days": 30}},
    {"pattern": "unpulled/**", "retention": {"keep_last": 5}},
]


@pytest.fixture(scope="module")
def pull_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    data_dir = tmp_path_factory.mktemp("pulls")
    config = data_dir / "server.yaml"
    config.write_text(yaml.safe_dump({"namespaces": NAMESPACES}))
    with run_registry(data_dir, config_file=config, backend=FilesystemBackend()) as server:
        yield server


def records(server: RunningRegistry) -> dict[str, Path]:
    files = FilesystemBackend().files(server.data_dir)
    return {key: path for key, path in files.items() if "/_pulled/" in key}


def test_heads_record_nothing_and_a_thousand_gets_write_one_record(
    pull_server: RunningRegistry,
) -> None:
    with httpx.Client(base_url=pull_server.url, timeout=60) as c:
        manifest = push_image(c, "pulled/app", "v1", 1)
        digest = digest_of(manifest)
        for _ in range(100):
            assert c.head("/v2/pulled/app/manifests/v1").status_code == 200
            assert c.head(f"/v2/pulled/app/manifests/{digest}").status_code == 200
        time.sleep(0.5)  # (a write would run in the background)
        assert records(pull_server) == {}

        assert c.get("/v2/pulled/app/manifests/v1").content == manifest
        seconds_until(lambda: bool(records(pull_server)), timeout=10)
        [(key, path)] = records(pull_server).items()
        assert key == f"repositories/pulled/app/_pulled/sha256/{digest.split(':')[1]}"
        first = os.stat(path)
        for n in range(999):
            reference = "v1" if n % 2 else digest
            assert c.get(f"/v2/pulled/app/manifests/{reference}").status_code == 200
        time.sleep(0.5)
        again = os.stat(records(pull_server)[key])  # every write replaces the file
        assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


def test_gets_record_nothing_where_keep_pulled_days_is_off(pull_server: RunningRegistry) -> None:
    with httpx.Client(base_url=pull_server.url, timeout=60) as c:
        push_image(c, "unpulled/app", "v1", 2)
        push_image(c, "elsewhere/app", "v1", 3)
        for _ in range(20):
            assert c.get("/v2/unpulled/app/manifests/v1").status_code == 200
            assert c.get("/v2/elsewhere/app/manifests/v1").status_code == 200
    time.sleep(0.5)
    assert not any("/unpulled/" in k or "/elsewhere/" in k for k in records(pull_server))


def test_plan_keeps_the_tags_pulled_within_keep_pulled_days(pull_server: RunningRegistry) -> None:
    with httpx.Client(base_url=pull_server.url, timeout=60) as c:
        push_image(c, "pulled/plan", "used", 4)
        never = push_image(c, "pulled/plan", "unused", 5)
        assert c.get("/v2/pulled/plan/manifests/used").status_code == 200
        seconds_until(lambda: any("/pulled/plan/" in k for k in records(pull_server)), 10)
    planned = retention_json("plan", config=operator_config(pull_server, NAMESPACES))
    mine = [t for t in planned["tags"] if t["repository"] == "pulled/plan"]
    assert mine == [
        {
            "repository": "pulled/plan",
            "tag": "unused",
            "digest": digest_of(never),
            "pushed": mine[0]["pushed"],
            "pulled": None,
            "reason": "never pulled (keep_pulled_days 30)",
        }
    ]
