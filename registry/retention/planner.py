"""The retention plan over the whole catalog, and its application.

The plan walks the catalog (Storage.scan: no order, a batch at a time) and, for each
repository whose namespace has tag rules, reads every tag (its digest and version, then its
modification time: the push time) and, when `keep_pulled_days` is on, the pull record of each
digest the tags name (its modification time: the last pull, see pulls.py). decision.decide
says which tags go; the indexes that the kept tags name are read (and their child indexes,
recursively) until the decision no longer depends on an unread one.

Applying the plan removes each tag only if it is still the one planned: a delete conditional
on the version read for the plan (ManifestStore.untag_if_unchanged), so a tag moved to another
digest meanwhile stays, and only if its modification time is still the planned push time, so
a tag pushed again with the same digest (same content, same version) stays too, short of a
push landing between that last look and the delete. The manifests retention untags are left
to garbage collection (`untagged_days`, `gc.untagged`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from registry.concurrency import map_bounded
from registry.digest import Digest, InvalidDigest
from registry.gc.reachability import Unparseable, keys_under, read_node
from registry.manifest_store import ManifestStore, TagState
from registry.namespaces import Namespace, Namespaces
from registry.retention.decision import TagInfo, decide, has_tag_rules, reachable_unknown
from registry.storage import layout
from registry.storage.protocol import NotFound, Storage

log = logging.getLogger("registry.retention")
REPOSITORIES_AT_ONCE = 4
CALLS_AT_ONCE = 16  # per repository


@dataclass(frozen=True, slots=True)
class PlannedRemoval:
    repository: str
    tag: str
    digest: Digest
    pushed: float
    pulled: float | None
    reason: str
    version: str  # the tag object's version when planned


@dataclass(slots=True)
class Plan:
    removals: list[PlannedRemoval] = field(default_factory=list)
    repositories: int = 0  # examined: governed by a namespace with tag rules
    tags_examined: int = 0
    skipped: list[str] = field(default_factory=list)  # repositories left alone, and why


@dataclass(frozen=True, slots=True)
class _Tag:
    info: TagInfo
    version: str


async def plan(storage: Storage, namespaces: Namespaces, now: float | None = None) -> Plan:
    """Every tag retention would remove now (by `now`, the storage's clock if given)."""
    now = time.time() if now is None else now
    result = Plan()
    if not any(has_tag_rules(n.config.retention) for n in namespaces):
        return result  # nothing to decide: not even the catalog is read
    names: list[tuple[str, Namespace]] = []
    async for key in keys_under(storage, layout.CATALOG_PREFIX):
        name = layout.name_of_catalog_entry(key)
        namespace = namespaces.of(name)
        if namespace is not None and has_tag_rules(namespace.config.retention):
            names.append((name, namespace))
    names.sort()
    result.repositories = len(names)

    async def one(item: tuple[str, Namespace]) -> list[PlannedRemoval]:
        name, namespace = item
        try:
            return await _plan_repository(storage, name, namespace, now, result)
        except Unparseable as exc:
            log.warning("retention: nothing in %s is removed: %s", name, exc)
            result.skipped.append(f"{name}: {exc}")
            return []

    for removals in await map_bounded(one, names, REPOSITORIES_AT_ONCE):
        result.removals += removals
    return result


async def _plan_repository(
    storage: Storage, name: str, namespace: Namespace, now: float, result: Plan
) -> list[PlannedRemoval]:
    prefix = layout.tags_prefix(name)
    keys = [key async for key in keys_under(storage, prefix)]

    async def read(key: str) -> _Tag | None:
        return await _read_tag(storage, key[len(prefix) :], key)

    tags = [t for t in await map_bounded(read, keys, CALLS_AT_ONCE) if t is not None]
    result.tags_examined += len(tags)
    retention = namespace.config.retention
    if retention is not None and retention.keep_pulled_days:
        pulls = await _pull_times(storage, name, {t.info.digest for t in tags})
        tags = [_Tag(replace(t.info, pulled=pulls.get(t.info.digest)), t.version) for t in tags]
    infos = [t.info for t in tags]
    children: dict[Digest, tuple[Digest, ...]] = {}
    while True:
        removals = decide(infos, namespace, now, children)
        unknown = sorted(reachable_unknown(infos, removals, children), key=str) if removals else []
        if not unknown:
            break

        async def node(digest: Digest) -> tuple[Digest, ...]:
            found = await read_node(storage, name, digest)
            return found.children if found is not None else ()

        named = await map_bounded(node, unknown, CALLS_AT_ONCE)
        children.update(zip(unknown, named, strict=True))
    versions = {t.info.name: t.version for t in tags}
    return [
        PlannedRemoval(name, t.name, t.digest, t.pushed, t.pulled, r.reason, versions[t.name])
        for r in removals
        for t in [r.tag]
    ]


async def _read_tag(storage: Storage, tag: str, key: str) -> _Tag | None:
    """The tag's digest and version, then its modification time (read after the content: a
    push in between makes it look newer, never older). None: gone, or not a digest (left
    alone)."""
    try:
        data, version = await storage.get_bytes(key)
        info = await storage.stat(key)
        digest = Digest.parse(data.decode())
    except (NotFound, InvalidDigest, UnicodeDecodeError):
        return None
    return _Tag(TagInfo(tag, digest, info.modified), version)


async def _pull_times(storage: Storage, name: str, digests: set[Digest]) -> dict[Digest, float]:
    ordered = sorted(digests, key=str)

    async def pulled(digest: Digest) -> float | None:
        try:
            return (await storage.stat(layout.pulled(name, digest))).modified
        except NotFound:
            return None

    times = await map_bounded(pulled, ordered, CALLS_AT_ONCE)
    return {d: t for d, t in zip(ordered, times, strict=True) if t is not None}


Applied = Callable[[PlannedRemoval, bool], None]


def _ignore(removal: PlannedRemoval, removed: bool) -> None:
    pass


async def apply(
    storage: Storage, removals: list[PlannedRemoval], report: Applied = _ignore
) -> list[PlannedRemoval]:
    """Remove the planned tags that are still as planned; the ones removed, in plan order.
    `report` hears of each as it is decided (removed or not)."""
    store = ManifestStore(storage)

    async def remove(removal: PlannedRemoval) -> bool:
        removed = await _remove_if_unchanged(storage, store, removal)
        report(removal, removed)
        return removed

    outcomes = await map_bounded(remove, removals, CALLS_AT_ONCE)
    return [r for r, removed in zip(removals, outcomes, strict=True) if removed]


async def _remove_if_unchanged(
    storage: Storage, store: ManifestStore, removal: PlannedRemoval
) -> bool:
    key = layout.tag(removal.repository, removal.tag)
    try:
        if (await storage.stat(key)).modified != removal.pushed:
            return False  # set again since the plan (perhaps to the same digest): fresh
    except NotFound:
        return False
    state = TagState(removal.digest, removal.version)
    return await store.untag_if_unchanged(removal.repository, removal.tag, state)
