"""Several stateless registry processes on one bucket: any replica serves any request."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.oci import (
    OCI_MANIFEST,
    digest_of,
    image_manifest,
    push_blob,
    push_concurrently,
    put_manifest,
)
from testkit.registry import RunningRegistry, S3Backend, run_registry


@pytest.fixture
def replicas(tmp_path: Path, s3_backend: S3Backend) -> Iterator[tuple[RunningRegistry, ...]]:
    """Two registries sharing one bucket and prefix (the same data directory)."""
    with (
        run_registry(tmp_path, backend=s3_backend) as first,
        run_registry(tmp_path, backend=s3_backend) as second,
    ):
        yield first, second


def clients(*replicas: RunningRegistry) -> list[httpx.Client]:
    return [httpx.Client(base_url=r.url, timeout=60) for r in replicas]


def test_chunked_upload_alternating_between_replicas_completes(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    a, b = clients(*replicas)
    with a, b:
        data = os.urandom(3 * 1024 * 1024 + 17)
        location = a.post("/v2/multi/blobs/uploads/").headers["location"]
        chunks = [data[: 1 << 20], data[1 << 20 : 2 << 20], data[2 << 20 :]]
        offset = 0
        for index, chunk in enumerate(chunks):
            replica = (b, a)[index % 2]
            r = replica.patch(
                location,
                content=chunk,
                headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
            )
            assert r.status_code == 202, r.text
            offset += len(chunk)
            assert (a, b)[index % 2].get(location).headers["range"] == f"0-{offset - 1}"
        digest = digest_of(data)
        r = b.put(location, params={"digest": digest})
        assert r.status_code == 201, r.text
        assert a.get(f"/v2/multi/blobs/{digest}").content == data
        assert b.head(f"/v2/multi/blobs/{digest}").headers["content-length"] == str(len(data))


def test_a_wrong_digest_is_caught_by_a_replica_without_the_running_hash(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    a, b = clients(*replicas)
    with a, b:
        location = a.post("/v2/multi/blobs/uploads/").headers["location"]
        a.patch(location, content=b"first part")
        a.patch(location, content=b" second part")
        wrong = digest_of(b"something else")
        r = b.put(location, params={"digest": wrong})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert a.head(f"/v2/multi/blobs/{wrong}").status_code == 404


def test_manifest_pushed_through_one_replica_is_pulled_through_the_other_and_tags_move(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    a, b = clients(*replicas)
    with a, b:
        first = image_manifest(a, "multi/app", n=1)
        assert put_manifest(a, "multi/app", "v1", first).status_code == 201
        got = b.get("/v2/multi/app/manifests/v1")
        assert got.content == first and got.headers["docker-content-digest"] == digest_of(first)
        second = image_manifest(b, "multi/app", n=2)
        assert put_manifest(b, "multi/app", "v1", second).status_code == 201
        assert a.get("/v2/multi/app/manifests/v1").content == second  # no stale cache
        assert b.delete("/v2/multi/app/manifests/v1").status_code == 202
        assert a.get("/v2/multi/app/manifests/v1").status_code == 404


def test_a_manifest_cached_by_one_replica_is_gone_there_once_the_other_deletes_it(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    a, b = clients(*replicas)
    with a, b:
        manifest = image_manifest(a, "multi/cached", n=1)
        digest = digest_of(manifest)
        assert put_manifest(a, "multi/cached", "v1", manifest).status_code == 201
        for reference in ("v1", digest, "v1"):  # served, and so cached, by a
            assert a.get(f"/v2/multi/cached/manifests/{reference}").content == manifest
        assert b.delete(f"/v2/multi/cached/manifests/{digest}").status_code == 202
        for reference in ("v1", digest):
            assert a.get(f"/v2/multi/cached/manifests/{reference}").status_code == 404
            assert a.head(f"/v2/multi/cached/manifests/{reference}").status_code == 404


def test_eight_clients_pushing_one_blob_across_replicas_all_succeed_with_one_object(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    data = os.urandom(6 * 1024 * 1024)
    digest = digest_of(data)
    targets = [(replicas[index % 2].url, f"same/blob{index % 3}") for index in range(8)]
    assert push_concurrently(targets, data) == [201] * 8
    key = f"blobs/sha256/{digest.removeprefix('sha256:')}"
    assert replicas[0].stored_keys("blobs/") == [key]
    assert replicas[0].stored_bytes(key) == data
    assert replicas[0].stored_keys("uploads/") == []


def test_two_replicas_tagging_concurrently_end_with_one_valid_tag(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    a, b = clients(*replicas)
    with a, b:
        bodies = [image_manifest(c, "race/app", n=i) for i, c in enumerate((a, b, a, b))]
        for body in bodies:
            assert put_manifest(a, "race/app", digest_of(body), body).status_code == 201
    statuses: list[int] = []

    def tag(index: int) -> None:
        with httpx.Client(base_url=replicas[index % 2].url, timeout=60) as c:
            for _ in range(5):
                statuses.append(put_manifest(c, "race/app", "latest", bodies[index]).status_code)

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses == [201] * 20
    for replica in replicas:
        with httpx.Client(base_url=replica.url) as c:
            got = c.get("/v2/race/app/manifests/latest")
            assert got.status_code == 200 and got.content in bodies
            assert got.headers["docker-content-digest"] == digest_of(got.content)
            assert c.get("/v2/race/app/tags/list").json()["tags"] == ["latest"]


def _start_streaming(replica: RunningRegistry, request_head: str, sent: bytes) -> socket.socket:
    host, port = replica.host.split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(request_head.encode() + sent)
    return s


def _kill(replica: RunningRegistry) -> None:
    replica.process.send_signal(signal.SIGKILL)
    replica.process.wait(timeout=15)


def test_replica_killed_during_a_chunk_then_the_upload_resumes_on_the_other(
    tmp_path: Path, s3_backend: S3Backend
) -> None:
    data = os.urandom(40 * 1024 * 1024)
    with run_registry(tmp_path, backend=s3_backend) as survivor:
        with (
            run_registry(tmp_path, backend=s3_backend) as doomed,
            httpx.Client(base_url=doomed.url, timeout=60) as c,
        ):
            location = c.post("/v2/resume/blobs/uploads/").headers["location"]
            first = 8 * 1024 * 1024
            assert c.patch(location, content=data[:first]).status_code == 202
            head = (
                f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data) - first}\r\n"
                f"Content-Range: {first}-{len(data) - 1}\r\n\r\n"
            )
            stream = _start_streaming(doomed, head, data[first : first + 20 * 1024 * 1024])
            _kill(doomed)
            stream.close()
        with httpx.Client(base_url=survivor.url, timeout=120) as c:
            status = c.get(location)
            assert status.status_code == 204 and status.headers["range"] == f"0-{first - 1}"
            rest = data[first:]
            r = c.patch(
                location,
                content=rest,
                headers={"Content-Range": f"{first}-{len(data) - 1}"},
            )
            assert r.status_code == 202
            digest = digest_of(data)
            assert c.put(location, params={"digest": digest}).status_code == 201
            assert c.get(f"/v2/resume/blobs/{digest}").content == data


def test_monolithic_push_killed_midway_leaves_no_readable_blob(
    tmp_path: Path, s3_backend: S3Backend
) -> None:
    data = os.urandom(48 * 1024 * 1024)
    digest = digest_of(data)
    with run_registry(tmp_path, backend=s3_backend) as doomed:
        head = (
            f"POST /v2/partial/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        stream = _start_streaming(doomed, head, data[: 40 * 1024 * 1024])
        _kill(doomed)
        stream.close()
    with (
        run_registry(tmp_path, backend=s3_backend) as survivor,
        httpx.Client(base_url=survivor.url) as c,
    ):
        assert c.head(f"/v2/partial/blobs/{digest}").status_code == 404
        assert survivor.stored_keys("blobs/") == []
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "config": {"mediaType": "x", "digest": digest, "size": len(data)},
                "layers": [],
            }
        ).encode()
        r = put_manifest(c, "partial", "v1", manifest, OCI_MANIFEST)
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
        assert push_blob(c, "partial", data) == digest


def test_chunks_of_the_advertised_minimum_are_joined_inside_s3(
    replicas: tuple[RunningRegistry, ...],
) -> None:
    a, b = clients(*replicas)
    with a, b:
        started = a.post("/v2/joined/blobs/uploads/")
        minimum = int(started.headers["oci-chunk-min-length"])
        assert minimum == 5 * 1024 * 1024
        data = os.urandom(2 * minimum + 1000)
        location = started.headers["location"]
        for index, start in enumerate(range(0, len(data), minimum)):
            chunk = data[start : start + minimum]
            r = (a, b)[index % 2].patch(
                location,
                content=chunk,
                headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"},
            )
            assert r.status_code == 202
        digest = digest_of(data)
        assert a.put(location, params={"digest": digest}).status_code == 201
        assert b.get(f"/v2/joined/blobs/{digest}").content == data
        assert replicas[0].stored_keys("uploads/") == []
