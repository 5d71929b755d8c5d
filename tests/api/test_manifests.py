"""Manifests by tag and digest: push validation, fetch headers, deletion."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from testkit.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def test_put_by_tag_then_get_by_tag_and_digest_returns_the_exact_bytes(
    client: httpx.Client, repo: str
) -> None:
    body = image_manifest(client, repo)
    digest = digest_of(body)
    r = put_manifest(client, repo, "v1", body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/manifests/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert "oci-subject" not in r.headers
    for reference in ("v1", digest):
        got = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest


def test_head_manifest_has_digest_and_real_length(client: httpx.Client, repo: str) -> None:
    body = image_manifest(client, repo)
    put_manifest(client, repo, "v1", body)
    r = client.head(f"/v2/{repo}/manifests/v1")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(body))
    assert r.headers["docker-content-digest"] == digest_of(body)
    assert r.content == b""


def test_manifest_without_media_type_takes_the_content_type(
    client: httpx.Client, repo: str
) -> None:
    document = json.loads(image_manifest(client, repo))
    del document["mediaType"]
    body = json.dumps(document).encode()
    assert put_manifest(client, repo, "plain", body).status_code == 201
    assert client.get(f"/v2/{repo}/manifests/plain").headers["content-type"] == OCI_MANIFEST


def test_docker_schema2_manifest_and_manifest_list_are_accepted(
    client: httpx.Client, repo: str
) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = os.urandom(100)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    r = put_manifest(client, repo, digest_of(manifest), manifest, DOCKER_MANIFEST)
    assert r.status_code == 201
    listing = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": digest_of(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    assert put_manifest(client, repo, "multi", listing, DOCKER_LIST).status_code == 201
    assert client.get(f"/v2/{repo}/manifests/multi").headers["content-type"] == DOCKER_LIST


def test_index_children_pushed_by_digest_without_tags(client: httpx.Client, repo: str) -> None:
    children = [image_manifest(client, repo, n=i) for i in range(2)]
    for child in children:
        assert put_manifest(client, repo, digest_of(child), child).status_code == 201
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": digest_of(c), "size": len(c)}
                for c in children
            ],
        }
    ).encode()
    assert put_manifest(client, repo, "latest", index, OCI_INDEX).status_code == 201
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["latest"]


def test_index_with_missing_child_is_manifest_blob_unknown(client: httpx.Client, repo: str) -> None:
    missing = digest_of(b"no such manifest")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 16}],
        }
    ).encode()
    r = put_manifest(client, repo, "broken", index, OCI_INDEX)
    assert r.status_code == 400
    assert r.json()["errors"][0] == {
        "code": "MANIFEST_BLOB_UNKNOWN",
        "message": f"manifest {missing} is not in this repository",
        "detail": {"digest": missing},
    }


def test_manifest_naming_missing_blobs_lists_each_one(client: httpx.Client, repo: str) -> None:
    document = json.loads(image_manifest(client, repo))
    missing = [digest_of(os.urandom(8)) for _ in range(2)]
    document["layers"] = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 8}
        for d in missing
    ]
    r = put_manifest(client, repo, "v1", json.dumps(document).encode())
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"] * 2
    assert [e["detail"]["digest"] for e in r.json()["errors"]] == missing
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404


def test_blob_of_another_repository_does_not_satisfy_a_manifest(
    client: httpx.Client, repo: str
) -> None:
    body = image_manifest(client, repo + "-elsewhere")
    r = put_manifest(client, repo, "v1", body)
    assert r.status_code == 400 and set(error_codes(r)) == {"MANIFEST_BLOB_UNKNOWN"}


def test_descriptor_size_must_match_the_stored_blob(client: httpx.Client, repo: str) -> None:
    document = json.loads(image_manifest(client, repo))
    document["layers"][0]["size"] += 1
    r = put_manifest(client, repo, "v1", json.dumps(document).encode())
    assert r.status_code == 400 and error_codes(r) == ["SIZE_INVALID"]


def test_non_distributable_layers_with_urls_need_not_be_pushed(
    client: httpx.Client, repo: str
) -> None:
    document = json.loads(image_manifest(client, repo))
    document["layers"].append(
        {
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": digest_of(b"foreign"),
            "size": 7,
            "urls": ["https://example.invalid/layer"],
        }
    )
    assert put_manifest(client, repo, "v1", json.dumps(document).encode()).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (b'{"schemaVersion": 1}', OCI_MANIFEST),
        (b'{"schemaVersion": 2, "config": {}, "layers": []}', OCI_MANIFEST),
        (
            b'{"schemaVersion": 2, "mediaType": "' + OCI_INDEX.encode() + b'", "manifests": []}',
            OCI_MANIFEST,
        ),
        (b'{"schemaVersion": 2, "manifests": []}', "application/octet-stream"),
        (
            b'{"schemaVersion": 1, "name": "x", "fsLayers": []}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.artifact.manifest.v1+json"}',
            "application/vnd.oci.artifact.manifest.v1+json",
        ),
    ],
    ids=[
        "not-json",
        "not-object",
        "schema1-version",
        "bad-descriptor",
        "type-mismatch",
        "unknown-type",
        "schema1",
        "artifact-manifest",
    ],
)
def test_invalid_manifests_are_manifest_invalid(
    client: httpx.Client, repo: str, body: bytes, content_type: str
) -> None:
    r = put_manifest(client, repo, "bad", body, content_type)
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_INVALID"]
    assert client.get(f"/v2/{repo}/manifests/bad").status_code == 404


def test_oversized_manifest_is_413(client: httpx.Client, repo: str) -> None:
    body = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    r = put_manifest(client, repo, "huge", body)
    assert r.status_code == 413 and error_codes(r) == ["MANIFEST_INVALID"]


def test_put_by_digest_that_does_not_match_the_body_is_digest_invalid(
    client: httpx.Client, repo: str
) -> None:
    body = image_manifest(client, repo)
    r = put_manifest(client, repo, digest_of(b"other"), body)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_put_by_sha512_digest_is_verified_with_sha512(client: httpx.Client, repo: str) -> None:
    body = image_manifest(client, repo)
    digest = digest_of(body, "sha512")
    r = put_manifest(client, repo, digest, body)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{repo}/manifests/{digest}").content == body


@pytest.mark.parametrize("tag", ["-leading-dash", ".dot", "x" * 129, "a+b"])
def test_invalid_tag_is_manifest_invalid_on_put_and_unknown_on_get(
    client: httpx.Client, repo: str, tag: str
) -> None:
    body = image_manifest(client, repo)
    r = put_manifest(client, repo, tag, body)
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]
    got = client.get(f"/v2/{repo}/manifests/{tag}")
    assert got.status_code == 404 and error_codes(got) == ["MANIFEST_UNKNOWN"]


def test_unknown_manifest_and_bad_digest_references_are_404(
    client: httpx.Client, repo: str
) -> None:
    for reference in [
        "nope",
        digest_of(b"nothing"),
        ".INVALID_MANIFEST_NAME",
        "sha256:totallywrong",
    ]:
        r = client.get(f"/v2/{repo}/manifests/{reference}")
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


def test_subject_is_acknowledged_with_oci_subject(client: httpx.Client, repo: str) -> None:
    subject = digest_of(b"a subject that was never pushed")
    body = image_manifest(
        client, repo, subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 31}
    )
    r = put_manifest(client, repo, digest_of(body), body)
    assert r.status_code == 201 and r.headers["oci-subject"] == subject


def test_tags_move_and_repush_is_idempotent(client: httpx.Client, repo: str) -> None:
    first, second = image_manifest(client, repo, n=1), image_manifest(client, repo, n=2)
    assert put_manifest(client, repo, "v", first).status_code == 201
    assert put_manifest(client, repo, "v", first).status_code == 201
    assert put_manifest(client, repo, "v", second).status_code == 201
    got = client.get(f"/v2/{repo}/manifests/v")
    assert got.headers["docker-content-digest"] == digest_of(second)
    assert client.delete(f"/v2/{repo}/manifests/{digest_of(first)}").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/v").content == second


def test_delete_by_digest_removes_every_tag_pointing_at_it(client: httpx.Client, repo: str) -> None:
    body = image_manifest(client, repo)
    for tag in ("a", "b", "c"):
        put_manifest(client, repo, tag, body)
    other = image_manifest(client, repo, n=9)
    put_manifest(client, repo, "keep", other)
    digest = digest_of(body)
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    for reference in ("a", "b", "c", digest):
        assert client.get(f"/v2/{repo}/manifests/{reference}").status_code == 404
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["keep"]
    second = client.delete(f"/v2/{repo}/manifests/{digest}")
    assert second.status_code == 404 and error_codes(second) == ["MANIFEST_UNKNOWN"]


def test_delete_by_tag_only_untags(client: httpx.Client, repo: str) -> None:
    body = image_manifest(client, repo)
    put_manifest(client, repo, "gone", body)
    assert client.delete(f"/v2/{repo}/manifests/gone").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/gone").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/{digest_of(body)}").content == body
    assert client.delete(f"/v2/{repo}/manifests/gone").status_code == 404
