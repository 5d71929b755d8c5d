"""Read-only maintenance mode across two replicas sharing one bucket: the flag one command
writes reaches both."""

from __future__ import annotations

from pathlib import Path

import httpx

from testkit.commands import config_file, registry_command, seconds_until
from testkit.oci import image_manifest, put_manifest
from testkit.registry import S3Backend, run_registry
from tests.api.test_maintenance import (
    FOLLOW_SECONDS,
    REPO,
    is_read_only_refusal,
    pulls_work,
    push_refused,
)


def test_maintenance_on_reaches_both_replicas_within_seconds_and_pulls_keep_working(
    tmp_path: Path, s3_backend: S3Backend
) -> None:
    with (
        run_registry(tmp_path, backend=s3_backend) as first,
        run_registry(tmp_path, backend=s3_backend) as second,
        httpx.Client(base_url=first.url, timeout=60) as a,
        httpx.Client(base_url=second.url, timeout=60) as b,
    ):
        manifest = image_manifest(a, REPO)
        assert put_manifest(a, REPO, "v1", manifest).status_code == 201
        assert not push_refused(a) and not push_refused(b)
        config = config_file(first)

        on = registry_command("maintenance", "on", config=config)
        assert on.returncode == 0, on.stderr
        for client in (a, b):
            seconds_until(lambda client=client: push_refused(client), FOLLOW_SECONDS)
            assert is_read_only_refusal(client.delete(f"/v2/{REPO}/manifests/v1"))
            pulls_work(client, manifest)

        assert registry_command("maintenance", "off", config=config).returncode == 0
        for client in (a, b):
            seconds_until(lambda client=client: not push_refused(client), FOLLOW_SECONDS)
