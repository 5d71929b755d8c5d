"""Offline container images from random bytes: docker-archive, OCI layout and OCI archive.

Standard library only, no base images and no network. Everything is deterministic given the
random bytes, so digests computed here are what a faithful registry round trip must preserve.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

Json = dict[str, Any]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def host_architecture() -> str:
    """The GOARCH name of this machine, so pulled images match the default platform."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> Json:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Layer:
    tar: bytes  # the uncompressed filesystem changeset
    blob: Blob  # the same tar, gzip-compressed, as stored in registries

    @property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)


@dataclass(frozen=True)
class Image:
    config: Blob
    layers: tuple[Layer, ...]
    manifest: Blob
    architecture: str
    os: str = "linux"

    @property
    def image_id(self) -> str:
        """docker and podman name an image by the digest of its config."""
        return self.config.digest

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *(layer.blob for layer in self.layers))

    def platform(self) -> Json:
        return {"architecture": self.architecture, "os": self.os}


@dataclass(frozen=True)
class Index:
    images: tuple[Image, ...]
    manifest: Blob

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return tuple(blob for image in self.images for blob in (image.manifest, *image.blobs))


def tar_bytes(files: Mapping[str, bytes]) -> bytes:
    """A reproducible tar of regular files (fixed mtime, owner and mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def random_layer(size: int, name: str) -> Layer:
    """One layer holding a file of `size` random (incompressible, unique) bytes."""
    tar = tar_bytes({f"{name}/random.bin": os.urandom(size)})
    return Layer(tar, Blob(OCI_LAYER_GZIP, gzip.compress(tar, mtime=0)))


def build_image(
    layer_sizes: Sequence[int] = (64 * 1024, 256 * 1024),
    architecture: str | None = None,
    os_name: str = "linux",
) -> Image:
    """An OCI image with one random layer per size; its config is a valid image config."""
    layers = tuple(random_layer(size, f"layer{i}") for i, size in enumerate(layer_sizes))
    return image_of(layers, architecture, os_name)


def image_of(
    layers: tuple[Layer, ...], architecture: str | None = None, os_name: str = "linux"
) -> Image:
    """An OCI image of these layers (images built from one layer object share it)."""
    architecture = architecture or host_architecture()
    config: Json = {
        "architecture": architecture,
        "os": os_name,
        "config": {"Cmd": ["/layer0/random.bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": f"random layer {i}"} for i in range(len(layers))],
    }
    config_blob = Blob(OCI_CONFIG, canonical_json(config))
    manifest: Json = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
    }
    return Image(
        config_blob, layers, Blob(OCI_MANIFEST, canonical_json(manifest)), architecture, os_name
    )


def build_index(images: Iterable[Image]) -> Index:
    """A multi-platform OCI image index over `images`."""
    images = tuple(images)
    index: Json = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [image.manifest.descriptor(platform=image.platform()) for image in images],
    }
    return Index(images, Blob(OCI_INDEX, canonical_json(index)))


def _add_file(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(content))


def write_docker_archive(image: Image, path: Path, repo_tags: Sequence[str]) -> None:
    """The `docker save` format: config JSON, uncompressed layer tars and manifest.json."""
    layer_paths = [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in image.layers]
    manifest = [
        {"Config": f"{image.config.hex}.json", "RepoTags": list(repo_tags), "Layers": layer_paths}
    ]
    with tarfile.open(path, mode="w") as tar:
        _add_file(tar, f"{image.config.hex}.json", image.config.data)
        for layer, layer_path in zip(image.layers, layer_paths, strict=True):
            _add_file(tar, layer_path, layer.tar)
        _add_file(tar, "manifest.json", json.dumps(manifest).encode())


def _layout_files(target: Image | Index, tag: str) -> dict[str, bytes]:
    blobs = (target.manifest, *target.blobs)
    files = {f"blobs/sha256/{blob.hex}": blob.data for blob in blobs}
    index: Json = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [target.manifest.descriptor(annotations={REF_NAME: tag})],
    }
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = canonical_json(index)
    return files


def write_oci_layout(target: Image | Index, directory: Path, tag: str) -> None:
    """An OCI image layout directory whose index.json names `target` by `tag`."""
    for name, content in _layout_files(target, tag).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def write_oci_archive(target: Image | Index, path: Path, tag: str) -> None:
    """An OCI image layout packed in a tar file (what `ctr images import` reads)."""
    with tarfile.open(path, mode="w") as tar:
        for name, content in _layout_files(target, tag).items():
            _add_file(tar, name, content)


def read_oci_layout(directory: Path, tag: str) -> tuple[Json, dict[str, bytes]]:
    """The descriptor `tag` names in a layout, and every blob of the layout by digest."""
    index = json.loads((directory / "index.json").read_bytes())
    matches = [d for d in index["manifests"] if d.get("annotations", {}).get(REF_NAME) == tag]
    if len(matches) != 1:
        raise LookupError(f"{directory}: {len(matches)} descriptors are tagged {tag!r}")
    blobs = {
        f"sha256:{path.name}": path.read_bytes()
        for path in (directory / "blobs" / "sha256").iterdir()
    }
    return matches[0], blobs
