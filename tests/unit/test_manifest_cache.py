"""The manifest cache: bounded in bytes, least recently used first out, exact keys."""

from __future__ import annotations

from registry.digest import Digest
from registry.manifest_cache import ManifestCache


def digest(n: int) -> Digest:
    return Digest("sha256", f"{n:064x}")


def test_entries_are_kept_per_repository_and_digest() -> None:
    cache: ManifestCache[str] = ManifestCache(max_bytes=100)
    cache.put("a", digest(1), "a1", 10)
    assert cache.get("a", digest(1)) == "a1"
    assert cache.get("b", digest(1)) is None
    assert cache.get("a", digest(2)) is None
    cache.discard("a", digest(1))
    assert cache.get("a", digest(1)) is None


def test_the_least_recently_used_go_first_when_the_bytes_run_out() -> None:
    cache: ManifestCache[str] = ManifestCache(max_bytes=100)
    for n in range(4):
        cache.put("r", digest(n), f"m{n}", 30)  # 120 bytes: the oldest goes
    assert cache.get("r", digest(0)) is None
    assert cache.get("r", digest(1)) == "m1"  # now the most recently used
    cache.put("r", digest(9), "m9", 30)
    assert cache.get("r", digest(2)) is None
    assert [cache.get("r", digest(n)) for n in (1, 3, 9)] == ["m1", "m3", "m9"]


def test_a_manifest_larger_than_the_cache_is_not_kept() -> None:
    cache: ManifestCache[str] = ManifestCache(max_bytes=100)
    cache.put("r", digest(1), "small", 60)
    cache.put("r", digest(2), "huge", 101)
    assert cache.get("r", digest(2)) is None
    assert cache.get("r", digest(1)) == "small"
