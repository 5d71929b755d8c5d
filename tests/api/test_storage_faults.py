"""Storage faults over a real server on a filesystem the test controls: a full disk, a
read-only remount, a deleted root, unreadable blobs, stale temporary files and a root that
cannot be used at start. Each answer is a clear OCI error, the server keeps serving reads,
and nothing half-written becomes visible.

Tests mount their own small tmpfs (CI runs as root: a failing mount fails the test).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from testkit.oci import (
    OCI_MANIFEST,
    digest_of,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
)
from testkit.ports import LOOPBACK, free_port
from testkit.registry import FilesystemBackend, RunningRegistry, run_registry

FILL_LIMIT_WRITES = 100_000  # 4 KiB each: far more than any tmpfs these tests mount
READY_TIMEOUT_SECONDS = 20.0
LARGE_DECLARED_LENGTH = 100 << 20  # over the drain limit: the connection is closed instead


@contextmanager
def tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


@contextmanager
def registry_at(data_dir: Path, root: Path) -> Iterator[tuple[RunningRegistry, httpx.Client]]:
    with (
        run_registry(data_dir, backend=FilesystemBackend(root)) as registry,
        httpx.Client(base_url=registry.url, timeout=30) as client,
    ):
        yield registry, client


def fill(path: Path) -> None:
    """Write to path until the filesystem holding it is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for _ in range(FILL_LIMIT_WRITES):
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return
        raise AssertionError(f"{path} never filled its filesystem")
    finally:
        os.close(fd)


def message(response: httpx.Response) -> str:
    text: str = response.json()["errors"][0]["message"]
    return text


def wait_for_readiness(client: httpx.Client, status: int) -> httpx.Response:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while (response := client.get("/readyz")).status_code != status:
        assert time.monotonic() < deadline, f"/readyz stayed {response.status_code}"
        time.sleep(0.1)
    return response


def refused_before_the_body(registry: RunningRegistry, repository: str) -> bytes:
    """An upload session opened with a 100 MiB body that is never sent (the server fails to
    store the session first): the raw answer, read until the server closes the connection."""
    request = (
        f"POST /v2/{repository}/blobs/uploads/ HTTP/1.1\r\n"
        f"Host: x\r\nContent-Length: {LARGE_DECLARED_LENGTH}\r\n\r\n"
    ).encode()
    with socket.create_connection((LOOPBACK, int(registry.host.rsplit(":", 1)[1])), 10) as s:
        s.sendall(request)
        received = b""
        while chunk := s.recv(65536):  # ends only when the server closes: it must
            received += chunk
    return received


def assert_closing(raw: bytes, status: int) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(f"http/1.1 {status} ".encode()), raw[:200]
    assert b"\r\nconnection: close" in head, head


