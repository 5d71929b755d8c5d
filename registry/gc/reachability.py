"""What one repository keeps, and what in it a collection may delete.

Roots are the manifests tags name (every tag: referrer-fallback `sha256-<hex>` tags and
cosign's `.sig`/`.att`/`.sbom` tags are tags like any other) and, unless untagged manifests
are deleted, every untagged manifest; a manifest younger than `untagged_grace` is a root
either way. From the roots: index children (recursively), and the referrers of every kept
manifest (a manifest whose subject is kept is kept; with `delete_referrers` off, a referrer
is a root like any untagged manifest). A kept manifest keeps its config and layers. A link no
kept manifest names is a candidate once older than `blob_grace`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from registry import manifest as mf
from registry.concurrency import map_bounded
from registry.digest import SUPPORTED_ALGORITHMS, Digest
from registry.manifest_store import decode_record
from registry.storage import layout
from registry.storage.protocol import NotFound, Storage


@dataclass(frozen=True, slots=True)
class Rules:
    blob_grace: float
    delete_untagged: bool
    untagged_grace: float
    delete_referrers: bool


@dataclass(frozen=True, slots=True)
class Node:
    """What a stored manifest names."""

    children: tuple[Digest, ...]
    blobs: tuple[Digest, ...]
    subject: Digest | None


@dataclass(slots=True)
class Candidate:
    """A manifest or catalog marker the collection means to delete; `version` is the mark
    it wrote, once written."""

    node: Node | None = None  # manifests only
    version: str | None = None


@dataclass(slots=True)
class RepositoryMark:
    name: str
    manifests: set[bytes] = field(default_factory=set)  # every one listed, compact()
    manifest_candidates: dict[Digest, Candidate] = field(default_factory=dict)
    link_candidates: dict[Digest, str | None] = field(default_factory=dict)  # mark's version
    removable: bool = False  # nothing in it is kept: its catalog marker may go too
    marker: Candidate | None = None


async def keys_under(storage: Storage, prefix: str) -> AsyncIterator[str]:
    """Every key below prefix, in no order, a batch in memory at a time (Storage.scan)."""
    async for batch in storage.scan(prefix):
        for key in batch:
            yield key


async def digests(storage: Storage, prefix: str, algorithm: str) -> AsyncIterator[Digest]:
    """The digests named by the keys below prefix (interned: a digest held as a link candidate
    and as a blob candidate is held once)."""
    async for key in keys_under(storage, prefix):
        yield Digest(algorithm, sys.intern(key[len(prefix) :]))


async def manifest_digests(storage: Storage, name: str) -> list[Digest]:
    found: list[Digest] = []
    for algorithm in SUPPORTED_ALGORITHMS:
        found += [
            d async for d in digests(storage, layout.manifests_prefix(name, algorithm), algorithm)
        ]
    return found


async def link_digests(storage: Storage, name: str) -> AsyncIterator[Digest]:
    for algorithm in SUPPORTED_ALGORITHMS:
        async for digest in digests(storage, layout.blob_links_prefix(name, algorithm), algorithm):
            yield digest


async def tag_targets(storage: Storage, name: str) -> set[Digest] | None:
    """The digests the repository's tags name; None if it has no tags at all."""
    prefix = layout.tags_prefix(name)
    keys = [key async for key in keys_under(storage, prefix)]
    if not keys:
        return None

    async def target(key: str) -> Digest | None:
        try:
            data, _ = await storage.get_bytes(key)
            return Digest.parse(data.decode())
        except (NotFound, ValueError):
            return None

    return {d for d in await map_bounded(target, keys) if d is not None}


class Unparseable(Exception):
    """A stored manifest we cannot read the references of: nothing in its repository may go."""


async def read_node(storage: Storage, name: str, digest: Digest) -> Node | None:
    """What the stored manifest names; None if it is gone. Raises Unparseable."""
    try:
        stored, _ = await storage.get_bytes(layout.manifest(name, digest))
    except NotFound:
        return None
    media_type, body = decode_record(stored)
    try:
        parsed = mf.parse_manifest(body, media_type)
    except mf.ManifestInvalid as exc:
        raise Unparseable(f"{name}@{digest}: {exc}") from None
    return Node(
        tuple(_interned(d.digest) for d in parsed.manifests),
        tuple(_interned(d.digest) for d in parsed.blobs),
        parsed.subject,
    )


