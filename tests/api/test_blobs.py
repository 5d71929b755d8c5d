"""Blob download, ranges, existence, deletion and repository isolation."""

from __future__ import annotations

import os

import httpx
import pytest

from testkit.oci import digest_of, error_codes, push_blob


@pytest.fixture
def blob(client: httpx.Client, repo: str) -> tuple[str, bytes]:
    data = os.urandom(3000)
    return push_blob(client, repo, data), data


def test_get_blob_streams_content_with_digest_headers(
    client: httpx.Client, repo: str, blob: tuple[str, bytes]
) -> None:
    digest, data = blob
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == "3000"


def test_head_blob_has_real_content_length_and_no_body(
    client: httpx.Client, repo: str, blob: tuple[str, bytes]
) -> None:
    digest, _ = blob
    r = client.head(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.headers["content-length"] == "3000"
    assert r.headers["docker-content-digest"] == digest
    assert r.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2999),
        ("bytes=-500", 2500, 2999),
        ("bytes=2000-99999", 2000, 2999),
        ("bytes=0-0", 0, 0),
    ],
)
def test_ranged_get_answers_206_with_content_range(
    client: httpx.Client, repo: str, blob: tuple[str, bytes], header: str, start: int, end: int
) -> None:
    digest, data = blob
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == data[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/3000"
    assert r.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=3000-", "bytes=500-0", "bytes=-0"])
def test_unsatisfiable_range_is_416_with_the_size(
    client: httpx.Client, repo: str, blob: tuple[str, bytes], header: str
) -> None:
    digest, _ = blob
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */3000"


def test_multi_range_is_answered_with_the_whole_blob(
    client: httpx.Client, repo: str, blob: tuple[str, bytes]
) -> None:
    digest, data = blob
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == data


def test_blob_of_another_repository_is_unknown(
    client: httpx.Client, repo: str, blob: tuple[str, bytes]
) -> None:
    digest, _ = blob
    r = client.get(f"/v2/{repo}-other/blobs/{digest}")
    assert r.status_code == 404
    assert error_codes(r) == ["BLOB_UNKNOWN"]
    assert client.head(f"/v2/{repo}-other/blobs/{digest}").status_code == 404


@pytest.mark.parametrize(
    "digest",
    ["sha256:abc", "sha256:" + "A" * 64, "nodigest", "md5:d41d8cd98f00b204e9800998ecf8427e"],
)
def test_malformed_or_unknown_digest_on_blob_get_is_blob_unknown(
    client: httpx.Client, repo: str, digest: str
) -> None:
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 404
    assert error_codes(r) == ["BLOB_UNKNOWN"]


def test_delete_blob_unlinks_it_and_it_can_be_pushed_again(
    client: httpx.Client, repo: str, blob: tuple[str, bytes]
) -> None:
    digest, data = blob
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert client.get(f"/v2/{repo}/blobs/{digest}").status_code == 404
    second = client.delete(f"/v2/{repo}/blobs/{digest}")
    assert second.status_code == 404 and error_codes(second) == ["BLOB_UNKNOWN"]
    assert push_blob(client, repo, data) == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_deleting_a_blob_in_one_repository_keeps_it_in_another(
    client: httpx.Client, repo: str
) -> None:
    data = os.urandom(100)
    digest = push_blob(client, repo, data)
    push_blob(client, repo + "-b", data)
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert client.get(f"/v2/{repo}-b/blobs/{digest}").content == data


def test_empty_blob_is_accepted_and_served(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, b"")
    assert digest == digest_of(b"")
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200 and r.content == b""
    assert client.head(f"/v2/{repo}/blobs/{digest}").headers["content-length"] == "0"
