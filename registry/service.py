"""The registry's domain operations, and the only door the HTTP layer goes through: blobs,
uploads, manifests, tags, referrers, the catalog and the storage's health.

No HTTP here and no key strings: storage keys come from `layout`. Multi-object changes follow
the write order in DESIGN.md (catalog marker, blob, link, manifest, referrer, tag) so a crash
at any point leaves a readable state; reads that do not depend on each other run concurrently.
Every blob read checks the repository's link first, so no caller can serve a digest through
a repository that was never given it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from registry import manifest as mf
from registry.concurrency import all_of, map_bounded
from registry.digest import Digest, new_hasher
from registry.errors import ErrorCode, RegistryError
from registry.gc.marks import MAX_ATTEMPTS, BlobTombstones, unmark_empty
from registry.maintenance import ReadOnlyMode
from registry.manifest_cache import ManifestCache
from registry.manifest_store import (
    Immutability,
    Immutable,
    ManifestStore,
    Referrer,
    TagState,
    decode_record,
    encode_record,
    unmark_record,
)
from registry.namespaces import Namespaces
from registry.quota import BLOBS, MANIFESTS, Charge, Quotas
from registry.reference import is_valid_name, is_valid_tag
from registry.referrers import DEFAULT_PAGE_BYTES, ReferrersPage, referrer_entry, referrers_page
from registry.retention.pulls import PullRecorder
from registry.storage import layout
from registry.storage.protocol import (
    BytesLike,
    KeyTooLong,
    NotFound,
    ObjectInfo,
    OpenObject,
    Storage,
    StorageDenied,
    StorageError,
    StorageFull,
    StorageReadOnly,
    SupportsCompose,
    SupportsIncompleteWritePurge,
    SupportsRedirect,
    exists,
)
from registry.uploads import Session, Uploads, expected_length

__all__ = [
    "BlobContent",
    "KeyTooLong",
    "Page",
    "PushedManifest",
    "ReferrersPage",
    "Registry",
    "StorageDenied",
    "StorageError",  # any operation raises it (or a kind of it) when the storage cannot serve it
    "StorageFull",
    "StorageReadOnly",
    "StoredManifest",
    "UploadProgress",
]

KNOWN_REPOSITORIES_LIMIT = 10_000
# How long this process trusts that a catalog marker it saw still exists, at most. Garbage
# collection waits longer than this (its `settle`) between marking a marker and deleting it,
# so a push that trusted the cache is seen by the collector's second look (registry/gc/).
REPOSITORY_CACHE_SECONDS = 10.0
T = TypeVar("T")
ByteRange = tuple[int, int]  # first and last byte, inclusive


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: Digest
    media_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: Digest
    subject: Digest | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    more: bool


@dataclass(frozen=True, slots=True)
class UploadProgress:
    repository: str
    upload_id: str
    offset: int  # bytes received so far


@dataclass(frozen=True, slots=True)
class BlobContent:
    """A blob a repository may serve: its size, and either where clients may fetch it
    directly (when redirects are on) or its bytes, opened already."""

    digest: Digest
    size: int
    redirect_url: str | None
    _content: OpenObject | None

    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[BytesLike]:
        """Bytes [start, end) of the blob (once); the blob is closed afterwards."""
        assert self._content is not None, "a redirected blob is not opened"
        return self._content.read(start, end)

    async def aclose(self) -> None:
        if self._content is not None:
            await self._content.aclose()


def _decode_manifest(digest: Digest, stored: bytes) -> StoredManifest:
    media_type, body = decode_record(stored)
    return StoredManifest(digest, media_type, body)


def _progress(session: Session) -> UploadProgress:
    return UploadProgress(session.repository, session.id, session.size)


class Registry:
    def __init__(
        self,
        storage: Storage,
        *,
        delete_enabled: bool = True,
        read_only: bool = False,
        redirect_seconds: int = 0,
        referrers_page_bytes: int = DEFAULT_PAGE_BYTES,
        repository_cache_seconds: float = REPOSITORY_CACHE_SECONDS,
        link_refresh_seconds: float | None = None,
        namespaces: Namespaces | None = None,
    ) -> None:
        self.storage = storage
        # Replaced as a whole when the configuration is reloaded (SIGHUP).
        self.namespaces = namespaces or Namespaces()
        self.delete_enabled = delete_enabled
        self.maintenance = ReadOnlyMode(storage, configured=read_only)
        self.redirect_seconds = redirect_seconds
        self.referrers_page_bytes = referrers_page_bytes
        self.uploads = Uploads(storage)
        self.manifest_store = ManifestStore(storage)
        self.quotas = Quotas(storage)
        # Chunks of at least this size are joined inside the storage, without a copy through us.
        self.chunk_min_length = (
            storage.compose_min_part_size or None if isinstance(storage, SupportsCompose) else None
        )
        self.tombstones = BlobTombstones(storage)
        self.repository_cache_seconds = repository_cache_seconds
        # A HEAD of a blob whose link is older than this writes the link again, so garbage
        # collection sees it as young (half its blob grace: a client that learnt of a blob
        # has at least that long to reference it).
        self.link_refresh_seconds = link_refresh_seconds
        self._known_repositories: dict[str, float] = {}  # name: when its marker was seen
        self._manifests: ManifestCache[StoredManifest] = ManifestCache()
        self.pulls = PullRecorder(storage)

    @property
    def read_only(self) -> bool:
        """Whether changes are refused (by configuration, or the flag as last polled)."""
        return self.maintenance.active

    # -- health --------------------------------------------------------------------------------

    async def storage_problem(self) -> str | None:
        """Why the storage cannot serve requests, or None when it can."""
        try:
            await self.storage.ping()
        except StorageError as exc:
            return str(exc)
        return None

    async def shared_token_key(self, candidate: bytes) -> bytes:
        """The token-signing key every replica uses: `candidate` unless one is stored."""
        await self.storage.put_if_absent(layout.TOKEN_SIGNING_KEY, candidate)
        stored, _ = await self.storage.get_bytes(layout.TOKEN_SIGNING_KEY)
        return stored

    # -- repositories ----------------------------------------------------------------------------

    async def _ensure_repository(self, name: str) -> None:
        now = time.monotonic()
        if now - self._known_repositories.get(name, -1e9) < self.repository_cache_seconds:
            return
        key = layout.catalog_entry(name)
        # An existing marker may be marked by a collector: take it back (or, if the collector
        # deleted it first, write it again).
        for _ in range(MAX_ATTEMPTS):
            if await self.storage.put_if_absent(key, b"") or await unmark_empty(self.storage, key):
                break
        else:
            raise RegistryError(ErrorCode.UNAVAILABLE, f"catalog entry of {name} kept changing")
        if len(self._known_repositories) >= KNOWN_REPOSITORIES_LIMIT:
            self._known_repositories.clear()  # only a cache of markers known to exist
        self._known_repositories[name] = now

    async def _repository_exists(self, name: str) -> bool:
        try:
            await self.storage.stat(layout.catalog_entry(name))
        except NotFound:
            return False
        return True

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

    # -- blobs ---------------------------------------------------------------------------------

    async def open_blob(self, name: str, digest: Digest, *, redirect: bool = False) -> BlobContent:
        """A blob this repository may serve (BLOB_UNKNOWN otherwise), opened, so a blob that
        cannot be read fails here and not halfway through a response; with `redirect`, a
        presigned URL instead when the storage offers them and they are enabled."""
        if redirect and self.redirect_seconds and isinstance(self.storage, SupportsRedirect):
            size = await self.blob_size(name, digest)
            url = await self.storage.presigned_url(layout.blob(digest), self.redirect_seconds)
            return BlobContent(digest, size, url, None)
        link, content = await asyncio.gather(
            self._link(name, digest),
            self.storage.open(layout.blob(digest)),
            return_exceptions=True,
        )
        if not isinstance(content, BaseException):
            if not isinstance(link, BaseException):
                return BlobContent(digest, content.size, None, content)
            await content.aclose()
        failure = link if isinstance(link, BaseException) else content
        assert isinstance(failure, BaseException)
        if isinstance(failure, NotFound):
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)}) from None
        raise failure

    async def blob_size(self, name: str, digest: Digest, *, refresh: bool = False) -> int:
        """The size of a blob this repository may serve (BLOB_UNKNOWN otherwise); with
        `refresh`, as a client's check before it references the blob (see
        link_refresh_seconds)."""
        try:
            link, blob = await all_of(
                self._link(name, digest), self.storage.stat(layout.blob(digest))
            )
        except NotFound:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)}) from None
        limit = self.link_refresh_seconds
        if refresh and limit is not None and time.time() - link.modified > limit:
            await self.storage.put_bytes(layout.blob_link(name, digest), b"")
        return blob.size

    async def _link(self, name: str, digest: Digest) -> ObjectInfo:
        """The repository's link to the blob; one a collector marked is taken back (so a
        client told the blob exists can rely on it). Raises NotFound."""
        key = layout.blob_link(name, digest)
        link = await self.storage.stat(key)
        if link.size and not await unmark_empty(self.storage, key):
            raise NotFound(key)
        return link

    async def _blob_size_or_none(self, name: str, digest: Digest) -> int | None:
        try:
            return await self.blob_size(name, digest)
        except RegistryError:
            return None

    async def delete_blob(self, name: str, digest: Digest) -> None:
        self._check_delete_enabled()
        if not await self.storage.delete(layout.blob_link(name, digest)):
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, detail={"digest": str(digest)})

    async def mount_blob(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob that `source` may serve into `name`; False if it cannot be mounted,
        DENIED if the namespace's quota cannot take it."""
        if not is_valid_name(source):
            return False
        size = await self._blob_size_or_none(source, digest)
        if size is None:
            return False
        charge = await self._charge(name, BLOBS, digest, size)
        async with self._given_back_on_failure(charge):
            await self._link_blob(name, digest)
        return True

    async def _charge(self, name: str, kind: str, digest: Digest, size: int) -> Charge | None:
        """Count content in the quota of name's namespace before it becomes visible there
        (registry/quota.py); DENIED when the quota cannot take it."""
        return await self.quotas.charge(self.namespaces, name, kind, digest, size)

    async def _charged_with(
        self, charge: Awaitable[Charge | None], work: Awaitable[T]
    ) -> tuple[Charge | None, T]:
        """A charge and other work done together: if either fails, the charge is given back
        and the first failure raised (the work's, then the charge's)."""
        outcomes = await asyncio.gather(work, charge, return_exceptions=True)
        done, charged = outcomes
        if isinstance(done, BaseException) or isinstance(charged, BaseException):
            if not isinstance(charged, BaseException):
                await self.quotas.release(charged)
            failure = done if isinstance(done, BaseException) else charged
            assert isinstance(failure, BaseException)
            raise failure
        return charged, done

    @contextlib.asynccontextmanager
    async def _given_back_on_failure(self, charge: Charge | None) -> AsyncIterator[None]:
        try:
            yield
        except Exception:
            await self.quotas.release(charge)
            raise

    async def _link_blob(self, name: str, digest: Digest) -> None:
        await self._ensure_repository(name)
        await self.storage.put_bytes(layout.blob_link(name, digest), b"")

    # -- uploads ---------------------------------------------------------------------------------

    async def push_blob(
        self, name: str, digest: Digest, body: AsyncIterable[bytes], length: int | None
    ) -> None:
        """A whole blob in one request, stored only if it matches digest (and length).

        Charged to the namespace's quota before it is received when its length is known;
        otherwise after it is stored and before it is linked (a refused blob then stays
        unlinked, invisible, until garbage collection removes it after its blob grace)."""
        charge = None if length is None else await self._charge(name, BLOBS, digest, length)
        async with self._given_back_on_failure(charge):
            await self._ensure_repository(name)
            await self.tombstones.rescue(digest)
            await self.uploads.receive_whole(body, digest, layout.blob(digest), length)
            if length is None:
                size = (await self.storage.stat(layout.blob(digest))).size
                charge = await self._charge(name, BLOBS, digest, size)
        async with self._given_back_on_failure(charge):
            await self._link_blob(name, digest)
            await self._keep_uploaded(digest)

    async def _keep_uploaded(self, digest: Digest) -> None:
        """After storing a blob (or finding it stored): no collector may delete it now. One
        that was already deleting it may have taken the bytes just stored with it."""
        if await self.tombstones.rescue(digest) and not await exists(
            self.storage, layout.blob(digest)
        ):
            raise RegistryError(
                ErrorCode.UNAVAILABLE,
                f"garbage collection deleted blob {digest} while it was uploaded; upload it again",
            )

    async def start_upload(self, name: str) -> UploadProgress:
        return _progress(await self.uploads.start(name))

    async def upload_status(self, name: str, upload_id: str) -> UploadProgress:
        return _progress(await self.uploads.get(name, upload_id))

    async def append_to_upload(
        self,
        name: str,
        upload_id: str,
        chunk: AsyncIterable[bytes],
        chunk_range: ByteRange | None,
        length: int | None,
    ) -> UploadProgress:
        """Add a chunk; with a range it must start where the upload stands."""
        session = await self.uploads.get(name, upload_id)
        return _progress(await self.uploads.append(session, chunk, chunk_range, length))

    async def finish_upload(
        self,
        name: str,
        upload_id: str,
        digest: Digest,
        last_chunk: AsyncIterable[bytes] | None = None,
        chunk_range: ByteRange | None = None,
        length: int | None = None,
    ) -> None:
        """Verify the upload (with its last chunk, if any) against digest and link the blob.

        The upload is consumed either way; a mismatch stores nothing."""
        session = await self.uploads.get(name, upload_id)
        if last_chunk is not None:
            expected = expected_length(session, chunk_range, length)
            if session.size == 0:
                # The whole blob in the closing PUT (containerd): stream it straight into place.
                await self.uploads.cancel(session)
                await self.push_blob(name, digest, last_chunk, expected)
                return
            session = await self.uploads.append(session, last_chunk, chunk_range, length)
        try:
            charge, _ = await self._charged_with(
                self._charge(name, BLOBS, digest, session.size), self.tombstones.rescue(digest)
            )
        except RegistryError as exc:
            if exc.code is ErrorCode.DENIED:  # refused: nothing of the push remains
                await self.uploads.cancel(session)
            raise
        async with self._given_back_on_failure(charge):
            await self._ensure_repository(name)
            await self.uploads.complete(session, digest, layout.blob(digest))
            await self._link_blob(name, digest)
            await self._keep_uploaded(digest)

    async def cancel_upload(self, name: str, upload_id: str) -> None:
        await self.uploads.cancel(await self.uploads.get(name, upload_id))

    async def purge_abandoned_uploads(self, max_age: float) -> int:
        """Remove upload sessions (and the storage's unfinished writes) idle for max_age
        seconds; how many objects went."""
        removed = await self.uploads.purge(max_age)
        if isinstance(self.storage, SupportsIncompleteWritePurge):
            removed += await self.storage.purge_incomplete_writes(max_age)
        return removed

    # -- manifests -------------------------------------------------------------------------------

    async def _tag_state(self, name: str, tag: str | None) -> TagState | None:
        return None if tag is None else await self.manifest_store.read_tag(name, tag)

    async def get_manifest(self, name: str, reference: str | Digest) -> StoredManifest:
        tag_state = None
        if isinstance(reference, Digest):
            digest = reference
        else:
            tag_state = await self.manifest_store.read_tag(name, reference)
            if tag_state is None or tag_state.digest is None:
                raise _manifest_unknown(reference)
            digest = tag_state.digest
            cached = self._manifests.get(name, digest)  # a tag names it: it exists
            if cached is not None:
                return cached
        try:
            stored = await self.manifest_store.read(name, digest)
        except NotFound:
            self._manifests.discard(name, digest)
            if isinstance(reference, str) and tag_state is not None:
                await self.manifest_store.drop_dangling_tag(name, reference, tag_state)
            raise _manifest_unknown(reference) from None
        manifest = _decode_manifest(digest, stored)
        self._manifests.put(name, digest, manifest, len(manifest.body))
        return manifest

    def record_pull(self, name: str, digest: Digest) -> None:
        """A client fetched the manifest (GET, not HEAD): remember when, for retention's
        `keep_pulled_days`, in the repositories whose namespace uses it. Never waits: an
        hourly background write at most (retention/pulls.py)."""
        namespace = self.namespaces.of(name)
        retention = namespace.config.retention if namespace is not None else None
        if retention is not None and retention.keep_pulled_days and not self.read_only:
            self.pulls.record(name, digest)

    async def put_manifest(
        self, name: str, reference: str | Digest, body: bytes, content_type: str | None
    ) -> PushedManifest:
        tag = reference if isinstance(reference, str) else None
        if tag is not None and not is_valid_tag(tag):
            raise RegistryError(ErrorCode.MANIFEST_INVALID, f"invalid tag {tag!r}")
        try:
            parsed = mf.parse_manifest(body, content_type)
        except mf.ManifestInvalid as exc:
            raise RegistryError(ErrorCode.MANIFEST_INVALID, str(exc)) from None
        digest = _digest_of_manifest(body, reference)
        size = len(encode_record(parsed.media_type, body))
        # Reads, the quota charge and the catalog marker (which precedes everything else we
        # write; the repository exists already, its blobs are linked): together.
        charge, (_, _, previous) = await self._charged_with(
            self._charge(name, MANIFESTS, digest, size),
            all_of(
                self._check_references(name, parsed),
                self._ensure_repository(name),
                self._tag_state(name, tag),
            ),
        )
        async with self._given_back_on_failure(charge):
            return await self._put_manifest(name, tag, parsed, digest, body, previous)

    async def _put_manifest(
        self,
        name: str,
        tag: str | None,
        parsed: mf.Manifest,
        digest: Digest,
        body: bytes,
        previous: TagState | None,
    ) -> PushedManifest:
        referrer = None
        if parsed.subject is not None:
            referrer = Referrer(parsed.subject, referrer_entry(parsed, digest, len(body)))
        # The write order, and why it holds up against concurrent deletes: manifest_store.py.
        record = encode_record(parsed.media_type, body)
        immutability = self.immutability(name)
        immutable = immutability(tag) if immutability is not None and tag is not None else None
        await self.manifest_store.store(
            name, digest, record, tag=tag, previous=previous, referrer=referrer, immutable=immutable
        )
        return PushedManifest(digest, parsed.subject)

    async def _check_references(self, name: str, parsed: mf.Manifest) -> None:
        """Every blob and child manifest the manifest names is in this repository, with the
        size its descriptor says (checked concurrently; all problems reported at once)."""

        async def problems_of(item: tuple[mf.Descriptor, bool]) -> list[RegistryError]:
            descriptor, is_blob = item
            if is_blob:
                size = await self._blob_size_or_none(name, descriptor.digest)
                return _reference_problem(descriptor, size, "blob")
            size = await self._manifest_size(name, descriptor.digest)
            return _reference_problem(descriptor, size, "manifest")

        descriptors = [(d, True) for d in parsed.blobs] + [(d, False) for d in parsed.manifests]
        problems = [p for found in await map_bounded(problems_of, descriptors) for p in found]
        if problems:
            first, *rest = problems
            first.extra = rest
            raise first

    async def _manifest_size(self, name: str, digest: Digest) -> int | None:
        """The size of a manifest another one names; one being deleted is taken back."""
        stored = await unmark_record(self.storage, layout.manifest(name, digest))
        if stored is None:
            return None
        return len(_decode_manifest(digest, stored).body)

    def forget_manifest(self, name: str, digest: Digest) -> None:
        """Drop a manifest deleted behind the service's back (by garbage collection)."""
        self._manifests.discard(name, digest)

    async def delete_manifest(self, name: str, reference: str | Digest) -> None:
        """By tag: untag. By digest: the manifest, every tag on it and its referrer entry."""
        self._check_delete_enabled()
        immutability = self.immutability(name)
        if isinstance(reference, str):
            immutable = immutability(reference) if immutability is not None else None
            found = await self.manifest_store.untag(name, reference, immutable=immutable)
        else:
            found = await self.manifest_store.delete(name, reference, immutable=immutability)
            self._manifests.discard(name, reference)
        if not found:
            raise _manifest_unknown(reference)

    def immutability(self, name: str) -> Immutability | None:
        """Which tags of repository `name` are immutable (its namespace's `immutable_tags`,
        as configured now); None if none can be."""
        namespace = self.namespaces.of(name)
        if namespace is None or not namespace.config.immutable_tags:
            return None

        def immutable(tag: str) -> Immutable | None:
            rule = namespace.immutable_rule(tag)
            return None if rule is None else Immutable(namespace.pattern, rule)

        return immutable

    # -- tags and referrers ----------------------------------------------------------------------

    async def list_tags(self, name: str, n: int, last: str | None) -> Page:
        if not await self._repository_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, detail={"name": name})
        prefix = layout.tags_prefix(name)
        keys = await self.storage.list(prefix, prefix + last if last else None, n + 1)
        tags = [k[len(prefix) :] for k in keys]
        return Page(tags[:n], len(tags) > n)

    async def list_referrers(
        self, name: str, subject: Digest, artifact_type: str | None, cursor: str | None = None
    ) -> ReferrersPage:
        """A page of the descriptors of manifests whose subject is `subject`, after `cursor`
        (from the previous page), bounded in bytes (see referrers.py)."""
        return await referrers_page(
            self.storage, name, subject, artifact_type, cursor, self.referrers_page_bytes
        )

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