def test_a_full_storage_is_507_and_nothing_half_written_is_visible(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk, registry_at(tmp_path, disk / "storage") as (r, c):
        body = image_manifest(c, "full/app")
        assert put_manifest(c, "full/app", "v1", body).status_code == 201
        small = push_blob(c, "full/app", b"stored before the disk filled up")

        big = os.urandom(3 << 20)  # larger than the whole disk
        pushed = c.post(
            "/v2/full/app/blobs/uploads/", params={"digest": digest_of(big)}, content=big
        )
        assert pushed.status_code == 507, pushed.text
        assert error_codes(pushed) == ["UNAVAILABLE"] and "storage is full" in message(pushed)
        assert pushed.headers.get("connection") != "close"  # the body was drained
        location = c.post("/v2/full/app/blobs/uploads/").headers["location"]
        chunk = c.patch(location, content=big)
        assert chunk.status_code == 507 and error_codes(chunk) == ["UNAVAILABLE"]
        assert c.head(f"/v2/full/app/blobs/{digest_of(big)}").status_code == 404
        assert c.get(location).headers["range"] == "0-0"  # the session holds nothing
        assert list(r.backend.temp_dir(tmp_path).iterdir()) == []

        fill(disk / "filler")
        moved = json.loads(body) | {"annotations": {"revision": "2"}}
        refused = put_manifest(c, "full/app", "v1", json.dumps(moved).encode())
        assert refused.status_code == 507 and error_codes(refused) == ["UNAVAILABLE"]
        assert_closing(refused_before_the_body(r, "full/new"), 507)

        assert c.get("/v2/full/app/manifests/v1").content == body  # the tag did not move
        assert c.get(f"/v2/full/app/blobs/{small}").content == b"stored before the disk filled up"
        assert c.get("/v2/full/app/tags/list").json()["tags"] == ["v1"]
        assert c.get("/readyz").status_code == 200  # pulls still work: stay in rotation
        assert list(r.backend.temp_dir(tmp_path).iterdir()) == []
        assert "Traceback" not in r.log() and "StorageFull" in r.log()

        (disk / "filler").unlink()
        assert push_blob(c, "full/app", big[: 512 << 10])  # room again: pushes work again


def test_a_read_only_storage_is_503_on_writes_while_reads_work(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "16m") as disk, registry_at(tmp_path, disk / "s") as (r, c):
        body = image_manifest(c, "ro/app")
        assert put_manifest(c, "ro/app", "v1", body).status_code == 201
        blob = push_blob(c, "ro/app", b"stored before the remount")

        remount(disk, "ro")
        try:
            for refused in (
                c.post("/v2/ro/app/blobs/uploads/"),
                c.post(
                    "/v2/ro/app/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"x"
                ),
                put_manifest(c, "ro/app", "v2", body),
                c.delete("/v2/ro/app/manifests/v1"),
            ):
                assert refused.status_code == 503, refused.text
                assert error_codes(refused) == ["UNAVAILABLE"]
                assert message(refused) == "the registry's storage is read-only"
            assert_closing(refused_before_the_body(r, "ro/new"), 503)

            assert c.get("/v2/ro/app/manifests/v1").content == body
            assert c.get(f"/v2/ro/app/blobs/{blob}").content == b"stored before the remount"
            assert c.get("/v2/ro/app/tags/list").json()["tags"] == ["v1"]
            not_ready = wait_for_readiness(c, 503)
            assert not_ready.json() == {"status": "unavailable"}
            assert c.get("/healthz").status_code == 200
        finally:
            remount(disk, "rw")

        wait_for_readiness(c, 200)
        assert put_manifest(c, "ro/app", "v2", body).status_code == 201
        assert "Traceback" not in r.log() and "Read-only file system" in r.log()


def test_a_deleted_root_is_not_ready_until_created_again_then_writes_work(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    with registry_at(tmp_path, root) as (r, c):
        push_blob(c, "gone/app", b"before")
        shutil.rmtree(root)

        not_ready = wait_for_readiness(c, 503)
        assert not_ready.json() == {"status": "unavailable"} and str(root) not in not_ready.text
        refused = c.post(
            "/v2/gone/app/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"x"
        )
        assert refused.status_code == 503 and error_codes(refused) == ["UNAVAILABLE"]
        assert str(root) not in refused.text
        assert not root.exists()  # never created by us: it may be a mount point not mounted

        root.mkdir()
        wait_for_readiness(c, 200)
        after = push_blob(c, "gone/app", b"after")
        assert c.get(f"/v2/gone/app/blobs/{after}").content == b"after"
        assert "Traceback" not in r.log()


def test_stale_temporary_files_are_removed_at_start_and_young_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    temp = FilesystemBackend(root).temp_dir(tmp_path)
    temp.mkdir(parents=True)
    now = time.time()
    stale, young = temp / "left-by-a-crash", temp / "being-written"
    for path, age in ((stale, 2 * 3600), (young, 50 * 60)):
        path.write_bytes(b"partial")
        os.utime(path, (now - age, now - age))

    with registry_at(tmp_path, root):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while stale.exists():
            assert time.monotonic() < deadline, "the stale temporary file was not removed"
            time.sleep(0.1)
        assert young.exists()


def test_a_blob_that_cannot_be_opened_is_an_error_status_not_200(tmp_path: Path) -> None:
    with registry_at(tmp_path, tmp_path / "root") as (r, c):
        digest = push_blob(c, "broken/app", b"blob bytes")
        path = r.backend.files(tmp_path)["blobs/" + digest.replace(":", "/")]
        url = f"/v2/broken/app/blobs/{digest}"

        path.unlink()
        path.mkdir()  # a file that is there but cannot be read as one
        for response in (c.get(url), c.get(url, headers={"Range": "bytes=0-3"}), c.head(url)):
            assert response.status_code == 503, response
        assert error_codes(c.get(url)) == ["UNAVAILABLE"]

        path.rmdir()
        path.symlink_to(tmp_path / "nowhere")  # the file vanished behind a link
        gone = c.get(url)
        assert gone.status_code == 404 and error_codes(gone) == ["BLOB_UNKNOWN"]
        assert c.get("/v2/").status_code == 200  # the connection and the server carry on
        assert "Traceback" not in r.log()


def test_a_key_too_long_for_the_filesystem_is_a_4xx_never_a_500(tmp_path: Path) -> None:
    # Within the digest grammar and its bounds, but percent-encoded for a file name
    # ('+' and '=' take three characters each) longer than any filesystem accepts.
    subject = "a+" * 15 + "aa:" + "=" * 128
    with registry_at(tmp_path, tmp_path / "root") as (_, c):
        document = json.loads(image_manifest(c, "long/app"))
        document["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 2}
        refused = put_manifest(c, "long/app", "signed", json.dumps(document).encode())
        assert refused.status_code == 400 and error_codes(refused) == ["DIGEST_INVALID"]
        assert c.get("/v2/long/app/manifests/signed").status_code == 404
        referrers = c.get(f"/v2/long/app/referrers/{subject}")
        assert referrers.status_code == 200 and referrers.json()["manifests"] == []
        assert c.get(f"/v2/long/app/blobs/{subject}").status_code == 404


def serve_on(root: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    environment |= {
        "REGISTRY_STORAGE_FILESYSTEM_ROOT": str(root),
        "REGISTRY_HTTP_ADDR": f"{LOOPBACK}:{free_port()}",
    }
    return subprocess.run(
        [sys.executable, "-m", "registry", "serve"],
        capture_output=True,
        text=True,
        timeout=60,  # a server that started anyway is killed and fails the test
        env=environment,
    )


@pytest.mark.parametrize("case", ["a file", "cannot be created", "not writable"])
def test_an_unusable_root_stops_serve_with_one_line(tmp_path: Path, case: str) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        (disk / "existing").mkdir()
        (disk / "file").write_text("not a directory")
        remount(disk, "ro")
        root = {
            "a file": disk / "file",
            "cannot be created": disk / "new" / "root",
            "not writable": disk / "existing",
        }[case]
        result = serve_on(root)
        remount(disk, "rw")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("registry: storage error: "), lines
    assert str(root) in lines[0]
