"""What a collector leaves on an object it means to delete, and how a writer takes it back.

Links and catalog markers are empty objects; one a collector means to delete holds
`~gc <run> <nonce>` instead. Manifest records get the `~deleting <nonce>` line that a delete by
digest uses (manifest_store.py). Either way readers see the object as present, a writer that
touches it writes it back unmarked (compare-and-swap, so a deletion that won first stays won),
and the collector deletes it only if it still holds the very mark it wrote (delete-if-version).

Global blobs cannot be marked in place, and S3 gives rewritten identical bytes the same
version, so a blob the collector means to delete gets a tombstone object instead, moved with
compare-and-swap: `pending <run>` (written by the collector), `rescued` (a writer took it
back), `deleting <run>` (the collector won: the blob goes, then the tombstone). An upload of
that digest waits out a deletion under way before it stores the blob, and rescues a pending
one after; see registry/gc/__init__.py for why these are the places that need it.
"""

from __future__ import annotations

import json
import time
import uuid

import anyio

from registry.digest import Digest
from registry.errors import ErrorCode, RegistryError
from registry.storage import layout
from registry.storage.protocol import NotFound, PreconditionFailed, Storage

GC_MARK = b"~gc "
PENDING = b"pending "
RESCUED = b"rescued"
DELETING = b"deleting "
# Compare-and-swap rounds lost in a row before giving up (each means another writer won).
MAX_ATTEMPTS = 20
# How long a write waits for a deletion under way to finish; a collector deletes a blob
# right after it wins it, so only a collector that died keeps a writer waiting this long.
DELETION_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.02


def link_mark(run: str) -> bytes:
    """The content of a link or catalog marker a collector means to delete."""
    return GC_MARK + run.encode() + b" " + uuid.uuid4().hex.encode()


def pending(run: str) -> bytes:
    return PENDING + run.encode()


def deleting(run: str) -> bytes:
    return DELETING + run.encode()


def _contention(what: str) -> RegistryError:
    return RegistryError(ErrorCode.UNAVAILABLE, f"{what} kept changing under us; try again")


async def unmark_empty(storage: Storage, key: str) -> bool:
    """Take back a link or catalog marker a collector marked: make it empty again. False if it
    is gone (the collector deleted it first)."""
    for _ in range(MAX_ATTEMPTS):
        try:
            data, version = await storage.get_bytes(key)
        except NotFound:
            return False
        if not data:
            return True
        try:
            await storage.compare_and_swap(key, b"", version)
            return True
        except PreconditionFailed:
            continue
    raise _contention(key)


class BlobTombstones:
    """The writers' side of blob tombstones."""

    def __init__(self, storage: Storage, wait_seconds: float = DELETION_WAIT_SECONDS) -> None:
        self.storage = storage
        self.wait_seconds = wait_seconds

    async def rescue(self, digest: Digest) -> bool:
        """Make sure no collector deletes the blob from now on: take back a pending deletion,
        wait out one under way. True if one was under way (the blob may be gone now)."""
        key = layout.blob_tombstone(digest)
        waited = False
        deadline = time.monotonic() + self.wait_seconds
        for _ in range(MAX_ATTEMPTS):
            try:
                state, version = await self.storage.get_bytes(key)
            except NotFound:
                return waited
            if state.startswith(PENDING):
                try:
                    await self.storage.compare_and_swap(key, RESCUED, version)
                    return waited
                except PreconditionFailed:
                    continue
            if not state.startswith(DELETING):
                return waited  # rescued already
            waited = True
            if time.monotonic() >= deadline:
                await self._finish_abandoned(digest, state, version)
                deadline = time.monotonic() + self.wait_seconds
                continue
            await _wait_until_changed(self.storage, key, version, deadline)
        raise _contention(f"the tombstone of {digest}")

    async def _finish_abandoned(self, digest: Digest, state: bytes, version: str) -> None:
        """A deletion still under way after the wait: finish it for its collector if that
        collector is gone (its lease expired or another run holds it); else give up."""
        run = state[len(DELETING) :].decode(errors="replace")
        if await lease_is_live(self.storage, run):
            raise RegistryError(
                ErrorCode.UNAVAILABLE,
                f"garbage collection is deleting blob {digest}; try again shortly",
            )
        await self.storage.delete(layout.blob(digest))
        await self.storage.delete_if_version(layout.blob_tombstone(digest), version)


async def _wait_until_changed(storage: Storage, key: str, version: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        await anyio.sleep(_POLL_SECONDS)
        try:
            _, now = await storage.get_bytes(key)
        except NotFound:
            return
        if now != version:
            return


async def lease_is_live(storage: Storage, run: str) -> bool:
    """Whether the collector `run` still holds the lease (by its own clock, with a margin)."""
    try:
        data, _ = await storage.get_bytes(layout.GC_LEASE)
        lease = json.loads(data)
        return bool(lease["run"] == run and float(lease["expires"]) > time.time())
    except NotFound:
        return False
    except (ValueError, KeyError, TypeError):
        return True  # unreadable: assume the worst, someone may be collecting
