"""Domain operations of the registry: blobs, uploads, manifests, tags, referrers, catalog.

No HTTP here and no key strings: storage keys come from `layout`. Multi-object changes follow
the write order in DESIGN.md (catalog marker, blob, link, manifest, referrer, tag) so a crash
at any point leaves a readable state.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from registry import manifest as mf
from registry.digest import Digest, InvalidDigest, new_hasher
from registry.errors import ErrorCode, RegistryError
from registry.manifest_cache import ManifestCache
from registry.reference import is_valid_name, is_valid_tag
from registry.storage import layout
from registry.storage.base import (
    BytesLike,
    NotFound,
    Storage,
    SupportsCompose,
    SupportsRedirect,
    exists,
)
from registry.uploads import Session, Uploads


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: Digest
    media_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    more: bool


def check_name(name: str) -> None:
    if not is_valid_name(name):
        raise RegistryError(ErrorCode.NAME_INVALID, f"invalid repository name {name!r}")


def _encode_manifest(media_type: str, body: bytes) -> bytes:
    return media_type.encode() + b"\n" + body


def _decode_manifest(digest: Digest, stored: bytes) -> StoredManifest:
    media_type, _, body = stored.partition(b"\n")
    return StoredManifest(digest, media_type.decode(), body)


class Registry:
    def __init__(
        self, storage: Storage, *, delete_enabled: bool = True, redirect_seconds: int = 0
    ) -> None:
        self.storage = storage
        self.delete_enabled = delete_enabled
        self.redirect_seconds = redirect_seconds
        self.uploads = Uploads(storage)
        # Chunks of at least this size are joined inside the storage, without a copy through us.
        self.chunk_min_length = (
            storage.compose_min_part_size or None if isinstance(storage, SupportsCompose) else None
        )
        self._known_repositories: set[str] = set()
        self._manifests: ManifestCache[StoredManifest] = ManifestCache()

    # -- repositories ------------------------------------------------------------------------

    async def _ensure_repository(self, name: str) -> None:
        if name not in self._known_repositories:
            await self.storage.put_if_absent(layout.catalog_entry(name), b"")
            self._known_repositories.add(name)

    async def repository_exists(self, name: str) -> bool:
        return await exists(self.storage, layout.catalog_entry(name))

    async def catalog(
        self, n: int, last: str | None, visible: Callable[[str], bool] = lambda _: True
    ) -> Page:
        """Up to n repository names after `last` that `visible` accepts, in byte order."""
        start_after = layout.catalog_entry(last) if last else None
        names: list[str] = []
        while len(names) <= n:
            keys = await self.storage.list(layout.CATALOG_PREFIX, start_after, n + 1)
            names += [name for name in map(layout.name_of_catalog_entry, keys) if visible(name)]
            if len(keys) <= n:
                break
            start_after = keys[-1]
        return Page(names[:n], len(names) > n)

    # -- blobs -------------------------------------------------------------------------------

    async def blob_size(self, name: str, digest: Digest) -> int:
        """Size of a blob this repository may serve; BLOB_UNKNOWN otherwise."""
        try:
            await self.storage.stat(layout.blob_link(name, digest))
            return (await self.storage.stat(layout.blob(digest))).size
        except NotFound:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)}) from None

    async def blob_redirect(self, digest: Digest) -> str | None:
        """A presigned URL to send blob downloads to, when redirects are on and possible."""
        if self.redirect_seconds and isinstance(self.storage, SupportsRedirect):
            return await self.storage.presigned_url(layout.blob(digest), self.redirect_seconds)
        return None

    def read_blob(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[BytesLike]:
        return self.storage.read(layout.blob(digest), start, end)

    async def delete_blob(self, name: str, digest: Digest) -> None:
        self._check_delete_enabled()
        if not await self.storage.delete(layout.blob_link(name, digest)):
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)})

    async def mount_blob(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob that `source` may serve into `name`; False if it cannot be mounted."""
        if not is_valid_name(source):
            return False
        try:
            await self.blob_size(source, digest)
        except RegistryError:
            return False
        await self._link_blob(name, digest)
        return True

    async def _link_blob(self, name: str, digest: Digest) -> None:
        await self._ensure_repository(name)
        await self.storage.put_bytes(layout.blob_link(name, digest), b"")

    # -- uploads -----------------------------------------------------------------------------

    async def push_blob(
        self, name: str, digest: Digest, body: AsyncIterable[bytes], content_length: int | None
    ) -> None:
        await self._ensure_repository(name)
        await self.uploads.receive_whole(body, digest, layout.blob(digest), content_length)
        await self._link_blob(name, digest)

    async def finish_upload(self, session: Session, digest: Digest) -> None:
        await self._ensure_repository(session.repository)
        await self.uploads.complete(session, digest, layout.blob(digest))
        await self._link_blob(session.repository, digest)

    async def finish_empty_upload_with_body(
        self,
        session: Session,
        digest: Digest,
        body: AsyncIterable[bytes],
        content_length: int | None,
    ) -> None:
        """A session that received nothing before its final PUT carries the whole blob in
        that PUT (containerd does this): stream it straight into place, like a POST ?digest=."""
        await self.uploads.cancel(session)
        await self.push_blob(session.repository, digest, body, content_length)

    # -- manifests ---------------------------------------------------------------------------

    async def _resolve(self, name: str, reference: str | Digest) -> Digest:
        if isinstance(reference, Digest):
            return reference
        try:
            data, _ = await self.storage.get_bytes(layout.tag(name, reference))
            return Digest.parse(data.decode())
        except (NotFound, InvalidDigest, UnicodeDecodeError):
            raise _manifest_unknown(reference) from None

    async def get_manifest(self, name: str, reference: str | Digest) -> StoredManifest:
        digest = await self._resolve(name, reference)
        if isinstance(reference, str):  # a tag names it: it exists (see manifest_cache)
            cached = self._manifests.get(name, digest)
            if cached is not None:
                return cached
        try:
            stored, _ = await self.storage.get_bytes(layout.manifest(name, digest))
        except NotFound:
            self._manifests.discard(name, digest)
            raise _manifest_unknown(reference) from None
        manifest = _decode_manifest(digest, stored)
        self._manifests.put(name, digest, manifest, len(manifest.body))
        return manifest

    async def put_manifest(
        self, name: str, reference: str | Digest, body: bytes, content_type: str | None
    ) -> tuple[Digest, mf.Manifest]:
        if isinstance(reference, str) and not is_valid_tag(reference):
            raise RegistryError(ErrorCode.MANIFEST_INVALID, f"invalid tag {reference!r}")
        try:
            parsed = mf.parse_manifest(body, content_type)
        except mf.ManifestInvalid as exc:
            raise RegistryError(ErrorCode.MANIFEST_INVALID, str(exc)) from None
        digest = _digest_of_manifest(body, reference)
        await self._check_references(name, parsed)

        await self._ensure_repository(name)
        await self.storage.put_bytes(
            layout.manifest(name, digest), _encode_manifest(parsed.media_type, body)
        )
        if parsed.subject is not None:
            descriptor = _referrer_descriptor(parsed, digest, len(body))
            await self.storage.put_bytes(
                layout.referrer(name, parsed.subject, digest), json.dumps(descriptor).encode()
            )
        if isinstance(reference, str):
            await self._set_tag(name, reference, digest)
        return digest, parsed

    async def _check_references(self, name: str, parsed: mf.Manifest) -> None:
        problems: list[RegistryError] = []
        for descriptor in parsed.blobs:
            size = await self._blob_size_or_none(name, descriptor.digest)
            problems.extend(_reference_problem(descriptor, size, "blob"))
        for descriptor in parsed.manifests:
            size = await self._manifest_size(name, descriptor.digest)
            problems.extend(_reference_problem(descriptor, size, "manifest"))
        if problems:
            first, *rest = problems
            first.extra = rest
            raise first

    async def _blob_size_or_none(self, name: str, digest: Digest) -> int | None:
        try:
            return await self.blob_size(name, digest)
        except RegistryError:
            return None

    async def _manifest_size(self, name: str, digest: Digest) -> int | None:
        try:
            stored, _ = await self.storage.get_bytes(layout.manifest(name, digest))
        except NotFound:
            return None
        return len(_decode_manifest(digest, stored).body)

    async def _set_tag(self, name: str, tag: str, digest: Digest) -> None:
        previous: Digest | None = None
        with contextlib.suppress(RegistryError):
            previous = await self._resolve(name, tag)
        await self.storage.put_bytes(layout.tagged(name, digest, tag), b"")
        await self.storage.put_bytes(layout.tag(name, tag), str(digest).encode())
        if previous is not None and previous != digest:
            await self.storage.delete(layout.tagged(name, previous, tag))

    async def delete_manifest(self, name: str, reference: str | Digest) -> None:
        self._check_delete_enabled()
        if isinstance(reference, str):
            try:
                data, version = await self.storage.get_bytes(layout.tag(name, reference))
            except NotFound:
                raise _manifest_unknown(reference) from None
            await self.storage.delete_if_version(layout.tag(name, reference), version)
            with contextlib.suppress(InvalidDigest):
                tagged = layout.tagged(name, Digest.parse(data.decode()), reference)
                await self.storage.delete(tagged)
            return
        stored = await self.get_manifest(name, reference)
        await self._untag_all(name, reference)
        try:
            parsed = mf.parse_manifest(stored.body, stored.media_type)
        except mf.ManifestInvalid:
            parsed = None
        if parsed is not None and parsed.subject is not None:
            await self.storage.delete(layout.referrer(name, parsed.subject, reference))
        self._manifests.discard(name, reference)
        await self.storage.delete(layout.manifest(name, reference))

    async def _untag_all(self, name: str, digest: Digest) -> None:
        prefix = layout.tagged_prefix(name, digest)
        for key in await self.storage.list(prefix):
            tag = key[len(prefix) :]
            try:
                data, version = await self.storage.get_bytes(layout.tag(name, tag))
                if data.decode() == str(digest):
                    await self.storage.delete_if_version(layout.tag(name, tag), version)
            except NotFound:
                pass
            await self.storage.delete(key)

    # -- tags and referrers ------------------------------------------------------------------

    async def list_tags(self, name: str, n: int, last: str | None) -> Page:
        if not await self.repository_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, detail={"name": name})
        prefix = layout.tags_prefix(name)
        keys = await self.storage.list(prefix, prefix + last if last else None, n + 1)
        tags = [k[len(prefix) :] for k in keys]
        return Page(tags[:n], len(tags) > n)

    async def list_referrers(
        self, name: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        descriptors = []
        for key in await self.storage.list(layout.referrers_prefix(name, subject)):
            try:
                data, _ = await self.storage.get_bytes(key)
            except NotFound:
                continue
            descriptor = json.loads(data)
            if artifact_type is None or descriptor.get("artifactType") == artifact_type:
                descriptors.append(descriptor)
        return descriptors

    def _check_delete_enabled(self) -> None:
        if not self.delete_enabled:
            raise RegistryError(ErrorCode.UNSUPPORTED, "deletion is disabled on this registry")


def _manifest_unknown(reference: str | Digest) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_UNKNOWN, detail={"reference": str(reference)})


