"""Registry content for the garbage-collection rows, written straight into storage.

Many small images, generated deterministically from a seed (so two copies of the same scale
hold the same bytes), as (key, body) pairs in two layouts:

- ours: the keys `registry.storage.layout` builds (blob, repository link, manifest record,
  tag, reverse tag entry, catalog marker), written as files at the paths
  `FilesystemStorage.path_of` gives, or as objects below a key prefix on S3;
- Distribution 2.8: `blobs/sha256/<2 hex>/<hex>/data` (manifests are blobs there too),
  `repositories/<name>/_layers/sha256/<hex>/link`, `_manifests/revisions/sha256/<hex>/link`,
  `_manifests/tags/<tag>/current/link` and `_manifests/tags/<tag>/index/sha256/<hex>/link`,
  every link holding the digest (registry/storage/paths.go at v2.8.2).

Every repository gets `images` images of `layers` distinct layers (64-256 random bytes each)
and a config; the last `garbage_images` of them were pushed and then had their tag and
manifest deleted, so only their blobs and repository links are left: garbage for a collector
that keeps what any manifest names. Nothing is shared between images, so the garbage is
exactly `Scale.garbage_blobs` blobs (Distribution: also the garbage manifests' own blobs).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.digest import Digest
from registry.manifest_store import encode_record
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage
from testkit.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST

REPOSITORY = "gc/repo-{:05d}"
TAG = "v{:02d}"
MIN_BLOB_SIZE, MAX_BLOB_SIZE = 64, 256
DISTRIBUTION_KEY_ROOT = "docker/registry/v2/"  # below its rootdirectory
SEED_WORKERS = 2  # processes writing files (2 cores)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC

Objects = Iterable[tuple[str, bytes]]


@dataclass(frozen=True)
class Scale:
    repositories: int
    images: int = 10  # per repository
    layers: int = 9  # per image, besides its config
    garbage_images: int = 2  # per repository: untagged and deleted, blobs left behind

    @property
    def blobs_per_image(self) -> int:
        return self.layers + 1

    @property
    def manifests(self) -> int:
        """Manifests ever pushed (the garbage ones included)."""
        return self.repositories * self.images

    @property
    def blobs(self) -> int:
        return self.manifests * self.blobs_per_image

    @property
    def garbage_manifests(self) -> int:
        return self.repositories * self.garbage_images

    @property
    def garbage_blobs(self) -> int:
        return self.garbage_manifests * self.blobs_per_image

    @property
    def kept_manifests(self) -> int:
        return self.manifests - self.garbage_manifests

    def describe(self) -> str:
        return (
            f"{self.repositories:,} repositories, {self.manifests:,} manifests,"
            f" {self.blobs:,} blobs ({self.garbage_blobs:,} garbage)"
        )

    def short(self) -> str:
        """`1M blobs`, `100k blobs`, `20k blobs`."""
        blobs = self.blobs
        if blobs >= 1_000_000 and blobs % 1_000_000 == 0:
            return f"{blobs // 1_000_000}M blobs"
        if blobs >= 1_000 and blobs % 1_000 == 0:
            return f"{blobs // 1_000}k blobs"
        return f"{blobs:,} blobs"


@dataclass(frozen=True, slots=True)
class Image:
    repository: str
    tag: str
    garbage: bool
    blobs: tuple[tuple[str, bytes], ...]  # (sha256 hex, content), the config first
    manifest: bytes
    manifest_hex: str

    @property
    def manifest_digest(self) -> str:
        return f"sha256:{self.manifest_hex}"


def _sha256(data: bytes) -> str:
    return Digest.of(data).encoded


def _image(rng: random.Random, repository: str, index: int, garbage: bool, layers: int) -> Image:
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created_by": f"gc bench {repository} {index}",
            "nonce": rng.randbytes(8).hex(),
        },
        separators=(",", ":"),
    ).encode()
    contents = [config]
    contents += [rng.randbytes(rng.randint(MIN_BLOB_SIZE, MAX_BLOB_SIZE)) for _ in range(layers)]
    blobs = tuple((_sha256(content), content) for content in contents)

    def described(media_type: str, hex_digest: str, content: bytes) -> dict[str, object]:
        return {"mediaType": media_type, "digest": f"sha256:{hex_digest}", "size": len(content)}

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": described(OCI_CONFIG, *blobs[0]),
            "layers": [described(OCI_LAYER, *blob) for blob in blobs[1:]],
        },
        separators=(",", ":"),
    ).encode()
    return Image(repository, TAG.format(index), garbage, blobs, manifest, _sha256(manifest))


def repository_images(scale: Scale, seed: int, number: int) -> list[Image]:
    """The images of repository `number`, the same for the same seed."""
    rng = random.Random(seed * 1_000_003 + number)
    name = REPOSITORY.format(number)
    first_garbage = scale.images - scale.garbage_images
    return [
        _image(rng, name, index, index >= first_garbage, scale.layers)
        for index in range(scale.images)
    ]


def images(scale: Scale, seed: int, start: int = 0, stop: int | None = None) -> Iterator[Image]:
    for number in range(start, scale.repositories if stop is None else stop):
        yield from repository_images(scale, seed, number)


# -- the two layouts ----------------------------------------------------------------------------


def ours_objects(image: Image, nonce: bytes) -> Objects:
    """Our keys for one image: what a push leaves (a garbage image: its blobs and links)."""
    for hex_digest, content in image.blobs:
        digest = Digest("sha256", hex_digest)
        yield layout.blob(digest), content
        yield layout.blob_link(image.repository, digest), b""
    if image.garbage:
        return
    manifest = Digest("sha256", image.manifest_hex)
    yield layout.manifest(image.repository, manifest), encode_record(OCI_MANIFEST, image.manifest)
    yield layout.tagged(image.repository, manifest, image.tag), nonce
    yield layout.tag(image.repository, image.tag), image.manifest_digest.encode()


def ours_repository_objects(repository: str) -> Objects:
    yield layout.catalog_entry(repository), b""


def distribution_objects(image: Image) -> Objects:
    """Distribution 2.8's keys (below its root) for one image; the manifest is a blob too."""
    repository = f"repositories/{image.repository}/"
    for hex_digest, content in (*image.blobs, (image.manifest_hex, image.manifest)):
        yield f"blobs/sha256/{hex_digest[:2]}/{hex_digest}/data", content
    for hex_digest, _ in image.blobs:
        yield f"{repository}_layers/sha256/{hex_digest}/link", f"sha256:{hex_digest}".encode()
    if image.garbage:
        return
    link = image.manifest_digest.encode()
    manifests = f"{repository}_manifests/"
    yield f"{manifests}revisions/sha256/{image.manifest_hex}/link", link
    yield f"{manifests}tags/{image.tag}/current/link", link
    yield f"{manifests}tags/{image.tag}/index/sha256/{image.manifest_hex}/link", link


