"""Pushes and pulls over HTTP for garbage-collection tests (async: collectors run alongside)."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from testkit.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of


async def upload(client: httpx.AsyncClient, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    r = await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def config_blob() -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(8).hex()}).encode()


def manifest_of(blobs: list[bytes], **fields: Any) -> bytes:
    config, *layers = blobs
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(config, OCI_CONFIG),
            "layers": [descriptor(layer, OCI_LAYER) for layer in layers],
            **fields,
        }
    ).encode()


def index_of(manifests: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(m, OCI_MANIFEST) for m in manifests],
        }
    ).encode()


async def put(
    client: httpx.AsyncClient,
    repo: str,
    reference: str,
    body: bytes,
    media_type: str = OCI_MANIFEST,
) -> str:
    r = await client.put(
        f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )
    assert r.status_code == 201, r.text
    return digest_of(body)


async def push_image(
    client: httpx.AsyncClient, repo: str, tag: str | None, blobs: list[bytes], **fields: Any
) -> bytes:
    """Upload the blobs and put a manifest naming them (config first) under tag, or by
    digest; the manifest's bytes."""
    for data in blobs:
        await upload(client, repo, data)
    body = manifest_of(blobs, **fields)
    await put(client, repo, tag or digest_of(body), body)
    return body


async def assert_pulls(
    client: httpx.AsyncClient, repo: str, reference: str, blobs: list[bytes]
) -> None:
    accept = f"{OCI_MANIFEST}, {OCI_INDEX}"
    r = await client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})
    assert r.status_code == 200, r.text
    for data in blobs:
        blob = await client.get(f"/v2/{repo}/blobs/{digest_of(data)}")
        assert blob.status_code == 200, (repo, digest_of(data), blob.text)
        assert blob.content == data
