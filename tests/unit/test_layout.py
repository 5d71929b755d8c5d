"""The storage key layout keeps repositories and internals apart."""

from __future__ import annotations

from registry.digest import Digest
from registry.reference import is_valid_name
from registry.storage import layout

D = Digest.of(b"x")


def test_keys_are_built_from_name_and_digest() -> None:
    assert layout.blob(D) == f"blobs/sha256/{D.encoded}"
    assert layout.blob_link("a/b", D) == f"repositories/a/b/_blobs/sha256/{D.encoded}"
    assert layout.manifest("a", D) == f"repositories/a/_manifests/sha256/{D.encoded}"
    assert layout.tag("a", "v1") == "repositories/a/_tags/v1"
    assert layout.referrer("a", D, D) == (
        f"repositories/a/_referrers/sha256-{D.encoded}/sha256-{D.encoded}"
    )
    assert layout.catalog_entry("a/b9") == "catalog/a0b:"


def test_reserved_segments_cannot_be_repository_names() -> None:
    for reserved in ("_blobs", "_manifests", "_tags", "_tagged", "_referrers"):
        assert not is_valid_name(f"a/{reserved}")


def test_tags_of_nested_repositories_do_not_mix() -> None:
    assert not layout.tag("a/b", "x").startswith(layout.tags_prefix("a"))


def test_upload_parts_sort_by_offset() -> None:
    keys = [layout.upload_part("u", offset, "n") for offset in (10, 2, 100)]
    assert sorted(keys) == [layout.upload_part("u", o, "n") for o in (2, 10, 100)]


def test_catalog_entries_are_flat_and_sort_like_the_names() -> None:
    names = [
        "a",
        "a-b",
        "a--b",
        "a.b",
        "a/b",
        "a/b/c",
        "a/b-c",
        "a/b.c",
        "a0",
        "a_b",
        "a__b",
        "b",
        "a/-",
        "ab/c",
        "a.b/c",
        "a-b/c",
        "z9/x",
        "a/a",
        "a0/b",
    ]
    names = [n for n in names if is_valid_name(n)]
    entries = [layout.catalog_entry(n) for n in names]
    assert all("/" not in e.removeprefix(layout.CATALOG_PREFIX) for e in entries)
    assert all(
        len(e) == len(layout.CATALOG_PREFIX + n) for e, n in zip(entries, names, strict=True)
    )
    assert sorted(entries) == [layout.catalog_entry(n) for n in sorted(names)]
    assert [layout.name_of_catalog_entry(e) for e in entries] == names
