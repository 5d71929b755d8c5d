"""containerd (ctr 1.6) pushes several layers in parallel and pulls them back unchanged."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from testkit.registry import RunningRegistry
from tests.clients.images import build_image, write_oci_archive
from tests.clients.tools import Containerd
from tests.clients.wire import blob_content, blob_size, get_manifest

pytestmark = pytest.mark.clients


def image_digest(ctr: Containerd, ref: str) -> str:
    """The manifest digest containerd's image store records for `ref`."""
    for line in ctr("images", "ls").stdout.splitlines()[1:]:
        name, _media_type, digest, *_ = line.split()
        if name == ref:
            return digest
    raise AssertionError(f"{ref} is not in containerd's image store")


def content_digests(ctr: Containerd) -> set[str]:
    return {line.split()[0] for line in ctr("content", "ls", "--quiet").stdout.splitlines()}


def test_containerd_push_then_pull_keeps_the_manifest_digest_and_every_blob(
    ctr: Containerd,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    # ctr pushes all layers at once (no --max-concurrent-uploaded-layers limit by default).
    image = build_image(layer_sizes=(256 * 1024, 512 * 1024, 1024 * 1024, 1536 * 1024, 2048 * 1024))
    archive = tmp_path / "image.oci.tar"
    write_oci_archive(image, archive, "v1")
    name = f"{registry_server.host}/{repo}"
    ref = f"{name}:v1"
    ctr("images", "import", "--snapshotter=native", f"--base-name={name}", str(archive))
    assert image_digest(ctr, ref) == image.manifest.digest

    ctr("images", "push", "--plain-http", ref)

    stored = get_manifest(client, repo, "v1")
    assert stored.headers["Docker-Content-Digest"] == image.manifest.digest
    assert stored.content == image.manifest.data
    for blob in image.blobs:
        assert blob_size(client, repo, blob.digest) == blob.size
    assert blob_content(client, repo, image.config.digest) == image.config.data

    ctr("images", "rm", "--sync", ref)
    ours = {image.manifest.digest, *(blob.digest for blob in image.blobs)}
    assert not ours & content_digests(ctr)

    ctr("images", "pull", "--plain-http", "--snapshotter=native", ref)

    assert image_digest(ctr, ref) == image.manifest.digest
    assert ours <= content_digests(ctr)
    pulled = ctr("content", "get", image.manifest.digest).stdout.encode()
    assert pulled == image.manifest.data
    ctr("images", "rm", "--sync", ref)
