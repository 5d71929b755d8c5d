"""Deleting a whole repository (`registry repo delete`): its tags, its manifests with their
reverse tag entries and referrer entries, its blob links and pull records, then (after
gc.settle, as garbage collection does it) its catalog marker, so it is gone from the catalog.
Blobs stay: garbage collection reclaims the ones nothing links.

Tags and manifests go through `ManifestStore` (untag, delete by digest), so a push running
meanwhile stays consistent: it may win, and no tag ever names a missing manifest. Keys are
paged through (flat prefixes, one digest algorithm at a time), so a huge repository never has
all its keys in memory.

A repository with immutable tags (its namespace's `immutable_tags`) is refused with DENIED
unless `force`; without it, an immutable tag a push sets meanwhile is not removed either (the
delete stops there with DENIED).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from registry.concurrency import map_bounded
from registry.digest import SUPPORTED_ALGORITHMS, Digest
from registry.errors import ErrorCode, RegistryError
from registry.gc.marks import link_mark, unmark_empty
from registry.maintenance import READ_ONLY_MESSAGE
from registry.manifest_store import Immutability
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import NotFound, PreconditionFailed, Storage, exists

PAGE_SIZE = 1000
T = TypeVar("T")
# What `report` is told about each item removed (or, in a dry run, that would be).
TAG, MANIFEST, BLOB_LINK = "tag", "manifest", "blob link"
Report = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class RepositoryDeletion:
    name: str
    dry_run: bool
    tags: int
    manifests: int
    blob_links: int
    # A push ran during the delete and wrote tags or manifests that stay: so does the
    # repository's catalog marker.
    pushed_meanwhile: bool


def _ignore(kind: str, item: str) -> None:
    pass


async def delete_repository(
    registry: Registry,
    name: str,
    *,
    settle: float,
    dry_run: bool = False,
    force: bool = False,
    report: Report = _ignore,
) -> RepositoryDeletion:
    """Delete repository `name` (NAME_UNKNOWN if it is not in the catalog; UNSUPPORTED in
    read-only mode; DENIED if it has immutable tags, unless `force`), or with `dry_run` only
    count and report what would go. Its catalog marker goes `settle` seconds after the rest
    (gc.settle; see _remove_catalog_entry)."""
    storage, store = registry.storage, registry.manifest_store
    if not await exists(storage, layout.catalog_entry(name)):
        raise RegistryError(ErrorCode.NAME_UNKNOWN, detail={"name": name})
    if not dry_run:
        await registry.maintenance.read_flag()  # now, not as last polled
        if registry.read_only:
            raise RegistryError(ErrorCode.UNSUPPORTED, READ_ONLY_MESSAGE)
    immutability = None if force else registry.immutability(name)
    if immutability is not None:
        await _refuse_if_immutable_tags(storage, name, immutability)

    async def untag(tag: str) -> bool:
        immutable = immutability(tag) if immutability is not None else None
        return dry_run or await store.untag(name, tag, immutable=immutable)

    async def delete_manifest(digest: Digest) -> bool:
        return dry_run or await store.delete(name, digest, immutable=immutability)

    async def unlink(digest: Digest) -> bool:
        return dry_run or await storage.delete(layout.blob_link(name, digest))

    tags = await _each(storage, layout.tags_prefix(name), str, untag, TAG, report)
    manifests = blob_links = 0
    for algorithm in SUPPORTED_ALGORITHMS:
        prefix, parse = layout.manifests_prefix(name, algorithm), _digest(algorithm)
        manifests += await _each(storage, prefix, parse, delete_manifest, MANIFEST, report)
    for algorithm in SUPPORTED_ALGORITHMS:
        prefix, parse = layout.blob_links_prefix(name, algorithm), _digest(algorithm)
        blob_links += await _each(storage, prefix, parse, unlink, BLOB_LINK, report)

    pushed_meanwhile = False
    if not dry_run:
        for algorithm in SUPPORTED_ALGORITHMS:  # pull records (retention), not reported
            async for keys in _pages(storage, layout.pulled_prefix(name, algorithm)):
                await map_bounded(storage.delete, keys)
        pushed_meanwhile = not await _remove_catalog_entry(storage, name, settle)
        # Its namespace's quota gets the bytes back (registry/quota.py).
        await registry.quotas.reconcile_of(registry.namespaces, name, settle)
    return RepositoryDeletion(name, dry_run, tags, manifests, blob_links, pushed_meanwhile)


async def _refuse_if_immutable_tags(
    storage: Storage, name: str, immutability: Immutability
) -> None:
    """DENIED, naming how many and one of them, if the repository has immutable tags."""
    prefix = layout.tags_prefix(name)
    count, example = 0, None
    async for keys in _pages(storage, prefix):
        for tag in (key[len(prefix) :] for key in keys):
            if (immutable := immutability(tag)) is not None:
                count += 1
                example = example or (tag, immutable)
    if example is not None:
        tag, immutable = example
        some = f"{count} immutable tags, e.g." if count > 1 else "1 immutable tag,"
        message = (
            f"repository {name} has {some} {tag} ({immutable.source}); nothing was deleted"
            f" (--force deletes {'them' if count > 1 else 'it'} too)"
        )
        detail = {"name": name, "immutable_tags": count, "example": tag}
        raise RegistryError(ErrorCode.DENIED, message, {**detail, "rule": immutable.rule})


async def _remove_catalog_entry(storage: Storage, name: str, settle: float) -> bool:
    """Remove the repository's catalog marker the way garbage collection does (registry/gc/):
    mark it, wait out `settle` (replicas trust a marker they saw for less than that), and
    delete it only if nothing was pushed meanwhile and the mark is still ours. False if a
    push came first (the marker stays, unmarked)."""
    key = layout.catalog_entry(name)
    try:
        _, version = await storage.get_bytes(key)
        mark = await storage.compare_and_swap(key, link_mark("repo-delete"), version)
    except (NotFound, PreconditionFailed):
        return not await _has_content(storage, name)
    await anyio.sleep(settle)
    if await _has_content(storage, name):
        await unmark_empty(storage, key)
        return False
    if not await storage.delete_if_version(key, mark):
        return not await _has_content(storage, name)  # a push took the marker back
    return True


def _digest(algorithm: str) -> Callable[[str], Digest]:
    return lambda encoded: Digest(algorithm, encoded)


async def _each(
    storage: Storage,
    prefix: str,
    parse: Callable[[str], T],
    remove: Callable[[T], Awaitable[bool]],
    kind: str,
    report: Report,
) -> int:
    """Remove every item stored under prefix, a page at a time; how many went."""
    removed = 0
    async for keys in _pages(storage, prefix):
        items = [parse(key[len(prefix) :]) for key in keys]
        for item, gone in zip(items, await map_bounded(remove, items), strict=True):
            if gone:
                removed += 1
                report(kind, str(item))
    return removed


async def _pages(storage: Storage, prefix: str) -> AsyncIterator[list[str]]:
    start_after = None
    while True:
        keys = await storage.list(prefix, start_after, PAGE_SIZE)
        if keys:
            yield keys
        if len(keys) < PAGE_SIZE:
            return
        start_after = keys[-1]


async def _has_content(storage: Storage, name: str) -> bool:
    """Tags, manifests or blob links (what a push writes first)."""
    prefixes = [layout.tags_prefix(name)]
    prefixes += [layout.manifests_prefix(name, algorithm) for algorithm in SUPPORTED_ALGORITHMS]
    prefixes += [layout.blob_links_prefix(name, algorithm) for algorithm in SUPPORTED_ALGORITHMS]
    for prefix in prefixes:
        if await storage.list(prefix, None, 1):
            return True
    return False
