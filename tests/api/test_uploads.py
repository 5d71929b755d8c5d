"""Upload sessions: monolithic, chunked, streamed, mounts, status, cancel and every bad input."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import httpx
import pytest

from testkit.oci import digest_of, error_codes, push_blob, push_concurrently
from testkit.registry import FILESYSTEM, Backend, RunningRegistry, run_registry


def start(client: httpx.Client, repo: str) -> str:
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["location"].startswith(f"/v2/{repo}/blobs/uploads/")
    assert r.headers["range"] == "0-0"
    assert r.headers["docker-upload-uuid"] in r.headers["location"]
    location: str = r.headers["location"]
    return location


def patch(
    client: httpx.Client, location: str, data: bytes, start_at: int | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if start_at is not None:
        headers["Content-Range"] = f"{start_at}-{start_at + len(data) - 1}"
    return client.patch(location, content=data, headers=headers)


def test_monolithic_post_with_digest_creates_the_blob(client: httpx.Client, repo: str) -> None:
    data = os.urandom(5000)
    digest = digest_of(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_chunked_upload_with_content_range_then_put_with_last_chunk(
    client: httpx.Client, repo: str
) -> None:
    data = os.urandom(10_000)
    location = start(client, repo)
    r = patch(client, location, data[:4000], 0)
    assert r.status_code == 202 and r.headers["range"] == "0-3999"
    r = patch(client, r.headers["location"], data[4000:9000], 4000)
    assert r.status_code == 202 and r.headers["range"] == "0-8999"
    status = client.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-8999"
    digest = digest_of(data)
    r = client.put(
        location,
        params={"digest": digest},
        content=data[9000:],
        headers={"Content-Range": "9000-9999"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data
    assert client.get(location).status_code == 404


def test_streamed_patch_without_content_range_accepts_chunked_bodies(
    client: httpx.Client, repo: str
) -> None:
    blocks = [os.urandom(70_000) for _ in range(5)]
    location = start(client, repo)
    r = client.patch(location, content=iter(blocks))  # Transfer-Encoding: chunked
    assert r.status_code == 202 and r.headers["range"] == f"0-{5 * 70_000 - 1}"
    digest = digest_of(b"".join(blocks))
    r = client.put(location, params={"digest": digest}, headers={"Content-Length": "0"})
    assert r.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == b"".join(blocks)


def test_sha512_uploads_are_verified_and_served(client: httpx.Client, repo: str) -> None:
    data = os.urandom(2048)
    digest = digest_of(data, "sha512")
    location = start(client, repo)
    patch(client, location, data)
    r = client.put(location, params={"digest": digest})
    assert r.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_post_with_sha512_digest_is_monolithic(client: httpx.Client, repo: str) -> None:
    data = os.urandom(100)
    digest = digest_of(data, "sha512")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200


def test_digest_mismatch_on_finish_is_digest_invalid_and_nothing_is_visible(
    client: httpx.Client, repo: str
) -> None:
    data = os.urandom(1000)
    wrong = digest_of(b"something else")
    location = start(client, repo)
    patch(client, location, data, 0)
    r = client.put(location, params={"digest": wrong})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404
    assert client.get(location).status_code == 404


def test_monolithic_digest_mismatch_leaves_nothing(client: httpx.Client, repo: str) -> None:
    wrong = digest_of(b"other")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": wrong}, content=b"data")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404


@pytest.mark.parametrize(
    "digest",
    ["", "sha256:abc", "sha256:" + "G" * 64, "md5:d41d8cd98f00b204e9800998ecf8427e", "notadigest"],
)
def test_malformed_or_unsupported_digest_on_finish_is_digest_invalid(
    client: httpx.Client, repo: str, digest: str
) -> None:
    location = start(client, repo)
    patch(client, location, b"abc", 0)
    r = client.put(location, params={"digest": digest})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.get(location).headers["range"] == "0-2"


def test_put_without_digest_is_digest_invalid(client: httpx.Client, repo: str) -> None:
    location = start(client, repo)
    r = client.put(location)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


@pytest.mark.parametrize("header", ["bytes=0-2", "0-2/3", "0 - 2", "0-", "-2", "a-b", "5-2"])
def test_malformed_content_range_is_416(client: httpx.Client, repo: str, header: str) -> None:
    location = start(client, repo)
    r = client.patch(location, content=b"abc", headers={"Content-Range": header})
    assert r.status_code == 416
    assert r.headers["range"] == "0-0"
    assert client.get(location).headers["range"] == "0-0"


def test_out_of_order_and_overlapping_chunks_are_416_and_keep_the_session(
    client: httpx.Client, repo: str
) -> None:
    location = start(client, repo)
    assert patch(client, location, b"0123456789", 0).status_code == 202
    gap = patch(client, location, b"abc", 20)
    assert gap.status_code == 416 and gap.headers["range"] == "0-9"
    overlap = patch(client, location, b"abc", 5)
    assert overlap.status_code == 416
    assert error_codes(overlap) == ["BLOB_UPLOAD_INVALID"]
    assert patch(client, location, b"abc", 10).headers["range"] == "0-12"
    r = client.put(location, params={"digest": digest_of(b"0123456789abc")})
    assert r.status_code == 201


def test_stale_location_still_answers_status_after_the_session_moved_on(
    client: httpx.Client, repo: str
) -> None:
    location = start(client, repo)
    moved = patch(client, location, b"x" * 22, 0)
    assert moved.status_code == 202
    assert patch(client, location, b"x" * 22, 0).status_code == 416
    status = client.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-21"


def test_content_length_that_disagrees_with_content_range_is_size_invalid(
    client: httpx.Client, repo: str
) -> None:
    location = start(client, repo)
    r = client.patch(
        location, content=b"abcd", headers={"Content-Range": "0-9", "Content-Length": "4"}
    )
    assert r.status_code == 400 and error_codes(r) == ["SIZE_INVALID"]
    assert client.get(location).headers["range"] == "0-0"


def test_body_shorter_than_its_content_range_is_size_invalid_and_not_kept(
    client: httpx.Client, repo: str
) -> None:
    location = start(client, repo)
    r = client.patch(
        location, content=iter([b"abcd"]), headers={"Content-Range": "0-9"}
    )  # chunked body: the server counts what really arrived
    assert r.status_code == 400 and error_codes(r) == ["SIZE_INVALID"]
    assert client.get(location).headers["range"] == "0-0"
    assert patch(client, location, b"abcd", 0).headers["range"] == "0-3"


def test_unknown_upload_id_is_blob_upload_unknown(client: httpx.Client, repo: str) -> None:
    for upload_id in ["0" * 32, "not-a-uuid", "z" * 32]:
        r = client.get(f"/v2/{repo}/blobs/uploads/{upload_id}")
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        r = client.patch(f"/v2/{repo}/blobs/uploads/{upload_id}", content=b"x")
        assert r.status_code == 404


def test_upload_id_cannot_be_used_from_another_repository(client: httpx.Client, repo: str) -> None:
    location = start(client, repo)
    upload_id = location.rsplit("/", 1)[1]
    other = f"/v2/{repo}-other/blobs/uploads/{upload_id}"
    assert client.get(other).status_code == 404
    assert client.patch(other, content=b"abc").status_code == 404
    r = client.put(other, params={"digest": digest_of(b"")})
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    assert client.delete(other).status_code == 404
    assert client.get(location).status_code == 204


def test_cancel_removes_the_session(client: httpx.Client, repo: str) -> None:
    location = start(client, repo)
    patch(client, location, b"abc", 0)
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.delete(location).status_code == 404


def test_mount_from_a_repository_holding_the_blob_is_201(client: httpx.Client, repo: str) -> None:
    data = os.urandom(64)
    digest = push_blob(client, repo, data)
    r = client.post(
        f"/v2/{repo}-target/blobs/uploads/", params={"mount": digest, "from": repo, "origin": "x"}
    )
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/{repo}-target/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{repo}-target/blobs/{digest}").content == data


@pytest.mark.parametrize("source", ["nowhere/at-all", "INVALID", None])
def test_impossible_mount_falls_back_to_an_upload_session(
    client: httpx.Client, repo: str, source: str | None
) -> None:
    digest = push_blob(client, repo + "-src", os.urandom(64))
    params = {"mount": digest} | ({"from": source} if source else {})
    r = client.post(f"/v2/{repo}/blobs/uploads/", params=params)
    assert r.status_code == 202
    assert r.headers["location"].startswith(f"/v2/{repo}/blobs/uploads/")
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_the_same_blob_committed_concurrently_ends_in_one_object(
    registry_server: RunningRegistry, repo: str
) -> None:
    data = os.urandom(300_000)
    digest = digest_of(data)
    targets = [(registry_server.url, f"{repo}-{index % 2}") for index in range(8)]
    assert push_concurrently(targets, data) == [201] * 8
    blob = f"blobs/sha256/{digest[7:]}"
    assert registry_server.stored_keys(blob) == [blob]
    assert registry_server.stored_bytes(blob) == data


def _send_partial_patch(url: str, location: str, declared: int, sent: bytes) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
            f"Content-Range: 0-{declared - 1}\r\n\r\n".encode()
            + sent
        )


def test_client_disconnecting_mid_chunk_leaves_the_session_resumable(
    registry_server: RunningRegistry, client: httpx.Client, repo: str
) -> None:
    location = start(client, repo)
    data = os.urandom(200_000)
    _send_partial_patch(registry_server.url, location, len(data), data[:50_000])
    status = client.get(location)
    for _ in range(100):  # the server notices the disconnect asynchronously
        if status.headers["range"] == "0-0":
            break
        status = client.get(location)
    assert status.headers["range"] == "0-0"
    assert patch(client, location, data, 0).status_code == 202
    r = client.put(location, params={"digest": digest_of(data)})
    assert r.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data


def test_upload_session_survives_a_restart(tmp_path: Path, repo: str, backend: Backend) -> None:
    data = os.urandom(100_000)
    with run_registry(tmp_path, backend=backend) as first, httpx.Client(base_url=first.url) as c:
        location = start(c, repo)
        patch(c, location, data[:60_000], 0)
    with run_registry(tmp_path, backend=backend) as second, httpx.Client(base_url=second.url) as c:
        assert c.get(location).headers["range"] == "0-59999"
        patch(c, location, data[60_000:], 60_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert c.put(location, params={"digest": digest}).status_code == 201
        assert c.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_a_torn_session_state_is_an_unknown_upload_not_a_server_error(
    tmp_path: Path, repo: str
) -> None:
    """The filesystem does not fsync upload sessions: after a power loss a state file may be
    cut short. Such a session is gone for the client (404), the registry keeps working."""
    data = os.urandom(10_000)
    with run_registry(tmp_path) as registry, httpx.Client(base_url=registry.url) as c:
        location = start(c, repo)
        assert patch(c, location, data[:4_000], 0).status_code == 202
        state_file = FILESYSTEM.files(tmp_path)[f"uploads/{location.rsplit('/', 1)[-1]}/state"]
        state_file.write_bytes(state_file.read_bytes()[:20])
        for response in (c.get(location), patch(c, location, data[4_000:], 4_000)):
            assert response.status_code == 404
            assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
        assert push_blob(c, repo, data) == digest_of(data)


def test_refused_large_chunk_is_answered_on_a_connection_that_stays_open(
    client: httpx.Client, repo: str
) -> None:
    location = start(client, repo)
    chunk = os.urandom(6 * 1024 * 1024)
    for _ in range(2):  # the same connection serves the second attempt
        r = patch(client, location, chunk, 100)
        assert r.status_code == 416 and r.headers["range"] == "0-0"
        assert "close" not in r.headers.get("connection", "")
    assert patch(client, location, chunk, 0).headers["range"] == f"0-{len(chunk) - 1}"
