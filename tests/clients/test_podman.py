"""podman pushes to and pulls from the registry."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from testkit.registry import RunningRegistry
from tests.clients.images import build_image, write_docker_archive, write_oci_archive
from tests.clients.tools import Podman
from tests.clients.wire import blob_size, get_manifest

pytestmark = pytest.mark.clients
PLAIN_HTTP = "--tls-verify=false"


def inspect(podman: Podman, ref: str, field: str) -> str:
    return podman("image", "inspect", "--format", f"{{{{.{field}}}}}", ref).stdout.strip()


def load_as(podman: Podman, archive: Path, ref: str) -> None:
    """`podman load` an archive, and name the image `ref` only."""
    output = podman("load", f"--input={archive}").stdout
    loaded = re.findall(r"^Loaded image: (\S+)$", output, flags=re.MULTILINE)
    assert len(loaded) == 1, output
    podman("tag", loaded[0], ref)
    podman("rmi", loaded[0])


def push_remove_pull(podman: Podman, ref: str, tmp_path: Path) -> str:
    """Push `ref`, delete it locally, pull it back; returns the digest the push reported."""
    digest_file = tmp_path / "pushed-digest"
    podman("push", PLAIN_HTTP, f"--digestfile={digest_file}", ref)
    image_id = inspect(podman, ref, "Id")
    podman("rmi", ref)
    assert podman("image", "exists", image_id, check=False).returncode == 1
    podman("pull", PLAIN_HTTP, ref)
    return digest_file.read_text().strip()


def test_podman_push_then_pull_gives_the_same_image_id_and_digest(
    podman: Podman,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(256 * 1024, 2 * 1024 * 1024))
    archive = tmp_path / "image.tar"
    write_docker_archive(image, archive, ["localhost/offline:latest"])
    ref = f"{registry_server.host}/{repo}:v1"
    load_as(podman, archive, ref)

    digest = push_remove_pull(podman, ref, tmp_path)

    assert inspect(podman, ref, "Id") == image.image_id.removeprefix("sha256:")
    assert inspect(podman, ref, "Digest") == digest
    manifest = get_manifest(client, repo, "v1")
    assert manifest.headers["Docker-Content-Digest"] == digest
    body = manifest.json()
    assert body["config"]["digest"] == image.config.digest
    for descriptor in (body["config"], *body["layers"]):
        assert blob_size(client, repo, descriptor["digest"]) == descriptor["size"]


def test_podman_round_trips_an_image_loaded_from_an_oci_archive(
    podman: Podman,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(16 * 1024, 16 * 1024, 48 * 1024))
    archive = tmp_path / "image.oci.tar"
    write_oci_archive(image, archive, "v1")
    ref = f"{registry_server.host}/{repo}:v1"
    load_as(podman, archive, ref)

    digest = push_remove_pull(podman, ref, tmp_path)

    assert inspect(podman, ref, "Id") == image.image_id.removeprefix("sha256:")
    assert inspect(podman, ref, "Digest") == digest
    body = get_manifest(client, repo, digest).json()
    assert body["config"]["digest"] == image.config.digest
    assert len(body["layers"]) == len(image.layers)