def _digest_of_manifest(body: bytes, reference: str | Digest) -> Digest:
    if isinstance(reference, str):
        return Digest.of(body)
    if not reference.is_supported:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID, f"unsupported digest algorithm {reference.algorithm}"
        )
    hasher = new_hasher(reference.algorithm)
    hasher.update(body)
    actual = Digest(reference.algorithm, hasher.hexdigest())
    if actual != reference:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID,
            f"manifest digest is {actual}, not {reference}",
            {"expected": str(reference), "actual": str(actual)},
        )
    return actual


def _reference_problem(
    descriptor: mf.Descriptor, stored_size: int | None, kind: str
) -> list[RegistryError]:
    if stored_size is None:
        return [
            RegistryError(
                ErrorCode.MANIFEST_BLOB_UNKNOWN,
                f"{kind} {descriptor.digest} is not in this repository",
                {"digest": str(descriptor.digest)},
            )
        ]
    if stored_size != descriptor.size:
        return [
            RegistryError(
                ErrorCode.SIZE_INVALID,
                f"descriptor of {kind} {descriptor.digest} says size {descriptor.size}, "
                f"stored size is {stored_size}",
                {"digest": str(descriptor.digest), "size": descriptor.size, "stored": stored_size},
            )
        ]
    return []


def _referrer_descriptor(parsed: mf.Manifest, digest: Digest, size: int) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "mediaType": parsed.media_type,
        "digest": str(digest),
        "size": size,
    }
    if parsed.artifact_type is not None:
        descriptor["artifactType"] = parsed.artifact_type
    if parsed.annotations:
        descriptor["annotations"] = parsed.annotations
    return descriptor
