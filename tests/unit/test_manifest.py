"""Manifest parsing and validation rules (no storage involved)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from registry.digest import Digest
from registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestInvalid,
    parse_manifest,
)

CONFIG = {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "size": 2,
    "digest": str(Digest.of(b"{}")),
}
LAYER = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar",
    "size": 1,
    "digest": str(Digest.of(b"x")),
}


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_image_manifest_lists_config_and_layers_as_blobs() -> None:
    parsed = parse_manifest(
        encode(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [LAYER]}
        ),
        OCI_MANIFEST,
    )
    assert parsed.media_type == OCI_MANIFEST
    assert [str(b.digest) for b in parsed.blobs] == [CONFIG["digest"], LAYER["digest"]]
    assert parsed.manifests == ()
    assert parsed.artifact_type == CONFIG["mediaType"]


def test_index_lists_children_and_subject() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": LAYER["digest"], "size": 1}
    parsed = parse_manifest(
        encode(
            {
                "schemaVersion": 2,
                "manifests": [LAYER],
                "subject": subject,
                "artifactType": "a/b",
                "annotations": {"k": "v"},
            }
        ),
        OCI_INDEX,
    )
    assert parsed.media_type == OCI_INDEX
    assert [str(m.digest) for m in parsed.manifests] == [LAYER["digest"]]
    assert parsed.subject == Digest.parse(LAYER["digest"])
    assert parsed.artifact_type == "a/b" and parsed.annotations == {"k": "v"}


def test_media_type_comes_from_the_body_when_content_type_is_generic() -> None:
    body = encode({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": []})
    assert parse_manifest(body, "application/json").media_type == DOCKER_LIST
    body = encode(
        {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": CONFIG, "layers": []}
    )
    assert parse_manifest(body, None).media_type == DOCKER_MANIFEST


def test_content_type_parameters_are_ignored() -> None:
    body = encode({"schemaVersion": 2, "config": CONFIG, "layers": []})
    assert parse_manifest(body, OCI_MANIFEST + "; charset=utf-8").media_type == OCI_MANIFEST


def test_unknown_fields_are_accepted() -> None:
    body = encode(
        {
            "schemaVersion": 2,
            "config": {**CONFIG, "data": "e30=", "new": 1},
            "layers": [],
            "newUnspecifiedField": {"x": [1]},
        }
    )
    assert parse_manifest(body, OCI_MANIFEST).blobs[0].size == 2


def test_non_distributable_layers_are_not_required() -> None:
    foreign = {
        **LAYER,
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "urls": ["https://example.invalid/x"],
    }
    body = encode(
        {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": CONFIG, "layers": [foreign]}
    )
    assert len(parse_manifest(body, DOCKER_MANIFEST).blobs) == 1


@pytest.mark.parametrize(
    ("document", "content_type", "message"),
    [
        ({"schemaVersion": 2, "config": CONFIG, "layers": {}}, OCI_MANIFEST, "layers"),
        (
            {"schemaVersion": 2, "config": CONFIG, "layers": [], "manifests": []},
            OCI_MANIFEST,
            "manifests",
        ),
        (
            {"schemaVersion": 2, "manifests": [{"digest": "sha256:x", "size": 1}]},
            OCI_INDEX,
            "digest",
        ),
        ({"schemaVersion": 2, "manifests": [{**LAYER, "size": -1}]}, OCI_INDEX, "size"),
        ({"schemaVersion": 2, "manifests": [{**LAYER, "size": True}]}, OCI_INDEX, "size"),
        (
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []},
            OCI_MANIFEST,
            "does not match",
        ),
        ({"schemaVersion": 2}, None, "unsupported manifest media type"),
        ({"schemaVersion": "2", "manifests": []}, OCI_INDEX, "schemaVersion"),
        ({"schemaVersion": 2, "manifests": [], "annotations": []}, OCI_INDEX, "annotations"),
    ],
)
def test_invalid_manifests_say_what_is_wrong(
    document: dict[str, Any], content_type: str | None, message: str
) -> None:
    with pytest.raises(ManifestInvalid, match=message):
        parse_manifest(encode(document), content_type)
