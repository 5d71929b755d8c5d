"""What the registry itself holds, read over HTTP: the ground truth the client tests assert on."""

from __future__ import annotations

import httpx

from tests.clients.images import OCI_INDEX, OCI_MANIFEST, sha256_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANY_MANIFEST = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])


def get_manifest(client: httpx.Client, repo: str, reference: str) -> httpx.Response:
    """GET a manifest by tag or digest, checking the registry's digest header against the bytes."""
    response = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": ANY_MANIFEST})
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["Docker-Content-Digest"] == sha256_digest(response.content)
    return response


def blob_size(client: httpx.Client, repo: str, digest: str) -> int | None:
    """The size of a blob linked into `repo` (by HEAD), or None when `repo` does not have it."""
    response = client.head(f"/v2/{repo}/blobs/{digest}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, (response.status_code, response.headers)
    assert response.headers["Docker-Content-Digest"] == digest
    return int(response.headers["Content-Length"])


def blob_content(client: httpx.Client, repo: str, digest: str) -> bytes:
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status_code == 200, (response.status_code, response.text)
    return response.content
