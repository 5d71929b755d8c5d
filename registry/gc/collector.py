"""One garbage collection, online: mark, mark what goes, settle, mark again, delete.

The phases and why they are safe against pushes on any replica: registry/gc/__init__.py.
`pause` is called at each phase boundary (PHASES) so tests can run clients in between.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import anyio

from registry.concurrency import map_bounded
from registry.digest import SUPPORTED_ALGORITHMS, Digest
from registry.errors import ErrorCode, RegistryError
from registry.gc import marks
from registry.gc.lease import RENEW_EVERY_SECONDS, Lease, LeaseLost
from registry.gc.reachability import (
    Candidate,
    Node,
    RepositoryMark,
    RepositoryMarker,
    Rules,
    Unparseable,
    compact,
    digests,
    keys_under,
    link_digests,
    manifest_digests,
    read_node,
    tag_targets,
)
from registry.maintenance import READ_ONLY_MESSAGE
from registry.manifest import ManifestInvalid, parse_manifest
from registry.manifest_store import decode_record, marked
from registry.namespaces import Namespace
from registry.referrers import referrer_entry
from registry.retention import planner as retention
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import NotFound, PreconditionFailed, StorageError, exists

DAY = 86400.0
PHASES = ("marked", "tombstoned", "settled", "before-delete", "deleting-blobs")
REPOSITORIES_AT_ONCE = 16
# Storage calls of one kind at once (blobs, tombstones): a collection is many small calls, and
# storage serves them better together (a filesystem's journal commits concurrent flushes as one).
CALLS_AT_ONCE = 64
log = logging.getLogger("registry.gc")
Pause = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Settings:
    blob_grace: float = 3600.0
    settle: float = 30.0
    delete_untagged: bool = False
    untagged_grace: float = 86400.0
    delete_referrers: bool = True
    upload_max_age: float | None = None  # also purge upload sessions idle this long
    retention: bool = False  # first remove the tags the namespaces' retention rules let go


@dataclass(slots=True)
class Summary:
    dry_run: bool
    manifests_deleted: int = 0
    links_deleted: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    repositories_deleted: int = 0
    rescued: int = 0  # candidates a client touched (or a second look found in use)
    leftovers_cleared: int = 0  # tombstones of a collector that died
    uploads_purged: int = 0
    tags_deleted: int = 0  # by retention (Settings.retention)
    duration_seconds: float = 0.0

    def as_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def _short(digest: Digest) -> int:
    """A blob's key in the kept set: 64 bits of its digest. Two digests sharing them only keep
    a blob that could have gone (never the reverse), at odds of 1 in 2^64 per pair."""
    return int(digest.encoded[:16], 16)


@dataclass(slots=True)
class _Run:
    repositories: dict[str, RepositoryMark] = field(default_factory=dict)
    kept: set[int] = field(default_factory=set)
    blobs: dict[Digest, int] = field(default_factory=dict)  # global blob candidates: sizes
    rescued_blobs: set[Digest] = field(default_factory=set)
    rescued_manifests: dict[tuple[str, Digest], Candidate] = field(default_factory=dict)
    rescued_links: dict[tuple[str, Digest], str | None] = field(default_factory=dict)


async def _nothing(_: str) -> None:
    return None


class Collector:
    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        *,
        pause: Pause = _nothing,
        holder: str | None = None,
    ) -> None:
        self.registry = registry
        self.storage = registry.storage
        self.settings = settings
        self.pause = pause
        self.lease = Lease(self.storage, holder)
        self.run_id = self.lease.run

    # -- the run -------------------------------------------------------------------------------

    async def collect(self, dry_run: bool = False) -> Summary:
        """One full collection (or, dry, what it would delete). Raises LeaseHeld when another
        collector runs, LeaseLost if our lease could not be kept, StorageError."""
        started = time.monotonic()
        summary = Summary(dry_run)
        if dry_run:
            now = await self._storage_now()
            if self.settings.retention:  # (what their untagging would add is not counted)
                planned = await retention.plan(self.storage, self.registry.namespaces, now)
                summary.tags_deleted = len(planned.removals)
            run = await self._mark(now)
            self._count_candidates(run, summary)
        else:
            await self._check_writable()
            await self.lease.acquire()
            # A plain task, not a task group: our own failures must reach the caller as they
            # are, not wrapped in an exception group.
            renewing = asyncio.create_task(self._keep_lease())
            try:
                await self._collect(summary)
            finally:
                renewing.cancel()
                await self.lease.release()
        summary.duration_seconds = round(time.monotonic() - started, 3)
        return summary

    async def _collect(self, summary: Summary) -> None:
        now = await self._storage_now()
        summary.leftovers_cleared = await self._clear_leftovers()
        if self.settings.retention:
            summary.tags_deleted = await self._apply_retention(now)
        run = await self._mark(now)
        log.info(
            "gc: marked %d repositories; candidates: %d manifests, %d links, %d blobs",
            len(run.repositories),
            sum(len(r.manifest_candidates) for r in run.repositories.values()),
            sum(len(r.link_candidates) for r in run.repositories.values()),
            len(run.blobs),
        )
        await self.pause("marked")
        try:
            await self._write_marks(run)
            await self.pause("tombstoned")
            await anyio.sleep(self.settings.settle)
            await self.pause("settled")
            await self._mark_again(run)
            await self.pause("before-delete")
            self.lease.check()
            await self._check_writable()
        except Exception:  # nothing deleted yet: take every mark back
            await self._abandon(run)
            raise
        await self._delete_manifests(run, summary)
        await self._delete_links(run, summary)
        await self._delete_blobs(run, summary)
        await self._remove_repositories(run, summary)
        summary.rescued = len(run.rescued_blobs) + len(run.rescued_links)
        summary.rescued += len(run.rescued_manifests)
        await self._unmark_rescued(run)
        if self.settings.upload_max_age is not None:
            summary.uploads_purged = await self.registry.purge_abandoned_uploads(
                self.settings.upload_max_age
            )
        # What went gives its bytes back to the namespaces' quotas (registry/quota.py).
        await self.registry.quotas.reconcile_all(self.registry.namespaces, self.settings.settle)
        record = {"finished": time.time(), "holder": self.lease.holder, "run": self.run_id}
        await self.storage.put_bytes(layout.GC_LAST_RUN, json.dumps(record).encode())

    async def _apply_retention(self, now: float) -> int:
        """Retention, under our lease and before the mark: the manifests it untags are
        collected in this run if the untagged rules let them go (registry/retention/)."""
        planned = await retention.plan(self.storage, self.registry.namespaces, now)
        removed = await retention.apply(self.storage, planned.removals)
        for removal in removed:
            log.info(
                "retention: deleted tag %s:%s (%s): %s",
                removal.repository,
                removal.tag,
                removal.digest,
                removal.reason,
            )
        self.lease.check()
        return len(removed)

    async def _abandon(self, run: _Run) -> None:
        """Take back the marks of a run that stops before deleting (best effort: what is left
        reads as present, and the next run clears the tombstones)."""
        for repository in run.repositories.values():
            self._rescue_repository(run, repository)
        run.rescued_blobs |= set(run.blobs)
        run.blobs.clear()
        try:
            await self._unmark_rescued(run)
        except StorageError as exc:
            log.warning("gc: could not take back every mark of the stopped run: %s", exc)

    async def _check_writable(self) -> None:
        """Read-only maintenance mode (as stored now, not as last polled) stops a collection
        before it deletes anything; the marks it left read as present."""
        await self.registry.maintenance.read_flag()
        if self.registry.read_only:
            raise RegistryError(ErrorCode.UNSUPPORTED, READ_ONLY_MESSAGE)

    async def _keep_lease(self) -> None:
        wait = RENEW_EVERY_SECONDS
        while True:
            await anyio.sleep(wait)
            try:
                await self.lease.renew()
                wait = RENEW_EVERY_SECONDS
            except StorageError as exc:  # check() stops us if this goes on
                log.warning("gc: could not renew the lease, trying again shortly: %s", exc)
                wait = RENEW_EVERY_SECONDS / 4
            except LeaseLost as exc:
                log.warning("gc: lost the lease: %s", exc)
                return

    async def _storage_now(self) -> float:
        """The storage's clock (ages are measured against the objects' modification times):
        the time of a write of ours, or of the lease we hold."""
        if self.lease.expires:
            return (await self.storage.stat(layout.GC_LEASE)).modified
        return time.time()

    # -- leftovers of a collector that died ------------------------------------------------------

    async def _clear_leftovers(self) -> int:
        """Finish the deletions a dead collector had won, drop its other tombstones. (Its
        marks on links, manifests and markers need nothing: a writer takes them back, and
        this run marks again what is still unreferenced.)"""

        async def clear(key: str) -> None:
            try:
                state, version = await self.storage.get_bytes(key)
            except NotFound:
                return
            if state.startswith(marks.DELETING):
                await self.storage.delete(layout.blob(layout.digest_of_blob_tombstone(key)))
            await self.storage.delete_if_version(key, version)

        cleared = 0
        async for keys in self.storage.scan(layout.BLOB_TOMBSTONES_PREFIX):
            await map_bounded(clear, keys, CALLS_AT_ONCE)
            cleared += len(keys)
        return cleared

    # -- mark ----------------------------------------------------------------------------------

    async def _repository_names(self) -> list[str]:
        return [
            layout.name_of_catalog_entry(key)
            async for key in keys_under(self.storage, layout.CATALOG_PREFIX)
        ]

    async def _mark(self, now: float) -> _Run:
        run = _Run()
        settings = self.settings
        rules = Rules(
            settings.blob_grace,
            settings.delete_untagged,
            settings.untagged_grace,
            settings.delete_referrers,
        )
        marker = RepositoryMarker(self.storage, rules, now)
        namespaces = self.registry.namespaces  # as configured now (a reload replaces it)

        def keep(digest: Digest) -> None:
            run.kept.add(_short(digest))

        async def mark(name: str) -> None:
            try:
                run.repositories[name] = await marker.mark(
                    name, keep, repository_rules(rules, namespaces.of(name))
                )
            except Unparseable as exc:
                log.warning("gc: nothing in %s is collected: %s", name, exc)

        await map_bounded(mark, await self._repository_names(), REPOSITORIES_AT_ONCE)
        for algorithm in SUPPORTED_ALGORITHMS:
            prefix = layout.blobs_prefix(algorithm)
            page: list[Digest] = []
            async for digest in digests(self.storage, prefix, algorithm):
                if _short(digest) not in run.kept:
                    page.append(digest)
                if len(page) >= 1000:
                    await self._blob_candidates(run, page, now)
                    page = []
            await self._blob_candidates(run, page, now)
        return run

    async def _blob_candidates(self, run: _Run, unkept: list[Digest], now: float) -> None:
        async def size(digest: Digest) -> int | None:
            """The blob's size if it is old enough to go."""
            try:
                info = await self.storage.stat(layout.blob(digest))
            except NotFound:
                return None
            return None if now - info.modified < self.settings.blob_grace else info.size

        for digest, found in zip(
            unkept, await map_bounded(size, unkept, CALLS_AT_ONCE), strict=True
        ):
            if found is not None:
                run.blobs[digest] = found

    def _count_candidates(self, run: _Run, summary: Summary) -> None:
        for repository in run.repositories.values():
            summary.manifests_deleted += len(repository.manifest_candidates)
            summary.links_deleted += len(repository.link_candidates)
            summary.repositories_deleted += repository.removable
        summary.blobs_deleted = len(run.blobs)
        summary.bytes_freed = sum(run.blobs.values())

    # -- mark what goes --------------------------------------------------------------------------

    async def _write_marks(self, run: _Run) -> None:
        async def mark_repository(repository: RepositoryMark) -> None:
            name = repository.name
            manifests = list(repository.manifest_candidates.items())
            for (digest, candidate), version in zip(
                manifests,
                await map_bounded(self._mark_manifest(name), [d for d, _ in manifests]),
                strict=True,
            ):
                candidate.version = version
                if version is None:  # gone already, or too busy to be garbage
                    self._rescue_manifest(run, repository, digest)
            links = list(repository.link_candidates)
            keys = [layout.blob_link(name, digest) for digest in links]
            for digest, version in zip(
                links, await map_bounded(self._mark_empty, keys), strict=True
            ):
                if version is None:
                    self._rescue_link(run, repository, digest)
                else:
                    repository.link_candidates[digest] = sys.intern(version)
            if repository.removable:
                version = await self._mark_empty(layout.catalog_entry(name))
                repository.marker = Candidate(version=version) if version else None
                repository.removable = version is not None

        await map_bounded(mark_repository, list(run.repositories.values()), REPOSITORIES_AT_ONCE)
        pending = marks.pending(self.run_id)

        async def tombstone(digest: Digest) -> bool:
            return await self.storage.put_if_absent(layout.blob_tombstone(digest), pending)

        blobs = list(run.blobs)
        for digest, written in zip(
            blobs, await map_bounded(tombstone, blobs, CALLS_AT_ONCE), strict=True
        ):
            if not written:  # not ours: leave that blob alone
                del run.blobs[digest]

    def _mark_manifest(self, name: str) -> Callable[[Digest], Awaitable[str | None]]:
        async def mark(digest: Digest) -> str | None:
            key = layout.manifest(name, digest)
            for _ in range(marks.MAX_ATTEMPTS):
                try:
                    stored, version = await self.storage.get_bytes(key)
                    return await self.storage.compare_and_swap(key, marked(stored), version)
                except NotFound:
                    return None
                except PreconditionFailed:
                    continue
            return None  # too busy to be garbage: leave it

        return mark

    async def _mark_empty(self, key: str) -> str | None:
        """Mark a link or catalog marker; its marked version, or None if it is gone."""
        for _ in range(marks.MAX_ATTEMPTS):
            try:
                _, version = await self.storage.get_bytes(key)
                return await self.storage.compare_and_swap(
                    key, marks.link_mark(self.run_id), version
                )
            except NotFound:
                return None
            except PreconditionFailed:
                continue
        return None

    # -- the second look -----------------------------------------------------------------------

    async def _mark_again(self, run: _Run) -> None:
        """After the settle: whatever a push made reachable since the first mark, without
        passing through a mark (its checks came before the marks were written, so its writes
        landed within the settle), is found here and kept."""

        async def look(name: str) -> None:
            repository = run.repositories.get(name)
            if repository is None:  # new since the first mark, or not collected
                repository = RepositoryMark(name)
            try:
                await self._look_again(run, repository)
            except Unparseable as exc:
                log.warning("gc: nothing in %s is collected: %s", name, exc)
                self._rescue_repository(run, repository)
                async for digest in link_digests(self.storage, name):
                    self._rescue_blob(run, digest)

        await map_bounded(look, await self._repository_names(), REPOSITORIES_AT_ONCE)

    async def _look_again(self, run: _Run, repository: RepositoryMark) -> None:
        name = repository.name
        listed = await manifest_digests(self.storage, name)
        new = [d for d in listed if compact(d) not in repository.manifests]
        if new:
            repository.removable = False

        async def read(digest: Digest) -> None:
            node = await read_node(self.storage, name, digest)
            if node is not None:
                self._rescue_kept_by(run, repository, digest, node)

        await map_bounded(read, new)
        if repository.manifest_candidates or repository.removable:
            tagged = await tag_targets(self.storage, name)
            if tagged is not None:
                repository.removable = False
                for digest in tagged:
                    self._rescue_manifest(run, repository, digest)
        async for digest in link_digests(self.storage, name):
            if digest not in repository.link_candidates:
                repository.removable = False
                self._rescue_blob(run, digest)

    def _rescue_repository(self, run: _Run, repository: RepositoryMark) -> None:
        for digest in list(repository.manifest_candidates):
            self._rescue_manifest(run, repository, digest)
        for digest in list(repository.link_candidates):
            self._rescue_link(run, repository, digest)
        repository.removable = False

    def _rescue_manifest(self, run: _Run, repository: RepositoryMark, digest: Digest) -> None:
        candidate = repository.manifest_candidates.pop(digest, None)
        if candidate is None:
            return
        repository.removable = False
        run.rescued_manifests[repository.name, digest] = candidate
        assert candidate.node is not None
        self._rescue_kept_by(run, repository, digest, candidate.node)

    def _rescue_kept_by(
        self, run: _Run, repository: RepositoryMark, digest: Digest, node: Node
    ) -> None:
        """What a kept manifest keeps: its children, its blobs, its referrers."""
        for child in node.children:
            self._rescue_manifest(run, repository, child)
        for blob in node.blobs:
            self._rescue_link(run, repository, blob)
        for referrer, other in list(repository.manifest_candidates.items()):
            if other.node is not None and other.node.subject == digest:
                self._rescue_manifest(run, repository, referrer)

    def _rescue_link(self, run: _Run, repository: RepositoryMark, digest: Digest) -> None:
        self._rescue_blob(run, digest)
        if digest in repository.link_candidates:
            repository.removable = False
            run.rescued_links[repository.name, digest] = repository.link_candidates.pop(digest)

    def _rescue_blob(self, run: _Run, digest: Digest) -> None:
        if digest in run.blobs:
            del run.blobs[digest]
            run.rescued_blobs.add(digest)

    # -- delete --------------------------------------------------------------------------------

    async def _delete_manifests(self, run: _Run, summary: Summary) -> None:
        """Indexes before their children: an index a push took back keeps its children."""

        async def delete_in(repository: RepositoryMark) -> None:
            candidates = repository.manifest_candidates
            while candidates:
                children = {
                    child
                    for candidate in candidates.values()
                    if candidate.node is not None
                    for child in candidate.node.children
                }
                level = [d for d in candidates if d not in children] or list(candidates)
                deleter = self._delete_manifest(repository.name)
                outcomes = await map_bounded(
                    deleter, [(d, candidates[d]) for d in level], REPOSITORIES_AT_ONCE * 4
                )
                for digest, won in zip(level, outcomes, strict=True):
                    if won:
                        del candidates[digest]
                        summary.manifests_deleted += 1
                        self.registry.forget_manifest(repository.name, digest)
                    else:
                        self._rescue_manifest(run, repository, digest)

        await map_bounded(delete_in, list(run.repositories.values()), REPOSITORIES_AT_ONCE)

    def _delete_manifest(self, name: str) -> Callable[[tuple[Digest, Candidate]], Awaitable[bool]]:
        async def delete(item: tuple[Digest, Candidate]) -> bool:
            digest, candidate = item
            assert candidate.version is not None and candidate.node is not None
            subject = candidate.node.subject
            if subject is not None:
                await self.storage.delete(layout.referrer(name, subject, digest))
            prefix = layout.tagged_prefix(name, digest)
            reverse = await self.storage.list(prefix)
            versions = await map_bounded(self._version, reverse)
            key = layout.manifest(name, digest)
            if not await self.storage.delete_if_version(key, candidate.version):
                if subject is not None:  # a push took it back: its referrer entry stays
                    await self._restore_referrer_entry(name, digest, subject)
                return False
            await self.storage.delete(layout.pulled(name, digest))  # its pull record, if any
            for entry, version in zip(reverse, versions, strict=True):
                if version is not None:
                    await self.storage.delete_if_version(entry, version)
            return True

        return delete

    async def _version(self, key: str) -> str | None:
        try:
            return (await self.storage.get_bytes(key))[1]
        except NotFound:
            return None

    async def _restore_referrer_entry(self, name: str, digest: Digest, subject: Digest) -> None:
        try:
            stored, _ = await self.storage.get_bytes(layout.manifest(name, digest))
            media_type, body = decode_record(stored)
            parsed = parse_manifest(body, media_type)
        except (NotFound, ManifestInvalid):
            return
        entry = referrer_entry(parsed, digest, len(body))
        await self.storage.put_bytes(layout.referrer(name, subject, digest), entry)

    async def _delete_links(self, run: _Run, summary: Summary) -> None:
        async def delete_in(repository: RepositoryMark) -> None:
            items = list(repository.link_candidates.items())

            async def delete(item: tuple[Digest, str | None]) -> bool:
                digest, version = item
                assert version is not None
                key = layout.blob_link(repository.name, digest)
                return await self.storage.delete_if_version(key, version)

            for (digest, _), won in zip(items, await map_bounded(delete, items), strict=True):
                if won:
                    summary.links_deleted += 1
                else:
                    self._rescue_link(run, repository, digest)

        await map_bounded(delete_in, list(run.repositories.values()), REPOSITORIES_AT_ONCE)

    async def _delete_blobs(self, run: _Run, summary: Summary) -> None:
        self.lease.check()
        pending, deleting = marks.pending(self.run_id), marks.deleting(self.run_id)

        async def win(digest: Digest) -> bool:
            key = layout.blob_tombstone(digest)
            try:
                state, version = await self.storage.get_bytes(key)
                if state != pending:
                    return False
                await self.storage.compare_and_swap(key, deleting, version)
            except (NotFound, PreconditionFailed):
                return False
            return True

        candidates = list(run.blobs)
        won = [
            d
            for d, ok in zip(
                candidates, await map_bounded(win, candidates, CALLS_AT_ONCE), strict=True
            )
            if ok
        ]
        for digest in set(candidates) - set(won):
            self._rescue_blob(run, digest)
        await self.pause("deleting-blobs")
        self.lease.check()

        async def delete(digest: Digest) -> None:
            await self.storage.delete(layout.blob(digest))
            await self.storage.delete(layout.blob_tombstone(digest))

        await map_bounded(delete, won, CALLS_AT_ONCE)
        summary.blobs_deleted = len(won)
        summary.bytes_freed = sum(run.blobs[d] for d in won)

    async def _remove_repositories(self, run: _Run, summary: Summary) -> None:
        async def remove(repository: RepositoryMark) -> None:
            marker = repository.marker
            if not repository.removable or marker is None or marker.version is None:
                return
            name = repository.name
            if not await self.storage.delete_if_version(layout.catalog_entry(name), marker.version):
                return
            repository.marker = None
            leftovers = await self.storage.list(layout.repository_prefix(name))
            stale = [key for key in leftovers if _is_stale_entry(name, key)]
            if len(stale) < len(leftovers):  # a push wrote into it meanwhile: it stays listed
                await self.storage.put_if_absent(layout.catalog_entry(name), b"")
                return
            await map_bounded(self._drop_stale_entry, stale)
            summary.repositories_deleted += 1

        await map_bounded(remove, list(run.repositories.values()), REPOSITORIES_AT_ONCE)

    async def _drop_stale_entry(self, key: str) -> None:
        """A reverse tag entry (a push that sets the tag writes it again after the tag), or a
        referrer entry whose manifest is gone (a push writes the manifest first)."""
        referrer = _referrer_of_entry(key)
        if referrer is not None:
            name, digest = referrer
            if await exists(self.storage, layout.manifest(name, digest)):
                return
        await self.storage.delete(key)

    async def _unmark_rescued(self, run: _Run) -> None:
        """Take our marks back from what was not deleted after all."""

        async def manifest(item: tuple[tuple[str, Digest], Candidate]) -> None:
            (name, digest), candidate = item
            if candidate.version is not None:
                await self._unmark_if_ours(layout.manifest(name, digest), candidate.version, None)

        async def link(item: tuple[tuple[str, Digest], str | None]) -> None:
            (name, digest), version = item
            if version is not None:
                await self._unmark_if_ours(layout.blob_link(name, digest), version, b"")

        async def marker(repository: RepositoryMark) -> None:
            if repository.marker is not None and repository.marker.version is not None:
                key = layout.catalog_entry(repository.name)
                await self._unmark_if_ours(key, repository.marker.version, b"")

        async def tombstone(digest: Digest) -> None:
            await self.storage.delete(layout.blob_tombstone(digest))

        await map_bounded(manifest, list(run.rescued_manifests.items()))
        await map_bounded(link, list(run.rescued_links.items()))
        await map_bounded(marker, list(run.repositories.values()))
        await map_bounded(tombstone, list(run.rescued_blobs))

    async def _unmark_if_ours(self, key: str, version: str, unmarked: bytes | None) -> None:
        try:
            stored, current = await self.storage.get_bytes(key)
            if current == version:
                restored = unmarked if unmarked is not None else _without_mark(stored)
                await self.storage.compare_and_swap(key, restored, version)
        except (NotFound, PreconditionFailed):
            pass  # deleted, or taken back by a writer: nothing of ours is left on it


def repository_rules(rules: Rules, namespace: Namespace | None) -> Rules:
    """A repository's rules: its namespace's `retention.untagged_days`, when set, takes
    precedence over `gc.untagged` and `gc.untagged_grace`."""
    retention = namespace.config.retention if namespace is not None else None
    if retention is None or retention.untagged_days is None:
        return rules
    grace = retention.untagged_days * DAY
    return dataclasses.replace(rules, delete_untagged=True, untagged_grace=grace)


def _is_stale_entry(name: str, key: str) -> bool:
    rest = key[len(layout.repository_prefix(name)) - 1 :]
    return rest.startswith(("_tagged/", "_referrers/", "_pulled/"))


def _referrer_of_entry(key: str) -> tuple[str, Digest] | None:
    """The repository and referrer digest of a referrer entry's key."""
    head, marker, rest = key.rpartition("/_referrers/")
    if not marker:
        return None
    name = head[len(layout.REPOSITORIES_PREFIX) :]
    algorithm, _, encoded = rest.rpartition("/")[2].partition("-")
    return name, Digest(algorithm, encoded)


def _without_mark(stored: bytes) -> bytes:
    media_type, body = decode_record(stored)
    return media_type.encode() + b"\n" + body
