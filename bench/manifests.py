"""Image manifests in the registries under test: the one the manifest GET rows fetch.

Blobs are pushed as POST then PUT ?digest= with the body (what Distribution 2.8 and ours both
take; Distribution 2.8 does not take a single POST with the body, as `testkit.oci.push_blob`
sends); documents and digests come from `testkit.oci`.
"""

from __future__ import annotations

import json
from urllib.parse import urljoin

import httpx

from bench.servers import BenchError
from bench.transfer import with_digest
from testkit.oci import OCI_CONFIG, OCI_MANIFEST, descriptor, digest_of, put_manifest

MANIFEST_REPOSITORY = "bench/manifest"
MANIFEST_TAG = "latest"
REQUEST_TIMEOUT_SECONDS = 30.0
SMALL_CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def client_for(base_url: str) -> httpx.Client:
    """One keep-alive connection to base_url, no proxies."""
    return httpx.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS)


def push_small_blob(client: httpx.Client, repository: str, data: bytes) -> str:
    """POST an upload, PUT data to its Location with ?digest=; the digest."""
    digest = digest_of(data)
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    if started.status_code != 202 or "location" not in started.headers:
        raise BenchError(f"POST upload: {started.status_code} {started.text[:200]}")
    location = urljoin(str(client.base_url), started.headers["location"])
    response = client.put(with_digest(location, digest), content=data)
    if response.status_code != 201:
        raise BenchError(f"blob PUT: {response.status_code} {response.text[:200]}")
    return digest


def store_manifest(client: httpx.Client, repository: str, reference: str, body: bytes) -> None:
    response = put_manifest(client, repository, reference, body)
    if response.status_code != 201:
        raise BenchError(f"manifest PUT: {response.status_code} {response.text[:200]}")


def seed_manifest(base_url: str) -> str:
    """Push a config blob and an image manifest tagged MANIFEST_TAG; the manifest's digest."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(SMALL_CONFIG, OCI_CONFIG),
            "layers": [],
            "annotations": {"org.example.bench": "manifest GET"},
        },
        indent=3,  # about 500 bytes, like a small real manifest
    ).encode()
    with client_for(base_url) as client:
        push_small_blob(client, MANIFEST_REPOSITORY, SMALL_CONFIG)
        store_manifest(client, MANIFEST_REPOSITORY, MANIFEST_TAG, manifest)
    return digest_of(manifest)
