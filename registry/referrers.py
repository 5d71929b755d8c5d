"""The referrers of a subject, one page at a time under a byte budget.

A referrer's entry is its descriptor as JSON, and annotations can make one megabytes long, so
a page holds descriptors until their bytes reach the budget (a single larger descriptor still
gets a page of its own). The entries are listed a batch of keys at a time and their sizes read
before their content, and only what still fits is read: a request holds at most about the
budget in descriptors, however many referrers a subject has and however large they are (with
an artifactType filter, the ones that do not match are read and dropped, and a full page
links to a next one only if a match follows). A page ends at a key; the next one starts after
it (`cursor`, that key's last segment, opaque to clients).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from registry import manifest as mf
from registry.concurrency import map_bounded
from registry.digest import Digest
from registry.storage import layout
from registry.storage.protocol import NotFound, Storage

DEFAULT_PAGE_BYTES = 1 << 20
LIST_BATCH = 100


@dataclass(frozen=True, slots=True)
class ReferrersPage:
    descriptors: list[bytes]  # each a JSON object, as stored
    cursor: str | None  # where the next page starts; None on the last page


def _matches(descriptor: bytes, artifact_type: str | None) -> bool:
    if artifact_type is None:
        return True
    parsed = json.loads(descriptor)
    return isinstance(parsed, dict) and parsed.get("artifactType") == artifact_type


async def referrers_page(
    storage: Storage,
    name: str,
    subject: Digest,
    artifact_type: str | None,
    cursor: str | None = None,
    page_bytes: int = DEFAULT_PAGE_BYTES,
) -> ReferrersPage:
    """Descriptors of the referrers of `subject` after `cursor` (of type `artifact_type` when
    given), at most `page_bytes` of them unless the first alone is larger."""
    prefix = layout.referrers_prefix(name, subject)
    start_after = prefix + cursor if cursor else None
    page: list[bytes] = []
    used = 0

    async def size_of(key: str) -> int | None:
        try:
            return (await storage.stat(key)).size
        except NotFound:  # deleted since it was listed
            return None

    async def content_of(key: str) -> bytes | None:
        try:
            data, _ = await storage.get_bytes(key)
        except NotFound:
            return None
        return data

    while True:
        keys = await storage.list(prefix, start_after, LIST_BATCH)
        if not keys:
            return ReferrersPage(page, None)
        sizes = await map_bounded(size_of, keys)
        chosen: list[str] = []
        consumed = start_after  # the last key this page has dealt with
        planned = used
        full = False
        for key, size in zip(keys, sizes, strict=True):
            if size is not None:  # else deleted since it was listed: skipped
                if (page or chosen) and planned + size > page_bytes:
                    full = True
                    break
                chosen.append(key)
                planned += size
            consumed = key
        for data in await map_bounded(content_of, chosen):
            if data is not None and _matches(data, artifact_type):
                page.append(data)
                used += len(data)
        start_after = consumed
        if full and page and consumed is not None:
            more = artifact_type is None or await _match_after(
                storage, prefix, consumed, artifact_type
            )
            return ReferrersPage(page, consumed[len(prefix) :] if more else None)
        if not full and len(keys) < LIST_BATCH:
            return ReferrersPage(page, None)


async def _match_after(storage: Storage, prefix: str, start_after: str, artifact_type: str) -> bool:
    """Whether a referrer of artifact_type follows start_after: a filtered page links to a
    next one only when that one has something (read one descriptor at a time)."""
    while keys := await storage.list(prefix, start_after, LIST_BATCH):
        for key in keys:
            try:
                data, _ = await storage.get_bytes(key)
            except NotFound:
                continue
            if _matches(data, artifact_type):
                return True
        if len(keys) < LIST_BATCH:
            return False
        start_after = keys[-1]
    return False


def referrer_entry(parsed: mf.Manifest, digest: Digest, size: int) -> bytes:
    """The stored entry (a descriptor, as JSON) of a manifest with a subject."""
    descriptor: dict[str, Any] = {
        "mediaType": parsed.media_type,
        "digest": str(digest),
        "size": size,
    }
    if parsed.artifact_type is not None:
        descriptor["artifactType"] = parsed.artifact_type
    if parsed.annotations:
        descriptor["annotations"] = parsed.annotations
    return json.dumps(descriptor).encode()