def layout_objects(
    scale: Scale,
    seed: int,
    distribution: bool,
    garbage_only: bool = False,
    start: int = 0,
    stop: int | None = None,
) -> Objects:
    """Every object of repositories start to stop in one layout; with garbage_only, the
    garbage images' objects alone (what a collection removes, to be seeded again)."""
    nonce = f"{seed:032x}".encode()
    previous = None
    for image in images(scale, seed, start, stop):
        if garbage_only and not image.garbage:
            continue
        if distribution:
            yield from distribution_objects(image)
            continue
        if image.repository != previous and not garbage_only:
            yield from ours_repository_objects(image.repository)
        previous = image.repository
        yield from ours_objects(image, nonce)


def garbage_count(scale: Scale, distribution: bool) -> int:
    """Blobs a collection should delete (Distribution: the deleted manifests' blobs too)."""
    return scale.garbage_blobs + (scale.garbage_manifests if distribution else 0)


# -- writing files ------------------------------------------------------------------------------


class FileWriter:
    """Plain files where a filesystem driver keeps each key (open, write, close; a missing
    directory is made on the first failed open)."""

    def __init__(self, path_of: Callable[[str], str]) -> None:
        self.path_of = path_of

    def put_all(self, objects: Objects) -> int:
        count = 0
        for key, body in objects:
            path = self.path_of(key)
            try:
                fd = os.open(path, _NEW_FILE, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, _NEW_FILE, 0o644)
            try:
                if body:
                    os.write(fd, body)
            finally:
                os.close(fd)
            count += 1
        return count


def ours_file_writer(root: Path) -> FileWriter:
    """Files at the paths our FilesystemStorage uses for each key (it also makes the root)."""
    storage = FilesystemStorage(root)
    return FileWriter(lambda key: str(storage.path_of(key)))


def distribution_file_writer(root: Path) -> FileWriter:
    """Files below Distribution's filesystem rootdirectory."""
    base = str(root / DISTRIBUTION_KEY_ROOT)
    return FileWriter(lambda key: os.path.join(base, key))


def seed_files(
    root: Path, scale: Scale, seed: int, distribution: bool, garbage_only: bool = False
) -> int:
    """Write one layout below root; how many files."""
    writer = distribution_file_writer(root) if distribution else ours_file_writer(root)
    return writer.put_all(layout_objects(scale, seed, distribution, garbage_only))


def _seed_slice(
    root: str, scale: Scale, seed: int, distribution: bool, garbage_only: bool, bounds: range
) -> int:
    writer = distribution_file_writer(Path(root)) if distribution else ours_file_writer(Path(root))
    objects = layout_objects(scale, seed, distribution, garbage_only, bounds.start, bounds.stop)
    return writer.put_all(objects)


def seed_files_parallel(
    root: Path,
    scale: Scale,
    seed: int,
    distribution: bool,
    garbage_only: bool = False,
    workers: int = SEED_WORKERS,
) -> int:
    """seed_files, the repositories split between worker processes; how many files."""
    if workers <= 1 or scale.repositories < 2 * workers:
        return seed_files(root, scale, seed, distribution, garbage_only)
    if not distribution:
        ours_file_writer(root)  # make the root and the driver's directory once, not racing
    step = -(-scale.repositories // workers)
    starts = range(0, scale.repositories, step)
    slices = [range(n, min(n + step, scale.repositories)) for n in starts]
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(len(slices), mp_context=context) as pool:
        futures = [
            pool.submit(_seed_slice, str(root), scale, seed, distribution, garbage_only, bounds)
            for bounds in slices
        ]
        return sum(future.result() for future in futures)
