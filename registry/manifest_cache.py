"""Recently served manifests by repository and digest, bounded in bytes.

A manifest's content never changes under its digest, so a cached one is never wrong; whether
it still exists is another matter. The registry therefore uses the cache only after reading
a tag that points at the digest (the tag itself is always read from storage, so a moved tag
is never served stale, whichever replica moved it): that saves the storage read of the
manifest, which on S3 is half the cost of a GET by tag.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from registry.digest import Digest

DEFAULT_MAX_BYTES = 16 << 20

T = TypeVar("T")


class ManifestCache(Generic[T]):
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, Digest], tuple[T, int]] = OrderedDict()
        self._bytes = 0

    def get(self, repository: str, digest: Digest) -> T | None:
        entry = self._entries.get((repository, digest))
        if entry is None:
            return None
        self._entries.move_to_end((repository, digest))
        return entry[0]

    def put(self, repository: str, digest: Digest, value: T, size: int) -> None:
        if size > self.max_bytes:
            return
        self.discard(repository, digest)
        self._entries[(repository, digest)] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted

    def discard(self, repository: str, digest: Digest) -> None:
        entry = self._entries.pop((repository, digest), None)
        if entry is not None:
            self._bytes -= entry[1]
