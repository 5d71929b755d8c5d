"""Small helpers for talking OCI to a registry in tests: push blobs and manifests, raw requests."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def push_concurrently(
    targets: list[tuple[str, str]], data: bytes, timeout: float = 120.0
) -> list[int]:
    """Push data from one thread per (base URL, repository) target at once, each as POST,
    one streamed PATCH and the closing PUT; the closing PUTs' statuses."""
    digest = digest_of(data)
    statuses: list[int] = []

    def push(base_url: str, repository: str) -> None:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            location = client.post(f"/v2/{repository}/blobs/uploads/").headers["location"]
            assert client.patch(location, content=data).status_code == 202
            statuses.append(client.put(location, params={"digest": digest}).status_code)

    threads = [threading.Thread(target=push, args=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return statuses


def descriptor(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(
    client: httpx.Client, repo: str, layers: list[bytes] | None = None, **fields: Any
) -> bytes:
    """Push config and layers; return the bytes of an OCI image manifest naming them."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": fields.pop("n", 0)}).encode()
    push_blob(client, repo, config)
    layer_descriptors = []
    for layer in layers if layers is not None else [b"layer-" + config]:
        push_blob(client, repo, layer)
        layer_descriptors.append(descriptor(layer, OCI_LAYER))
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config, OCI_CONFIG),
        "layers": layer_descriptors,
        **fields,
    }
    return json.dumps(document, indent="\t").encode()


def put_manifest(
    client: httpx.Client, repo: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )


def error_codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def raw_request(base_url: str, request: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send bytes as they are (no path normalisation); return the status and the raw response.

    The request should say `Connection: close`: the response is read until the server closes.
    """
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout) as s:
        s.sendall(request)
        received = b""
        while len(received) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
    status = int(received.split(b" ", 2)[1])
    return status, received
