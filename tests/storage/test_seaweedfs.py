"""The S3 test harness itself: what outage and redirect tests rely on from tests/seaweed.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from testkit.seaweed import SeaweedFS, running_seaweedfs

pytestmark = pytest.mark.s3


def test_a_private_seaweedfs_on_127_0_0_2_keeps_objects_across_a_restart(tmp_path: Path) -> None:
    with running_seaweedfs(tmp_path, host="127.0.0.2") as s3:
        assert s3.endpoint_url == f"http://127.0.0.2:{s3.ports.s3}"
        bucket = s3.create_bucket("outage")
        with s3.client() as c:
            c.put_object(Bucket=bucket, Key="kept/object", Body=b"acknowledged")
        s3.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", s3.ports.s3), timeout=5).close()
        s3.start()
        with s3.client() as c:
            body = c.get_object(Bucket=bucket, Key="kept/object")["Body"]
            assert body.read() == b"acknowledged"
            body.close()
            listed = c.list_objects_v2(Bucket=bucket)["Contents"]
        assert [item["Key"] for item in listed] == ["kept/object"]  # no probe leftovers


def test_seaweedfs_refuses_addresses_other_than_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SeaweedFS(tmp_path, host="10.0.0.1")
