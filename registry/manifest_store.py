"""Manifests, their tags and the reverse tag index in storage, changed in an order that keeps
them consistent whatever runs at the same time, on this replica or another, and wherever a
process dies. docs/tags.md gives the argument step by step; in short:

- A tag changes only conditionally: created with put-if-absent, moved with compare-and-swap
  from the state read before, removed with delete-if-version.
- A push under a tag writes the manifest and the reverse entry (`_tagged/<digest>/<tag>`),
  then the tag, then checks that the manifest is still there unmarked and writes the reverse
  entry once more. If a delete of the manifest ran in between, the push writes the manifest
  (and the entries naming it) again: the tag never names a deleted manifest.
- A delete by digest marks the stored manifest first (a unique line before the record, which
  readers skip, so the manifest stays readable), removes every tag that names it, and then
  removes the manifest only if its mark is still there: a push that rewrote it meanwhile wins.
- Reverse entries hold a unique nonce and are removed only if unchanged since they were read,
  so a push that wrote one again after that read keeps it.
- An immutable tag (a namespace's `immutable_tags`, docs/immutable-tags.md) is set only from
  absent (put-if-absent; a loser re-reads it and never swaps over the winner), and no untag or
  delete by digest removes it: they refuse with `DENIED` instead.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from registry import manifest as mf
from registry.concurrency import all_of, both, map_bounded
from registry.digest import Digest, InvalidDigest
from registry.errors import ErrorCode, RegistryError
from registry.storage import layout
from registry.storage.protocol import NotFound, PreconditionFailed, Storage

# A stored manifest being deleted starts with this, a nonce and a newline; no media type
# starts with "~", so a record and a marked record never look alike.
DELETING = b"~deleting "
# Compare-and-swap rounds lost to other writers of one object before giving up; each lost
# round means another writer succeeded.
MAX_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class TagState:
    """What a tag object holds: the digest it names (None if unreadable) and its version."""

    digest: Digest | None
    version: str


@dataclass(frozen=True, slots=True)
class Referrer:
    """The referrers-API entry of a manifest with a subject."""

    subject: Digest
    descriptor: bytes


@dataclass(frozen=True, slots=True)
class Immutable:
    """Why a tag may be neither moved nor removed: the namespace (by its pattern) and the
    `immutable_tags` pattern the tag matches."""

    namespace: str
    rule: str

    @property
    def source(self) -> str:
        """Where the rule comes from, as the configuration says it."""
        return f"namespace '{self.namespace}', immutable_tags '{self.rule}'"

    def _why(self, tag: str) -> str:
        return f"tag {tag} is immutable ({self.source})"

    def _detail(self, tag: str, digest: Digest) -> dict[str, str]:
        return {"tag": tag, "digest": str(digest), "namespace": self.namespace, "rule": self.rule}

    def moved(self, tag: str, current: Digest) -> RegistryError:
        """The error for a push that would move the tag off `current`."""
        message = f"{self._why(tag)}: it names {current}; push under a new tag"
        return RegistryError(ErrorCode.DENIED, message, self._detail(tag, current))

    def undeletable(self, tag: str, current: Digest) -> RegistryError:
        """The error for a delete of the tag."""
        message = f"{self._why(tag)}: it names {current} and cannot be deleted"
        return RegistryError(ErrorCode.DENIED, message, self._detail(tag, current))


# Which rule makes a tag of the repository immutable, if any.
Immutability = Callable[[str], Immutable | None]


def named_by_immutable(digest: Digest, tags: Sequence[tuple[str, Immutable]]) -> RegistryError:
    """The error for a delete of a manifest that immutable tags name (at least one)."""
    names = [tag for tag, _ in tags]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    first = tags[0][1]
    message = (
        f"manifest {digest} is named by immutable tag{'s' if len(names) > 1 else ''} {shown}"
        f" ({first.source}) and cannot be deleted"
    )
    detail = {"digest": str(digest), "tags": names, "namespace": first.namespace}
    return RegistryError(ErrorCode.DENIED, message, {**detail, "rule": first.rule})


def encode_record(media_type: str, body: bytes) -> bytes:
    """What is stored for a manifest: its media type, a newline, its bytes verbatim."""
    return media_type.encode() + b"\n" + body


def decode_record(stored: bytes) -> tuple[str, bytes]:
    """The media type and bytes of a stored manifest, marked for deletion or not."""
    media_type, _, body = _unmarked(stored).partition(b"\n")
    return media_type.decode(), body


def _unmarked(stored: bytes) -> bytes:
    while stored.startswith(DELETING):
        stored = stored.partition(b"\n")[2]
    return stored


def marked(stored: bytes) -> bytes:
    """The record with a fresh mark: being deleted (still served until it is gone)."""
    return DELETING + uuid.uuid4().hex.encode() + b"\n" + _unmarked(stored)


async def unmark_record(storage: Storage, key: str) -> bytes | None:
    """The record at key, taken back from a delete under way (by a client or a collector)
    if it was marked; None if it is gone."""
    for _ in range(MAX_ATTEMPTS):
        try:
            stored, version = await storage.get_bytes(key)
        except NotFound:
            return None
        if not stored.startswith(DELETING):
            return stored
        try:
            await storage.compare_and_swap(key, _unmarked(stored), version)
            return _unmarked(stored)
        except PreconditionFailed:
            continue
    raise _contention("the manifest")


def _nonce() -> bytes:
    return uuid.uuid4().hex.encode()


def _subject_of(stored: bytes) -> Digest | None:
    media_type, body = decode_record(stored)
    try:
        return mf.parse_manifest(body, media_type).subject
    except mf.ManifestInvalid:
        return None


def _other_target(state: TagState | None, digest: Digest) -> Digest | None:
    """The digest a tag names when that is not `digest` (its reverse entry becomes stale)."""
    if state is None or state.digest is None or state.digest == digest:
        return None
    return state.digest


def _contention(what: str) -> RegistryError:
    return RegistryError(ErrorCode.UNAVAILABLE, f"{what} kept changing under us; try again")


async def _nothing() -> None:
    return None


class ManifestStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -- reads ---------------------------------------------------------------------------------

    async def read_tag(self, name: str, tag: str) -> TagState | None:
        try:
            data, version = await self.storage.get_bytes(layout.tag(name, tag))
        except NotFound:
            return None
        try:
            return TagState(Digest.parse(data.decode()), version)
        except (InvalidDigest, UnicodeDecodeError):
            return TagState(None, version)

    async def read(self, name: str, digest: Digest) -> bytes:
        """The stored record (see decode_record); raises NotFound."""
        stored, _ = await self.storage.get_bytes(layout.manifest(name, digest))
        return stored

    async def drop_dangling_tag(self, name: str, tag: str, state: TagState) -> None:
        """Remove a tag found naming a manifest that is gone, unless it changed since it was
        read. Only a push that died between its tag write and its check, while a delete of
        the manifest ran, leaves one; readers clean it up when they meet it."""
        await self.storage.delete_if_version(layout.tag(name, tag), state.version)

    async def _version(self, key: str) -> str | None:
        try:
            _, version = await self.storage.get_bytes(key)
        except NotFound:
            return None
        return version

    async def _intact(self, key: str, size: int) -> bool:
        """Whether key holds the record we wrote: a marked one is longer, a deleted one gone."""
        try:
            return (await self.storage.stat(key)).size == size
        except NotFound:
            return False

    # -- push ----------------------------------------------------------------------------------

    async def store(
        self,
        name: str,
        digest: Digest,
        record: bytes,
        *,
        tag: str | None = None,
        previous: TagState | None = None,
        referrer: Referrer | None = None,
        immutable: Immutable | None = None,
    ) -> None:
        """Store a manifest record and its referrer entry; with a tag, point the tag at it,
        moving it from `previous` (the tag as read before the push began). An `immutable`
        tag that names a digest already is never moved: DENIED for another digest, and for
        the same one nothing changes (the manifest is only made sure of)."""
        key = layout.manifest(name, digest)
        if tag is None:
            await self.storage.put_bytes(key, record)
            await self._put_referrer(name, digest, referrer)
            return
        if immutable is not None and previous is not None and previous.digest is not None:
            if previous.digest != digest:
                raise immutable.moved(tag, previous.digest)
            await self._keep(name, digest, record, tag, referrer)
            return
        reverse = layout.tagged(name, digest, tag)
        moved_from = _other_target(previous, digest)
        (_, reverse_version), moved_version = await both(
            all_of(self.storage.put_bytes(key, record), self.storage.put_bytes(reverse, _nonce())),
            self._version(layout.tagged(name, moved_from, tag)) if moved_from else _nothing(),
        )
        await self._put_referrer(name, digest, referrer)
        try:
            moved_from, moved_version = await self._point(
                name, tag, digest, previous, moved_from, moved_version, immutable
            )
        except RegistryError:  # another push set the immutable tag first (or contention):
            # the tag never named this digest, so the entry is ours alone to take back
            await self.storage.delete_if_version(reverse, reverse_version)
            raise
        intact, _ = await both(
            self._intact(key, len(record)),
            all_of(
                self.storage.put_bytes(reverse, _nonce()),
                self._drop_reverse(name, moved_from, tag, moved_version),
            ),
        )
        if not intact:  # a delete of this manifest ran since we wrote it: write it again
            await self.storage.put_bytes(key, record)
            await self._put_referrer(name, digest, referrer)
            # Once more after the manifest: a delete that removed the manifest read the
            # entry's version before that, so it can no longer drop this one.
            await self.storage.put_bytes(reverse, _nonce())

    async def _keep(
        self, name: str, digest: Digest, record: bytes, tag: str, referrer: Referrer | None
    ) -> None:
        """A push of the digest an immutable tag names already: write nothing, unless the
        manifest is being deleted (take it back) or gone (write it and its entries again)."""
        if await unmark_record(self.storage, layout.manifest(name, digest)) is not None:
            return
        await self.storage.put_bytes(layout.manifest(name, digest), record)
        await self._put_referrer(name, digest, referrer)
        await self.storage.put_bytes(layout.tagged(name, digest, tag), _nonce())

    async def _put_referrer(self, name: str, digest: Digest, referrer: Referrer | None) -> None:
        if referrer is not None:
            key = layout.referrer(name, referrer.subject, digest)
            await self.storage.put_bytes(key, referrer.descriptor)

    async def _point(
        self,
        name: str,
        tag: str,
        digest: Digest,
        state: TagState | None,
        moved_from: Digest | None,
        moved_version: str | None,
        immutable: Immutable | None = None,
    ) -> tuple[Digest | None, str | None]:
        """Make the tag name digest, from `state`; after a lost race, read it again and retry.
        An immutable tag found naming a digest after a lost race is never swapped over: the
        same digest is a success, another one DENIED (so of racing pushes exactly one wins).

        Returns the digest the tag named before, if another, and the version its reverse entry
        had before the tag moved (the entry may be removed only if still that version)."""
        key, data = layout.tag(name, tag), str(digest).encode()
        for _ in range(MAX_ATTEMPTS):
            try:
                if state is None:
                    if await self.storage.put_if_absent(key, data):
                        return moved_from, moved_version
                else:
                    await self.storage.compare_and_swap(key, data, state.version)
                    return moved_from, moved_version
            except PreconditionFailed:
                pass
            state = await self.read_tag(name, tag)
            if immutable is not None and state is not None and state.digest is not None:
                if state.digest != digest:
                    raise immutable.moved(tag, state.digest)
                return None, None
            moved_from = _other_target(state, digest)
            moved_version = None
            if moved_from is not None:
                moved_version = await self._version(layout.tagged(name, moved_from, tag))
        raise _contention(f"tag {tag}")

    async def _drop_reverse(
        self, name: str, digest: Digest | None, tag: str, version: str | None
    ) -> None:
        if digest is not None and version is not None:
            await self.storage.delete_if_version(layout.tagged(name, digest, tag), version)

    # -- delete --------------------------------------------------------------------------------

    async def untag(self, name: str, tag: str, *, immutable: Immutable | None = None) -> bool:
        """Remove a tag (False if there is none) and, if it was removed, its reverse entry.
        An `immutable` tag that names a digest is not removed: DENIED."""
        state = await self.read_tag(name, tag)
        if state is None:
            return False
        if immutable is not None and state.digest is not None:
            raise immutable.undeletable(tag, state.digest)
        await self.untag_if_unchanged(name, tag, state)
        return True

    async def untag_if_unchanged(self, name: str, tag: str, state: TagState) -> bool:
        """Remove the tag, and its reverse entry, only if it still is `state` (as read
        before); whether it was removed."""
        if state.digest is None:
            return await self.storage.delete_if_version(layout.tag(name, tag), state.version)
        # The entry's version is read before the tag goes: a push that sets the tag again
        # afterwards writes the entry again, and so keeps it.
        reverse_version = await self._version(layout.tagged(name, state.digest, tag))
        if not await self.storage.delete_if_version(layout.tag(name, tag), state.version):
            return False  # it changed meanwhile: its entry belongs to whoever changed it
        await self._drop_reverse(name, state.digest, tag, reverse_version)
        return True

    async def delete(
        self, name: str, digest: Digest, *, immutable: Immutability | None = None
    ) -> bool:
        """Delete by digest: every tag naming the manifest, its referrer entry, the manifest
        itself unless a push rewrote it meanwhile, then its reverse entries. False if unknown.

        With `immutable` (which tags of the repository are immutable): DENIED, and nothing
        removed, if an immutable tag names the manifest. One set by a push while the delete
        runs is found when the tags are removed: it stays, the manifest is taken back from
        the delete, and the delete is DENIED (the mutable tags already removed stay removed)."""
        key = layout.manifest(name, digest)
        prefix = layout.tagged_prefix(name, digest)
        if immutable is not None:
            await self._refuse_if_immutable(name, digest, immutable)
        marked = await self._mark(key)
        if marked is None:
            return False
        mark_version, stored = marked
        tags = [k[len(prefix) :] for k in await self.storage.list(prefix)]

        async def untag(tag: str) -> tuple[str | None, Immutable | None]:
            rule = immutable(tag) if immutable is not None else None
            return await self._untag_if_naming(name, tag, digest, rule)

        untagged = await map_bounded(untag, tags)
        kept = [(tag, rule) for tag, (_, rule) in zip(tags, untagged, strict=True) if rule]
        if kept:
            with contextlib.suppress(PreconditionFailed):  # else a push rewrote it, or a delete
                await self.storage.compare_and_swap(key, _unmarked(stored), mark_version)
            raise named_by_immutable(digest, kept)
        reverse_versions = [version for version, _ in untagged]
        subject = _subject_of(stored)
        if subject is not None:
            await self.storage.delete(layout.referrer(name, subject, digest))
        if not await self.storage.delete_if_version(key, mark_version):
            return True  # a push wrote it again: it stays, with the entries that push needs
        await self.storage.delete(layout.pulled(name, digest))  # its pull record, if any

        async def drop(item: tuple[str, str | None]) -> None:
            await self._drop_reverse(name, digest, *item)

        await map_bounded(drop, list(zip(tags, reverse_versions, strict=True)))
        return True

    async def _refuse_if_immutable(
        self, name: str, digest: Digest, immutable: Immutability
    ) -> None:
        """DENIED if an immutable tag names the manifest (found through the reverse entries,
        reading only the tags an immutable rule covers)."""
        prefix = layout.tagged_prefix(name, digest)
        candidates = [
            (tag, rule)
            for tag in (k[len(prefix) :] for k in await self.storage.list(prefix))
            if (rule := immutable(tag)) is not None
        ]

        async def names_it(item: tuple[str, Immutable]) -> bool:
            state = await self.read_tag(name, item[0])
            return state is not None and state.digest == digest

        naming = await map_bounded(names_it, candidates)
        protected = [item for item, named in zip(candidates, naming, strict=True) if named]
        if protected:
            raise named_by_immutable(digest, protected)

    async def _mark(self, key: str) -> tuple[str, bytes] | None:
        """Mark the record at key as being deleted; its new version and its content, or None
        if there was none to begin with."""
        for _ in range(MAX_ATTEMPTS):
            try:
                stored, version = await self.storage.get_bytes(key)
            except NotFound:  # never there, or another delete finished first
                return None
            try:
                return await self.storage.compare_and_swap(key, marked(stored), version), stored
            except PreconditionFailed:
                continue
        raise _contention("the manifest")

    async def _untag_if_naming(
        self, name: str, tag: str, digest: Digest, immutable: Immutable | None = None
    ) -> tuple[str | None, Immutable | None]:
        """Remove the tag if it names digest; returns the version its reverse entry had when
        the tag was read (None if it had none), and the rule if the tag names digest but is
        immutable (then it stays)."""
        reverse_version, state = await both(
            self._version(layout.tagged(name, digest, tag)), self.read_tag(name, tag)
        )
        for _ in range(MAX_ATTEMPTS):
            if state is None or state.digest != digest:
                return reverse_version, None
            if immutable is not None:
                return reverse_version, immutable
            if await self.storage.delete_if_version(layout.tag(name, tag), state.version):
                return reverse_version, None
            state = await self.read_tag(name, tag)
        raise _contention(f"tag {tag}")
