"""Parse and validate pushed manifests without ever re-serialising them.

Returns what the registry must check (referenced blobs and child manifests) and what it
indexes (the subject, for the referrers API). Unknown fields are always accepted.
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from registry.digest import Digest, InvalidDigest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
SUPPORTED_TYPES = IMAGE_TYPES | INDEX_TYPES
_SCHEMA1 = "Docker schema1 manifests are not supported; push schema2 or OCI"
REFUSED_TYPES = {
    "application/vnd.docker.distribution.manifest.v1+json": _SCHEMA1,
    "application/vnd.docker.distribution.manifest.v1+prettyjws": _SCHEMA1,
    "application/vnd.oci.artifact.manifest.v1+json": (
        "the OCI artifact manifest is not part of image-spec 1.1; push an image manifest "
        "with artifactType instead"
    ),
}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# A manifest nests 4 levels deep (document, layers, descriptor, annotations); unknown fields
# may add some. Deeper input would exhaust the parser's recursion, and huge numbers cost
# quadratic time to convert (Python refuses ints over 4300 digits): both are refused first.
MAX_JSON_DEPTH = 64
MAX_NUMBER_LENGTH = 64  # characters; an int64 size has at most 19 digits
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NON_DISTRIBUTABLE_PREFIXES = (
    "application/vnd.oci.image.layer.nondistributable.",
    "application/vnd.docker.image.rootfs.foreign.",
)


class ManifestInvalid(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str | None
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    blobs: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Digest | None
    artifact_type: str | None
    annotations: dict[str, Any] | None


def bare_media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def parse_manifest(body: bytes, content_type: str | None) -> Manifest:
    header_type = bare_media_type(content_type)
    if header_type in REFUSED_TYPES:
        raise ManifestInvalid(REFUSED_TYPES[header_type])
    document = _parse_json(body)
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    media_type = _media_type(header_type, document.get("mediaType"))
    if media_type in IMAGE_TYPES:
        if "manifests" in document:
            raise ManifestInvalid("an image manifest cannot have a manifests field")
        config = _descriptor(document.get("config"), "config")
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be an array")
        blobs = [config]
        for i, raw in enumerate(layers):
            layer = _descriptor(raw, f"layers[{i}]")
            if not _is_non_distributable(layer.media_type):
                blobs.append(layer)
        children: list[Descriptor] = []
    else:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestInvalid("manifests must be an array")
        children = [_descriptor(raw, f"manifests[{i}]") for i, raw in enumerate(entries)]
        blobs = []
    subject = None
    if document.get("subject") is not None:
        subject = _descriptor(document["subject"], "subject").digest
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    if artifact_type is None and media_type in IMAGE_TYPES:
        config_type = document["config"].get("mediaType")
        artifact_type = config_type if isinstance(config_type, str) else None
    annotations = document.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")
    return Manifest(media_type, tuple(blobs), tuple(children), subject, artifact_type, annotations)


def _parse_json(body: bytes) -> Any:
    depth = _nesting_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise ManifestInvalid(f"manifest nests {depth} levels deep, more than {MAX_JSON_DEPTH}")
    try:
        return json.loads(
            body,
            parse_int=_bounded_number(int),
            parse_float=_bounded_number(float),
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None


def _nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped), in a few passes
    of C code: +1 per opening and -1 per closing bracket, the largest running sum."""
    brackets = _JSON_STRING.sub(b"", body).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(array("b", brackets)))


def _bounded_number(convert: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_LENGTH:
            longer = f"longer than {MAX_NUMBER_LENGTH} characters"
            raise ManifestInvalid(f"manifest has a number {longer}")
        return convert(text)

    return parse


def _no_constant(name: str) -> Any:
    raise ManifestInvalid(f"manifest is not valid JSON: {name} is not a JSON value")


def _media_type(header_type: str | None, body_type: Any) -> str:
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestInvalid("mediaType must be a string")
    if body_type in REFUSED_TYPES:
        raise ManifestInvalid(REFUSED_TYPES[body_type])
    if header_type in SUPPORTED_TYPES:
        if body_type is not None and body_type != header_type:
            raise ManifestInvalid(
                f"Content-Type {header_type} does not match the manifest's mediaType {body_type}"
            )
        return header_type
    if body_type in SUPPORTED_TYPES:
        return body_type
    raise ManifestInvalid(
        f"unsupported manifest media type {body_type or header_type or '(none)'}; expected one of "
        + ", ".join(sorted(SUPPORTED_TYPES))
    )


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type = raw.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise ManifestInvalid(f"{where}.mediaType must be a string")
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    digest = raw.get("digest")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest must be a string")
    try:
        parsed = Digest.parse(digest)
    except InvalidDigest as exc:
        raise ManifestInvalid(f"{where}.digest: {exc}") from None
    return Descriptor(media_type, parsed, size)


def _is_non_distributable(media_type: str | None) -> bool:
    return media_type is not None and media_type.startswith(_NON_DISTRIBUTABLE_PREFIXES)
