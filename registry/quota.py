"""Namespace quotas: the bytes a namespace's repositories hold, kept in storage, so every
replica enforces one number (docs/quotas.md).

Objects (layout.py): per namespace with a quota, a usage object `{"used": N}` changed only by
compare-and-swap (put-if-absent when missing), and a charge marker per distinct blob or
manifest counted in it, holding its size and a nonce (`"<size> <nonce>"`: every write is a
new version, also on storages whose version is a hash of the content).

Why it is exact, and where it is not:
- *Charge before visible.* A push charges its content before it links the blob or stores the
  manifest. A marker that exists means "counted": the push rewrites it (a touch, by
  compare-and-swap on the version it read) and goes on. Otherwise it reserves (compare-and-
  swap `used + size`, refused when that exceeds the quota), then creates the marker with
  put-if-absent; if another push created it meanwhile, it gives the reservation back. So
  `used` never exceeds the quota through pushes, and at every moment `used` is at least the
  sum of the markers' sizes (each marker is added before it exists and subtracted after it
  is gone).
- *Whoever creates a marker adds its size, whoever deletes it subtracts it.* Creation is
  put-if-absent and deletion delete-if-version, so of two pushes, or a push and a
  reconciliation, or two reconciliations, exactly one does each: nothing is counted twice.
- *Giving bytes back* (reconcile, after garbage collection and repository deletes): the set S
  of digests linked in the namespace's repositories is compared with the markers M. S - M gets
  a marker (put-if-absent) and its size added (without the quota check: the content is
  there). M - S loses its marker, with delete-if-version on the version read, only if the
  marker was written more than `settle` before the walk started: a push touches or creates
  its marker before it links, and finishes its writes within the settle (the assumption
  garbage collection makes, registry/gc/), so a push in flight either linked before the walk
  (its digest is in S) or wrote its marker too recently to lose it; and a touch after the
  reconciler read the version makes its conditional delete fail.
- *The inexact window.* A push whose marker-to-link time exceeds the settle (a huge blob
  moved into place on slow storage) may lose its marker to a reconciliation: its bytes go
  uncounted until the next reconciliation adds them back. A reconciliation therefore
  under-counts by at most the uploads in flight while it runs, and the next one corrects it;
  pushes accepted meanwhile may exceed the quota by at most that much.
- *The usage checked against the markers.* A reservation whose marker is never written (a
  process killed between the two; a failed marker write gives its reservation back) leaves
  `used` above the sum of the markers for good. A reconciliation measures that difference when
  it starts and again at least `settle` later: a push in flight shows in one measurement at
  most (it finishes within the settle), a lasting difference in both, and the smaller of two
  same-signed measurements is taken off `used`. Two pushes caught in flight one in each
  measurement could make it take off at most the smaller of them, which the next
  reconciliation gives back (the difference then shows the other way).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from registry.concurrency import both, map_bounded
from registry.digest import SUPPORTED_ALGORITHMS, Digest
from registry.errors import ErrorCode, RegistryError
from registry.gc.reachability import keys_under, link_digests, manifest_digests
from registry.manifest_store import decode_record, encode_record
from registry.namespaces import Namespace, Namespaces
from registry.storage import layout
from registry.storage.protocol import NotFound, PreconditionFailed, Storage, StorageError
from registry.units import format_size

BLOBS, MANIFESTS = "blobs", "manifests"
# Compare-and-swap rounds on the usage object before giving up: every lost round means
# another push's change landed, so this bounds the pushes racing on one namespace at once.
MAX_ATTEMPTS = 64
# The pause after a lost round grows to this (seconds), with jitter, so racers spread out.
MAX_BACKOFF = 0.05
REPOSITORIES_AT_ONCE = 16
NAMESPACES_AT_ONCE = 4
log = logging.getLogger("registry.quota")


@dataclass(frozen=True, slots=True)
class Charge:
    """A marker this push created (and the bytes it reserved): given back if the push fails."""

    namespace: Namespace
    key: str
    size: int
    content: bytes


@dataclass(slots=True)
class Reconciled:
    namespace: str  # its pattern
    added: int = 0  # bytes of linked content that had no marker
    returned: int = 0  # bytes of markers whose content is no longer linked
    used: int = 0  # after the reconciliation
    corrected: int = 0  # what the usage held beyond its markers (a lost give-back), removed


def _marker(size: int) -> bytes:
    return f"{size} {uuid.uuid4().hex}".encode()


def _size_of_marker(data: bytes) -> int:
    return int(data.split(b" ", 1)[0])


def _usage_document(used: int) -> bytes:
    return json.dumps({"used": used}, separators=(",", ":")).encode()


def _exceeded(namespace: Namespace, quota: int, used: int, requested: int) -> RegistryError:
    return RegistryError(
        ErrorCode.DENIED,
        f"quota of namespace {namespace.pattern} exceeded: {format_size(quota)} allowed, "
        f"{used} bytes in use, {requested} more requested",
        {"quota": quota, "used": used, "requested": requested},
    )


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, min(MAX_BACKOFF, 0.002 * (attempt + 1))))


class Quotas:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -- usage ---------------------------------------------------------------------------------

    async def _read_usage(self, namespace: Namespace) -> tuple[int, str | None]:
        try:
            data, version = await self.storage.get_bytes(layout.namespace_usage(namespace.key))
        except NotFound:
            return 0, None
        return int(json.loads(data)["used"]), version

    async def used(self, namespace: Namespace) -> int:
        return (await self._read_usage(namespace))[0]

    async def _change_usage(
        self,
        namespace: Namespace,
        delta: int,
        limit: int | None = None,
        read: tuple[int, str | None] | None = None,
    ) -> None:
        """Add delta to the usage atomically; with `limit`, refused (DENIED) when the result
        would exceed it. `read`: the usage as just read, for the first attempt."""
        key = layout.namespace_usage(namespace.key)
        for attempt in range(MAX_ATTEMPTS):
            used, version = read or await self._read_usage(namespace)
            read = None
            if limit is not None and used + delta > limit:
                raise _exceeded(namespace, limit, used, delta)
            document = _usage_document(max(0, used + delta))
            try:
                if version is None:
                    if await self.storage.put_if_absent(key, document):
                        return
                else:
                    await self.storage.compare_and_swap(key, document, version)
                    return
            except PreconditionFailed:
                pass
            await _backoff(attempt)
        raise RegistryError(
            ErrorCode.UNAVAILABLE,
            f"the usage of namespace {namespace.pattern} kept changing under us; try again",
        )

    # -- charging ------------------------------------------------------------------------------

    async def charge(
        self, namespaces: Namespaces, repository: str, kind: str, digest: Digest, size: int
    ) -> Charge | None:
        """Count content about to become visible in `repository` (DENIED when its namespace's
        quota cannot take it). A Charge to give back (release) if the push then fails; None
        when there is nothing to give back (no quota, or counted already)."""
        namespace = namespaces.of(repository)
        if namespace is None or namespace.config.quota is None:
            return None
        quota = int(namespace.config.quota)
        key = layout.namespace_charged(namespace.key, kind, digest)
        for attempt in range(MAX_ATTEMPTS):
            # The usage is read with the marker (new content needs both; a touch wastes it).
            version, usage = await both(self._marker_version(key), self._read_usage(namespace))
            if version is not None:  # counted: touch it, so a reconciliation sees it young
                try:
                    await self.storage.compare_and_swap(key, _marker(size), version)
                    return None
                except PreconditionFailed:  # touched or removed meanwhile: look again
                    await _backoff(attempt)
                    continue
            await self._change_usage(namespace, size, quota, usage)
            content = _marker(size)
            try:
                created = await self.storage.put_if_absent(key, content)
            except BaseException:  # a storage failure, or the request cancelled
                await asyncio.shield(self._give_back(namespace, size))
                raise
            if created:
                return Charge(namespace, key, size, content)
            await self._change_usage(namespace, -size)  # another push counted it first
        raise RegistryError(
            ErrorCode.UNAVAILABLE, f"the quota marker of {digest} kept changing; try again"
        )

    async def _give_back(self, namespace: Namespace, size: int) -> None:
        """Best effort: a reservation whose marker could not be written (what stays is the
        leak reconcile corrects)."""
        try:
            await self._change_usage(namespace, -size)
        except (StorageError, RegistryError) as exc:
            log.warning(
                "quota: could not give back %d bytes of %s: %s", size, namespace.pattern, exc
            )

    async def _marker_version(self, key: str) -> str | None:
        try:
            _, version = await self.storage.get_bytes(key)
        except NotFound:
            return None
        return version

    async def release(self, charge: Charge | None) -> None:
        """Give a failed push's charge back, unless another push touched the marker since
        (then the content is that push's, and stays counted)."""
        if charge is None:
            return
        try:
            data, version = await self.storage.get_bytes(charge.key)
        except NotFound:
            return
        if data == charge.content and await self.storage.delete_if_version(charge.key, version):
            await self._change_usage(charge.namespace, -charge.size)

    # -- reconciliation ------------------------------------------------------------------------

    async def reconcile(
        self, namespaces: Namespaces, namespace: Namespace, settle: float
    ) -> Reconciled:
        """Make the markers agree with what the namespace's repositories link: add what has
        none, give back what is no longer linked (markers older than `settle`; see the
        module's documentation)."""
        started = time.time()
        result = Reconciled(namespace.pattern)
        drift_before = await self._drift(namespace)
        linked = await self._linked(namespaces, namespace)
        for kind in (BLOBS, MANIFESTS):
            charged = {d async for d in self._charged(namespace, kind)}
            missing = [(d, r) for d, r in linked[kind].items() if d not in charged]
            stale = [d for d in charged if d not in linked[kind]]

            async def add(item: tuple[Digest, str], kind: str = kind) -> int:
                return await self._add_marker(namespace, kind, *item)

            async def drop(digest: Digest, kind: str = kind) -> int:
                return await self._drop_marker(namespace, kind, digest, started - settle)

            result.added += sum(await map_bounded(add, missing))
            result.returned += sum(await map_bounded(drop, stale))
        await asyncio.sleep(max(0.0, started + settle - time.time()))
        drift_after = await self._drift(namespace)
        if (drift_before > 0) == (drift_after > 0) and drift_before and drift_after:
            # The same sign a settle apart: not a push in flight but a lasting difference.
            result.corrected = min(drift_before, drift_after, key=abs)
            await self._change_usage(namespace, -result.corrected)
        result.used = await self.used(namespace)
        if result.added or result.returned or result.corrected:
            log.info(
                "quota: namespace %s: %d bytes counted, %d bytes given back, usage corrected "
                "by %d; %d in use",
                namespace.pattern,
                result.added,
                result.returned,
                -result.corrected,
                result.used,
            )
        return result

    async def _drift(self, namespace: Namespace) -> int:
        """How much the usage holds beyond the sizes of its markers (negative: less). Zero
        at rest; a push between its reservation and its marker (or a give-back between its
        marker delete and its usage change) shows for as long as it runs; a reservation whose
        marker was never written (a process killed between the two) shows for good."""
        used = await self.used(namespace)  # first: a push counted after this adds to neither

        async def size(key: str) -> int:
            try:
                data, _ = await self.storage.get_bytes(key)
            except NotFound:
                return 0
            return _size_of_marker(data)

        total = 0
        for kind in (BLOBS, MANIFESTS):
            for algorithm in SUPPORTED_ALGORITHMS:
                prefix = layout.namespace_charged_prefix(namespace.key, kind, algorithm)
                async for keys in self.storage.scan(prefix):
                    total += sum(await map_bounded(size, keys))
        return used - total

    async def _linked(
        self, namespaces: Namespaces, namespace: Namespace
    ) -> dict[str, dict[Digest, str]]:
        """The digests linked (blobs) and stored (manifests) in the namespace's repositories,
        each with one repository holding it."""
        names = [
            name
            async for key in keys_under(self.storage, layout.CATALOG_PREFIX)
            if (ns := namespaces.of(name := layout.name_of_catalog_entry(key))) is not None
            and ns.key == namespace.key
        ]
        found: dict[str, dict[Digest, str]] = {BLOBS: {}, MANIFESTS: {}}

        async def walk(name: str) -> None:
            async for digest in link_digests(self.storage, name):
                found[BLOBS].setdefault(digest, name)
            for digest in await manifest_digests(self.storage, name):
                found[MANIFESTS].setdefault(digest, name)

        await map_bounded(walk, names, REPOSITORIES_AT_ONCE)
        return found

    async def _charged(self, namespace: Namespace, kind: str) -> AsyncIterator[Digest]:
        for algorithm in SUPPORTED_ALGORITHMS:
            prefix = layout.namespace_charged_prefix(namespace.key, kind, algorithm)
            async for key in keys_under(self.storage, prefix):
                yield Digest(algorithm, key[len(prefix) :])

    async def _add_marker(
        self, namespace: Namespace, kind: str, digest: Digest, repository: str
    ) -> int:
        try:
            if kind == BLOBS:
                size = (await self.storage.stat(layout.blob(digest))).size
            else:
                stored, _ = await self.storage.get_bytes(layout.manifest(repository, digest))
                size = len(encode_record(*decode_record(stored)))
        except NotFound:
            return 0  # gone since the walk
        key = layout.namespace_charged(namespace.key, kind, digest)
        if not await self.storage.put_if_absent(key, _marker(size)):
            return 0  # a push (or another reconciliation) counted it
        await self._change_usage(namespace, size)
        return size

    async def _drop_marker(
        self, namespace: Namespace, kind: str, digest: Digest, written_before: float
    ) -> int:
        key = layout.namespace_charged(namespace.key, kind, digest)
        try:
            # The version first, then the age: a touch between the two shows in the age, a
            # touch after both makes the conditional delete fail.
            data, version = await self.storage.get_bytes(key)
            if (await self.storage.stat(key)).modified >= written_before:
                return 0  # may belong to a push in flight
        except NotFound:
            return 0
        if not await self.storage.delete_if_version(key, version):
            return 0  # touched meanwhile
        size = _size_of_marker(data)
        await self._change_usage(namespace, -size)
        return size

    async def reconcile_all(self, namespaces: Namespaces, settle: float) -> list[Reconciled]:
        """Reconcile every namespace that has a quota, together (each waits a settle), after
        a garbage collection, whose work stands even if a reconciliation fails: the next one
        does it."""

        async def reconcile(namespace: Namespace) -> Reconciled | None:
            try:
                return await self.reconcile(namespaces, namespace, settle)
            except (StorageError, RegistryError) as exc:
                log.warning("quota: could not reconcile namespace %s: %s", namespace.pattern, exc)
                return None

        with_quota = [namespace for namespace in namespaces if namespace.config.quota is not None]
        done = await map_bounded(reconcile, with_quota, NAMESPACES_AT_ONCE)
        return [result for result in done if result is not None]

    async def reconcile_of(
        self, namespaces: Namespaces, repository: str, settle: float
    ) -> Reconciled | None:
        """Reconcile the namespace of `repository`, if it has a quota (after a repository
        delete)."""
        namespace = namespaces.of(repository)
        if namespace is None or namespace.config.quota is None:
            return None
        return await self.reconcile(namespaces, namespace, settle)
