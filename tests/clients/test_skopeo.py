"""skopeo copies OCI layouts into the registry, between its repositories and back out, unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from testkit.registry import RunningRegistry
from tests.clients.images import (
    Image,
    Index,
    build_image,
    build_index,
    read_oci_layout,
    write_oci_layout,
)
from tests.clients.tools import Skopeo
from tests.clients.wire import blob_size, get_manifest

pytestmark = pytest.mark.clients

PLAIN_HTTP = ("--src-tls-verify=false", "--dest-tls-verify=false")


def copy(skopeo: Skopeo, source: str, destination: str, *options: str, debug: bool = False) -> str:
    """`skopeo copy` that fails rather than change a digest; returns skopeo's (debug) log."""
    command = ["--debug"] if debug else []
    command += ["copy", "--preserve-digests", *PLAIN_HTTP, *options, source, destination]
    result = skopeo(*command)
    return result.stdout + result.stderr


def assert_layout_holds(layout: Path, tag: str, target: Image | Index) -> None:
    """The layout tags exactly `target` and holds every one of its blobs, byte for byte."""
    descriptor, blobs = read_oci_layout(layout, tag)
    assert descriptor["digest"] == target.manifest.digest
    assert descriptor["mediaType"] == target.manifest.media_type
    for blob in (target.manifest, *target.blobs):
        assert blobs[blob.digest] == blob.data


def assert_registry_holds(client: httpx.Client, repo: str, image: Image) -> None:
    manifest = get_manifest(client, repo, image.manifest.digest)
    assert manifest.content == image.manifest.data
    for blob in image.blobs:
        assert blob_size(client, repo, blob.digest) == blob.size


def test_skopeo_copy_layout_to_registry_to_other_repository_to_layout_keeps_every_digest(
    skopeo: Skopeo,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(48 * 1024, 2 * 1024 * 1024))
    write_oci_layout(image, tmp_path / "source", "v1")
    first, second = f"{repo}/first", f"{repo}/second"
    registry = f"docker://{registry_server.host}"

    copy(skopeo, f"oci:{tmp_path / 'source'}:v1", f"{registry}/{first}:v1")
    copy(skopeo, f"{registry}/{first}:v1", f"{registry}/{second}:v2")
    copy(skopeo, f"{registry}/{second}:v2", f"oci:{tmp_path / 'copy'}:v3")

    for name, tag in ((first, "v1"), (second, "v2")):
        assert get_manifest(client, name, tag).content == image.manifest.data
        assert_registry_holds(client, name, image)
    assert_layout_holds(tmp_path / "copy", "v3", image)


def test_skopeo_copy_to_another_repository_mounts_layers_instead_of_uploading_them(
    skopeo: Skopeo,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(32 * 1024, 64 * 1024, 128 * 1024))
    write_oci_layout(image, tmp_path / "source", "v1")
    source, target = f"{repo}/source", f"{repo}/target"
    registry = f"docker://{registry_server.host}"
    copy(skopeo, f"oci:{tmp_path / 'source'}:v1", f"{registry}/{source}:v1")
    for layer in image.layers:
        assert blob_size(client, target, layer.blob.digest) is None

    log = copy(skopeo, f"{registry}/{source}:v1", f"{registry}/{target}:v1", debug=True)

    for layer in image.layers:
        mount = f"/v2/{target}/blobs/uploads/?from={quote(source, safe='')}&mount="
        assert f"Trying to mount {mount}{quote(layer.blob.digest, safe='')}" in log, log
        # A mounted layer is never uploaded: no upload session is closed with its digest.
        assert f"?digest={quote(layer.blob.digest, safe='')}" not in log, log
    assert log.count("... mount OK") == len(image.layers), log
    assert_registry_holds(client, target, image)
    assert get_manifest(client, target, "v1").content == image.manifest.data


def test_skopeo_copy_all_keeps_a_multi_arch_index_and_both_platform_images(
    skopeo: Skopeo,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    index = build_index([build_image(architecture="amd64"), build_image(architecture="arm64")])
    write_oci_layout(index, tmp_path / "source", "multi")
    first, second = f"{repo}/first", f"{repo}/second"
    registry = f"docker://{registry_server.host}"

    copy(skopeo, f"oci:{tmp_path / 'source'}:multi", f"{registry}/{first}:multi", "--all")
    copy(skopeo, f"{registry}/{first}:multi", f"{registry}/{second}:multi", "--all")
    copy(skopeo, f"{registry}/{second}:multi", f"oci:{tmp_path / 'copy'}:multi", "--all")

    for name in (first, second):
        stored = get_manifest(client, name, "multi")
        assert stored.content == index.manifest.data
        platforms = [d["platform"]["architecture"] for d in json.loads(stored.content)["manifests"]]
        assert platforms == ["amd64", "arm64"]
        for image in index.images:
            assert_registry_holds(client, name, image)
    assert_layout_holds(tmp_path / "copy", "multi", index)
