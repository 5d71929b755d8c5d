"""docker (dockerd 20.10) pushes to and pulls from the registry."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from testkit.registry import RunningRegistry
from tests.clients.images import Image, build_image, write_docker_archive
from tests.clients.tools import Docker
from tests.clients.wire import DOCKER_MANIFEST, blob_size, get_manifest

pytestmark = pytest.mark.clients


def load_offline_image(docker: Docker, tmp_path: Path, image: Image, ref: str) -> None:
    """`docker load` a docker-archive of `image` under a local name, then tag it as `ref`."""
    local = f"offline/{tmp_path.name.lower()}:latest"
    archive = tmp_path / "image.tar"
    write_docker_archive(image, archive, [local])
    docker("load", "--input", str(archive))
    docker("tag", local, ref)
    docker("rmi", local)


def image_id(docker: Docker, ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def pushed_digest(push_output: str) -> str:
    match = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", push_output)
    assert match, push_output
    return match.group(1)


def test_docker_push_then_pull_gives_the_same_image_id(
    docker: Docker,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(512 * 1024, 3 * 1024 * 1024))
    ref = f"{registry_server.host}/{repo}:v1"
    load_offline_image(docker, tmp_path, image, ref)
    assert image_id(docker, ref) == image.image_id

    digest = pushed_digest(docker("push", ref).stdout)

    manifest = get_manifest(client, repo, "v1")
    assert manifest.headers["Docker-Content-Digest"] == digest
    assert manifest.headers["Content-Type"] == DOCKER_MANIFEST
    body = manifest.json()
    assert body["config"]["digest"] == image.config.digest
    assert len(body["layers"]) == len(image.layers)
    for descriptor in (body["config"], *body["layers"]):
        assert blob_size(client, repo, descriptor["digest"]) == descriptor["size"]

    docker("rmi", ref)
    assert docker("image", "inspect", image.image_id, check=False).returncode != 0

    docker("pull", ref)
    assert image_id(docker, ref) == image.image_id
    repo_digests = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    assert f"{registry_server.host}/{repo}@{digest}" in repo_digests
    docker("rmi", ref)


def test_docker_push_to_a_second_repository_mounts_the_layers(
    docker: Docker,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(32 * 1024, 96 * 1024))
    first, second = f"{repo}/first", f"{repo}/second"
    first_ref = f"{registry_server.host}/{first}:v1"
    second_ref = f"{registry_server.host}/{second}:v1"
    load_offline_image(docker, tmp_path, image, first_ref)
    first_digest = pushed_digest(docker("push", first_ref).stdout)

    docker("tag", first_ref, second_ref)
    push = docker("push", second_ref).stdout

    # dockerd remembers where it pushed each layer and asks the registry to mount it from there.
    assert push.count(f"Mounted from {first}") == len(image.layers), push
    assert pushed_digest(push) == first_digest
    layers = get_manifest(client, second, "v1").json()["layers"]
    for layer in layers:
        assert blob_size(client, second, layer["digest"]) == layer["size"]
    docker("rmi", first_ref, second_ref)
