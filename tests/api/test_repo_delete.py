"""`registry repo delete NAME [--dry-run]` against a running registry's storage, on the
filesystem and on S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.commands import config_file, registry_command
from testkit.oci import digest_of, error_codes, image_manifest, put_manifest
from testkit.registry import Backend, RunningRegistry, run_registry

GONE, KEPT = "team/gone", "team/kept"
SHARED_LAYER = b"a layer both repositories hold"


def push_image(c: httpx.Client, repo: str, n: int, *tags: str) -> bytes:
    """An image with a layer of its own and the shared one, under each tag, and a signature
    of it (a referrer) under no tag."""
    manifest = image_manifest(c, repo, [f"own layer {repo}".encode(), SHARED_LAYER], n=n)
    for tag in tags:
        assert put_manifest(c, repo, tag, manifest).status_code == 201
    signature = image_manifest(
        c,
        repo,
        [b"signature " + repo.encode()],
        n=n + 100,
        subject={
            "mediaType": json.loads(manifest)["mediaType"],
            "digest": digest_of(manifest),
            "size": len(manifest),
        },
    )
    assert put_manifest(c, repo, digest_of(signature), signature).status_code == 201
    return manifest


def pulls_completely(c: httpx.Client, repo: str, tag: str, manifest: bytes) -> None:
    got = c.get(f"/v2/{repo}/manifests/{tag}")
    assert got.status_code == 200 and got.content == manifest
    document = json.loads(manifest)
    for descriptor in [document["config"], *document["layers"]]:
        blob = c.get(f"/v2/{repo}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200 and digest_of(blob.content) == descriptor["digest"]


def catalog(c: httpx.Client) -> list[str]:
    repositories: list[str] = c.get("/v2/_catalog").json()["repositories"]
    return repositories


@pytest.fixture
def fresh_registry(tmp_path: Path, backend: Backend) -> Iterator[RunningRegistry]:
    """A registry of its own that trusts a catalog entry it saw for a third of a second (a
    third of its gc.settle), as the operator configuration (config_file) expects."""
    with run_registry(tmp_path, {"REGISTRY_GC_SETTLE": "1s"}, backend=backend) as server:
        yield server


def test_repo_delete_removes_one_repository_and_leaves_the_other_whole(
    fresh_registry: RunningRegistry,
) -> None:
    config = config_file(fresh_registry)
    with httpx.Client(base_url=fresh_registry.url, timeout=60) as c:
        gone = push_image(c, GONE, 1, "v1", "latest")
        kept = push_image(c, KEPT, 2, "v1")
        everything = fresh_registry.stored_keys()

        dry = registry_command("repo", "delete", GONE, "--dry-run", "--json", config=config)
        assert dry.returncode == 0, dry.stderr
        would = json.loads(dry.stdout)
        assert (would["tags"], would["manifests"], would["blob_links"]) == (2, 2, 5)
        assert sorted(would["items"]["tags"]) == ["latest", "v1"]
        assert digest_of(gone) in would["items"]["manifests"]
        assert fresh_registry.stored_keys() == everything

        deleted = registry_command("repo", "delete", GONE, config=config)
        assert deleted.returncode == 0, deleted.stderr
        assert deleted.stdout == (
            f"{GONE}: removed 2 tags, 2 manifests, 5 blob links; its blobs stay until garbage"
            " collection\n"
        )
        assert catalog(c) == [KEPT]
        tags = c.get(f"/v2/{GONE}/tags/list")
        assert tags.status_code == 404 and error_codes(tags) == ["NAME_UNKNOWN"]
        for reference in ("v1", digest_of(gone)):
            assert c.get(f"/v2/{GONE}/manifests/{reference}").status_code == 404
        shared = digest_of(SHARED_LAYER)
        assert c.head(f"/v2/{GONE}/blobs/{shared}").status_code == 404
        assert fresh_registry.stored_keys(f"repositories/{GONE}/") == []
        assert fresh_registry.stored_keys("blobs/") == [
            k for k in everything if k.startswith("blobs/")
        ]

        pulls_completely(c, KEPT, "v1", kept)
        assert c.get(f"/v2/{KEPT}/tags/list").json()["tags"] == ["v1"]
        assert len(c.get(f"/v2/{KEPT}/referrers/{digest_of(kept)}").json()["manifests"]) == 1

        # Pushed again through the same server (which had the repository cached as known),
        # it is back in the catalog.
        again = push_image(c, GONE, 3, "v2")
        assert catalog(c) == [GONE, KEPT]
        assert c.get(f"/v2/{GONE}/tags/list").json()["tags"] == ["v2"]
        pulls_completely(c, GONE, "v2", again)


def test_repo_delete_of_an_unknown_repository_fails_and_read_only_mode_refuses_it(
    fresh_registry: RunningRegistry,
) -> None:
    config = config_file(fresh_registry)
    unknown = registry_command("repo", "delete", "no/such", "--json", config=config)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == "registry: NAME_UNKNOWN: no repository no/such in the catalog\n"
    with httpx.Client(base_url=fresh_registry.url, timeout=60) as c:
        manifest = push_image(c, GONE, 1, "v1")
    assert registry_command("maintenance", "on", config=config).returncode == 0
    try:
        refused = registry_command("repo", "delete", GONE, config=config)
        assert refused.returncode == 1
        assert refused.stderr == "registry: UNSUPPORTED: registry is in read-only mode\n"
        dry = registry_command("repo", "delete", GONE, "--dry-run", config=config)
        assert dry.returncode == 0 and "would remove tag v1\n" in dry.stdout
    finally:
        assert registry_command("maintenance", "off", config=config).returncode == 0
    with httpx.Client(base_url=fresh_registry.url, timeout=60) as c:
        pulls_completely(c, GONE, "v1", manifest)