def _interned(digest: Digest) -> Digest:
    return Digest(digest.algorithm, sys.intern(digest.encoded))


def compact(digest: Digest) -> bytes:
    """A digest in 32 or 64 bytes: the supported algorithms (sha256, sha512) differ in length."""
    return bytes.fromhex(digest.encoded)


def closure(
    roots: Iterable[Digest], nodes: dict[Digest, Node], referrers: dict[Digest, list[Digest]]
) -> set[Digest]:
    """The manifests kept from roots: their index children and their referrers, recursively."""
    kept: set[Digest] = set()
    work = [d for d in roots if d in nodes]
    while work:
        digest = work.pop()
        if digest in kept:
            continue
        kept.add(digest)
        node = nodes[digest]
        work += [child for child in node.children if child in nodes and child not in kept]
        work += [r for r in referrers.get(digest, ()) if r not in kept]
    return kept


class RepositoryMarker:
    """Marks one repository: what it keeps (added to the collection's kept blobs) and what
    may go."""

    def __init__(self, storage: Storage, rules: Rules, now: float) -> None:
        self.storage = storage
        self.rules = rules
        self.now = now  # the storage's clock, for ages

    async def _older_than(self, key: str, grace: float) -> bool:
        return grace <= 0 or await self._age(key) >= grace

    async def _age(self, key: str) -> float:
        try:
            return self.now - (await self.storage.stat(key)).modified
        except NotFound:
            return 0.0

    async def mark(
        self, name: str, keep_blob: Callable[[Digest], None], rules: Rules | None = None
    ) -> RepositoryMark:
        """`rules`: this repository's, when they differ from the collection's (a namespace's
        `retention.untagged_days`)."""
        rules = rules or self.rules
        result = RepositoryMark(name)
        tagged = await tag_targets(self.storage, name)
        listed = await manifest_digests(self.storage, name)
        result.manifests = {compact(d) for d in listed}

        async def read(digest: Digest) -> Node | None:
            return await read_node(self.storage, name, digest)

        try:
            read_nodes = await map_bounded(read, listed)
        except Unparseable:
            async for digest in link_digests(self.storage, name):
                keep_blob(digest)
            raise
        nodes = {d: n for d, n in zip(listed, read_nodes, strict=True) if n is not None}
        referrers: dict[Digest, list[Digest]] = {}
        for digest, node in nodes.items():
            if node.subject is not None:
                referrers.setdefault(node.subject, []).append(digest)
        roots = await self._roots(name, nodes, tagged or set(), rules)
        kept = closure(roots, nodes, referrers)
        for digest in kept:
            for blob in nodes[digest].blobs:
                keep_blob(blob)
        result.manifest_candidates = {
            d: Candidate(node=n) for d, n in nodes.items() if d not in kept
        }
        kept_blobs = {blob for d in kept for blob in nodes[d].blobs}
        links = [d async for d in link_digests(self.storage, name)]
        unreferenced = [d for d in links if d not in kept_blobs]

        async def old(digest: Digest) -> bool:
            return await self._older_than(layout.blob_link(name, digest), rules.blob_grace)

        for digest, is_old in zip(unreferenced, await map_bounded(old, unreferenced), strict=True):
            if is_old:
                result.link_candidates[digest] = None
            else:
                keep_blob(digest)
        for digest in kept_blobs:
            keep_blob(digest)
        result.removable = (
            tagged is None
            and len(result.manifest_candidates) == len(listed)
            and len(result.link_candidates) == len(links)
        )
        return result

    async def _roots(
        self, name: str, nodes: dict[Digest, Node], tagged: set[Digest], rules: Rules
    ) -> set[Digest]:
        roots = set(tagged)
        maybe_young: list[Digest] = []
        for digest, node in nodes.items():
            if digest in tagged:
                continue
            is_referrer = node.subject is not None and rules.delete_referrers
            if rules.delete_untagged or is_referrer:
                maybe_young.append(digest)  # goes only once old enough
            else:
                roots.add(digest)

        async def young(digest: Digest) -> bool:
            key = layout.manifest(name, digest)
            return not await self._older_than(key, rules.untagged_grace)

        for digest, is_young in zip(
            maybe_young, await map_bounded(young, maybe_young), strict=True
        ):
            if is_young:
                roots.add(digest)
        return roots
