"""Image manifests in the registries under test: the one the manifest GET rows fetch, and
the manifest PUT row (fresh manifests of one 10-layer image, PUT one after another).

Blobs are pushed as POST then PUT ?digest= with the body (what Distribution 2.8 and ours both
take; Distribution 2.8 does not take a single POST with the body, as `testkit.oci.push_blob`
sends); documents and digests come from `testkit.oci`.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import httpx

from bench.servers import BenchError
from bench.transfer import start_upload, with_digest
from testkit.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of, put_manifest

MANIFEST_REPOSITORY = "bench/manifest"
MANIFEST_TAG = "latest"
PUT_REPOSITORY = "bench/manifest-put"
PUT_LAYERS = 10
PUT_LAYER_SIZE = 1 << 10
PUT_BUDGET_SECONDS = 60.0  # per server and round; at least MIN_PUTS are timed
MIN_PUTS = 5
REQUEST_TIMEOUT_SECONDS = 30.0
SMALL_CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def client_for(base_url: str) -> httpx.Client:
    """One keep-alive connection to base_url, no proxies."""
    return httpx.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS)


def push_small_blob(client: httpx.Client, repository: str, data: bytes) -> str:
    """POST an upload, PUT data to its Location with ?digest=; the digest."""
    digest = digest_of(data)
    upload_url = start_upload(str(client.base_url).rstrip("/"), repository)
    response = client.put(with_digest(upload_url, digest), content=data)
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


def push_image_blobs(base_url: str) -> dict[str, Any]:
    """Push a config and PUT_LAYERS new small layers once; a manifest document naming them."""
    layers = [os.urandom(PUT_LAYER_SIZE) for _ in range(PUT_LAYERS)]
    rootfs = {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": rootfs}).encode()
    with client_for(base_url) as client:
        for blob in (config, *layers):
            push_small_blob(client, PUT_REPOSITORY, blob)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config, OCI_CONFIG),
        "layers": [descriptor(layer, OCI_LAYER) for layer in layers],
    }


def manifest_put_milliseconds(
    base_url: str, document: dict[str, Any], count: int, round_index: int
) -> float:
    """PUT `count` fresh manifests of the image `document` names, one after another on one
    connection, each under a tag of its own (an annotation makes each one new, the blobs stay
    the same); the median milliseconds per PUT. Stops early, after MIN_PUTS at least, when
    PUT_BUDGET_SECONDS have passed."""
    times: list[float] = []
    deadline = time.monotonic() + PUT_BUDGET_SECONDS
    with client_for(base_url) as client:
        client.get("/v2/")  # open the connection outside the timing
        for index in range(count):
            if len(times) >= MIN_PUTS and time.monotonic() > deadline:
                break
            name = f"put-{round_index}-{index}"
            annotated = {**document, "annotations": {"org.example.bench.put": name}}
            body = json.dumps(annotated, indent=3).encode()
            started = time.perf_counter()
            response = put_manifest(client, PUT_REPOSITORY, name, body)
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise BenchError(f"manifest PUT: {response.status_code} {response.text[:200]}")
            times.append(elapsed * 1000)
    return statistics.median(times)
