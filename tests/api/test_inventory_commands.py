"""`registry namespaces` and `registry repo list` against a running registry's storage, on the
filesystem and on S3: text and `--json` (exactly one JSON document on stdout)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import yaml

from registry import wiring
from registry.config import load_config
from registry.namespaces import Namespaces
from registry.storage import layout
from testkit.commands import registry_command, storage_section
from testkit.oci import image_manifest, put_manifest
from testkit.registry import Backend, RunningRegistry, run_registry

NAMESPACES = [
    {
        "pattern": "team-a/**",
        "description": "Team A",
        "retention": {
            "keep_last": 3,
            "keep_days": 7,
            "keep_patterns": ["latest", "stable"],
            "untagged_days": 1,
        },
        "immutable_tags": ["v*"],
        "quota": "1GiB",
    },
    {"pattern": "open/**", "public": True},
    {"pattern": "empty/**", "retention": {"keep_pulled_days": 30}},
]
TAGS = {"team-a/app": ["latest", "v1"], "team-a/lib": ["v1"], "open/x": ["t1"]}
TAGS["other/y"] = ["t1", "t2", "t3"]
USED = 1536
TABLE = """\
PATTERN         REPOS  TAGS  USAGE/QUOTA        PUBLIC  RETENTION                                                                 IMMUTABLE  DESCRIPTION
team-a/**       2      3     1.5 KiB / 1.0 GiB  no      keep last 3, pushed within 7d, patterns latest|stable; untagged after 1d  v*         Team A
open/**         1      1     -                  yes     off (every tag kept)                                                      -          -
empty/**        0      0     -                  no      pulled within 30d                                                         -          -
(no namespace)  1      3     -                  -       -                                                                         -          -
"""  # noqa: E501 (the table as printed)


@pytest.fixture(scope="module")
def stocked(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningRegistry, Path]]:
    """A registry holding TAGS, and an operator configuration with NAMESPACES; team-a's
    quota accounting says USED bytes (written as the quota code writes it)."""
    directory = tmp_path_factory.mktemp(f"inventory-{backend.name}")
    with run_registry(directory, backend=backend) as server:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for n, (repo, tags) in enumerate(TAGS.items()):
                manifest = image_manifest(c, repo, [repo.encode()], n=n)
                for tag in tags:
                    assert put_manifest(c, repo, tag, manifest).status_code == 201
        config = directory / "operator.yaml"
        document = {"storage": storage_section(server), "namespaces": NAMESPACES}
        config.write_text(yaml.safe_dump(document))
        loaded = load_config(config)
        team_a = next(iter(Namespaces(loaded.namespaces)))
        storage = wiring.open_storage(loaded)

        async def charge() -> None:
            try:
                usage = json.dumps({"used": USED}).encode()
                await storage.put_bytes(layout.namespace_usage(team_a.key), usage)
            finally:
                await storage.aclose()

        anyio.run(charge)
        yield server, config


def test_namespaces_shows_each_namespace_and_what_it_governs(
    stocked: tuple[RunningRegistry, Path],
) -> None:
    _, config = stocked
    shown = registry_command("namespaces", config=config)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == TABLE


def test_namespaces_json_is_one_document(stocked: tuple[RunningRegistry, Path]) -> None:
    _, config = stocked
    shown = registry_command("namespaces", "--json", config=config)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)  # the whole of stdout, one document
    assert document["ungoverned"] == {"repositories": 1, "tags": 3}
    team_a, public, empty = document["namespaces"]
    assert team_a == {
        "pattern": "team-a/**",
        "description": "Team A",
        "repositories": 2,
        "tags": 3,
        "used": USED,
        "quota": 1 << 30,
        "public": False,
        "retention": {
            "keep_last": 3,
            "keep_days": 7,
            "keep_pulled_days": None,
            "keep_patterns": ["latest", "stable"],
            "untagged_days": 1,
        },
        "retention_summary": "keep last 3, pushed within 7d, patterns latest|stable;"
        " untagged after 1d",
        "immutable_tags": ["v*"],
    }
    assert (public["pattern"], public["repositories"], public["tags"]) == ("open/**", 1, 1)
    assert public["public"] is True and public["used"] is None and public["quota"] is None
    assert public["retention"] is None and public["retention_summary"] == "off (every tag kept)"
    assert (empty["repositories"], empty["tags"]) == (0, 0)
    assert empty["retention_summary"] == "pulled within 30d"


def test_repo_list_streams_every_repository_with_its_tag_count(
    stocked: tuple[RunningRegistry, Path],
) -> None:
    _, config = stocked
    listed = registry_command("repo", "list", config=config)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "open/x\t1 tag",
        "other/y\t3 tags",
        "team-a/app\t2 tags",
        "team-a/lib\t1 tag",
    ]
    assert listed.stderr == "registry: 4 repositories\n"
    as_json = registry_command("repo", "list", "--json", config=config)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"name": name, "tags": len(TAGS[name])} for name in sorted(TAGS)
    ]


def test_repo_list_of_an_empty_registry(tmp_path: Path) -> None:
    config = tmp_path / "operator.yaml"
    config.write_text(yaml.safe_dump({"storage": {"filesystem": {"root": str(tmp_path / "s")}}}))
    listed = registry_command("repo", "list", "--json", config=config)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert listed.stderr == "registry: 0 repositories\n"
    shown = registry_command("namespaces", config=config)  # none configured: the rest
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[1:] == [
        "(no namespace)  0      0     -            -       -          -          -"
    ]


def test_recount_counts_the_content_a_namespace_had_before_its_quota(tmp_path: Path) -> None:
    with run_registry(tmp_path) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        expected, shared = 0, image_manifest(c, "team-a/app", [b"shared layer"], n=7)
        counted_blobs: set[str] = set()
        for repo, extra in (("team-a/app", b"app layer"), ("team-a/lib", b"lib layer")):
            manifest = image_manifest(c, repo, [b"shared layer", extra], n=8)
            assert put_manifest(c, repo, "v1", manifest).status_code == 201
            document = json.loads(manifest)
            for descriptor in (document["config"], *document["layers"]):
                if descriptor["digest"] not in counted_blobs:
                    counted_blobs.add(descriptor["digest"])
                    expected += descriptor["size"]
            expected += len(b"application/vnd.oci.image.manifest.v1+json\n" + manifest)
        assert put_manifest(c, "team-a/app", "old", shared).status_code == 201
        document = json.loads(shared)
        expected += len(b"application/vnd.oci.image.manifest.v1+json\n" + shared)
        expected += sum(
            d["size"]
            for d in (document["config"], *document["layers"])
            if d["digest"] not in counted_blobs
        )
        config = tmp_path / "operator.yaml"
        document = {"storage": storage_section(server), "namespaces": NAMESPACES}
        config.write_text(yaml.safe_dump({**document, "gc": {"settle": "1s"}}))

        before = registry_command("namespaces", "--json", config=config)
        assert json.loads(before.stdout)["namespaces"][0]["used"] == 0  # set after the pushes
        recounted = registry_command("namespaces", "--recount", "--json", config=config)
        assert recounted.returncode == 0, recounted.stderr
        assert json.loads(recounted.stdout)["namespaces"][0]["used"] == expected
        assert f"registry: team-a/**: counted {expected} bytes, gave back 0 bytes" in (
            recounted.stderr
        )
        again = registry_command("namespaces", "--recount", config=config)
        assert f"counted 0 bytes, gave back 0 bytes; {expected} bytes in use" in again.stderr

        # A reservation whose marker was never written (its process killed in between):
        # the usage holds 4096 bytes more than its markers, and a recount takes them off.
        loaded = load_config(config)
        team_a = next(iter(Namespaces(loaded.namespaces)))
        storage = wiring.open_storage(loaded)

        async def leak() -> None:
            try:
                usage = json.dumps({"used": expected + 4096}).encode()
                await storage.put_bytes(layout.namespace_usage(team_a.key), usage)
            finally:
                await storage.aclose()

        anyio.run(leak)
        healed = registry_command("namespaces", "--recount", "--json", config=config)
        assert json.loads(healed.stdout)["namespaces"][0]["used"] == expected
        assert "corrected usage by -4096" in healed.stderr
