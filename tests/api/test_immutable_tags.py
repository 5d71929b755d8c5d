"""Immutable tags over HTTP (docs/immutable-tags.md): one server with three namespaces, on
the filesystem; two replicas racing on S3; and `registry repo delete` refusing without
`--force`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.commands import registry_command
from testkit.namespace_config import namespaces_file
from testkit.oci import digest_of, error_codes, image_manifest, put_manifest
from testkit.registry import RunningRegistry, S3Backend, run_registry

NAMESPACES = [
    {"pattern": "frozen/**", "immutable_tags": ["v*", "release-*"]},
    {"pattern": "sealed/**", "immutable_tags": ["*"]},
    {"pattern": "free/**"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    data_dir = tmp_path_factory.mktemp("immutable")
    config = namespaces_file(data_dir / "registry.yaml", NAMESPACES)
    with run_registry(data_dir, {"REGISTRY_GC_SETTLE": "1s"}, config_file=config) as running:
        yield running


@pytest.fixture
def c(server: RunningRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def denied(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 403, response.text
    assert error_codes(response) == ["DENIED"]
    error: dict[str, object] = response.json()["errors"][0]
    return error


def stat_of(server: RunningRegistry, key: str) -> tuple[int, int, bytes]:
    path = server.backend.files(server.data_dir)[key]  # type: ignore[union-attr]
    return path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes()


def snapshot(server: RunningRegistry, repo: str) -> dict[str, tuple[int, int, bytes]]:
    return {key: stat_of(server, key) for key in server.stored_keys(f"repositories/{repo}/")}


def test_a_repush_of_the_same_digest_passes_and_changes_nothing_in_storage(
    server: RunningRegistry, c: httpx.Client
) -> None:
    repo = "frozen/repush"
    manifest = image_manifest(c, repo, n=1)
    assert put_manifest(c, repo, "v1.0", manifest).status_code == 201
    before = snapshot(server, repo)
    again = put_manifest(c, repo, "v1.0", manifest)
    assert again.status_code == 201
    assert again.headers["docker-content-digest"] == digest_of(manifest)
    assert snapshot(server, repo) == before  # not one object rewritten (inode, mtime, bytes)
    assert c.get(f"/v2/{repo}/manifests/v1.0").content == manifest


def test_moving_an_immutable_tag_is_denied_with_a_message_naming_the_tag_and_the_rule(
    server: RunningRegistry, c: httpx.Client
) -> None:
    repo = "frozen/app"
    first, second = image_manifest(c, repo, n=1), image_manifest(c, repo, n=2)
    assert put_manifest(c, repo, "v1.0", first).status_code == 201
    before = snapshot(server, repo)
    error = denied(put_manifest(c, repo, "v1.0", second))
    assert error["message"] == (
        "tag v1.0 is immutable (namespace 'frozen/**', immutable_tags 'v*'): it names"
        f" {digest_of(first)}; push under a new tag"
    )
    assert error["detail"] == {
        "tag": "v1.0",
        "digest": digest_of(first),
        "namespace": "frozen/**",
        "rule": "v*",
    }
    assert snapshot(server, repo) == before  # refused before anything was written
    assert c.get(f"/v2/{repo}/manifests/v1.0").content == first
    # The second image goes under a new tag; a second rule covers its own tags.
    assert put_manifest(c, repo, "v1.1", second).status_code == 201
    assert put_manifest(c, repo, "release-1", first).status_code == 201
    message = denied(put_manifest(c, repo, "release-1", second))["message"]
    assert "immutable_tags 'release-*'" in str(message)


def test_deleting_an_immutable_tag_or_the_manifest_it_names_is_denied(
    c: httpx.Client,
) -> None:
    repo = "frozen/kept"
    manifest = image_manifest(c, repo, n=1)
    digest = digest_of(manifest)
    for tag in ("v2", "v3", "latest"):
        assert put_manifest(c, repo, tag, manifest).status_code == 201
    error = denied(c.delete(f"/v2/{repo}/manifests/v2"))
    assert error["message"] == (
        f"tag v2 is immutable (namespace 'frozen/**', immutable_tags 'v*'): it names {digest}"
        " and cannot be deleted"
    )
    error = denied(c.delete(f"/v2/{repo}/manifests/{digest}"))
    assert error["message"] == (
        f"manifest {digest} is named by immutable tags v2, v3 (namespace 'frozen/**',"
        " immutable_tags 'v*') and cannot be deleted"
    )
    assert error["detail"] == {
        "digest": digest,
        "tags": ["v2", "v3"],
        "namespace": "frozen/**",
        "rule": "v*",
    }
    # Nothing went: not even the mutable tag.
    assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == ["latest", "v2", "v3"]
    assert c.get(f"/v2/{repo}/manifests/{digest}").status_code == 200
    assert c.delete(f"/v2/{repo}/manifests/v9").status_code == 404  # absent: unknown, as ever


def test_tags_no_rule_covers_move_and_go_as_before(c: httpx.Client) -> None:
    for repo, tag in (("frozen/mutable", "latest"), ("free/app", "v1.0")):
        first, second = image_manifest(c, repo, n=1), image_manifest(c, repo, n=2)
        assert put_manifest(c, repo, tag, first).status_code == 201
        assert put_manifest(c, repo, tag, second).status_code == 201
        assert c.get(f"/v2/{repo}/manifests/{tag}").content == second
        assert c.delete(f"/v2/{repo}/manifests/{tag}").status_code == 202
        assert put_manifest(c, repo, tag, first).status_code == 201
        assert c.delete(f"/v2/{repo}/manifests/{digest_of(first)}").status_code == 202
        assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == []


def test_digest_tags_stay_mutable_even_when_every_tag_is_immutable(c: httpx.Client) -> None:
    repo = "sealed/signed"
    image = image_manifest(c, repo, n=1)
    assert put_manifest(c, repo, "anything", image).status_code == 201
    assert "immutable" in str(
        denied(put_manifest(c, repo, "anything", image_manifest(c, repo, n=2)))["message"]
    )
    digest_tag = digest_of(image).replace(":", "-")
    for suffix in ("", ".sig", ".att", ".sbom"):
        for n in (3, 4):  # cosign re-signing: the same tag, a new signature manifest
            signature = image_manifest(c, repo, n=n)
            assert put_manifest(c, repo, digest_tag + suffix, signature).status_code == 201
        assert c.delete(f"/v2/{repo}/manifests/{digest_tag}{suffix}").status_code == 202


def test_repo_delete_refuses_a_repository_with_immutable_tags_unless_forced(
    server: RunningRegistry, c: httpx.Client, tmp_path: Path
) -> None:
    repo = "frozen/retired"
    manifest = image_manifest(c, repo, n=1)
    for tag in ("v1", "v2", "latest"):
        assert put_manifest(c, repo, tag, manifest).status_code == 201
    config = namespaces_file(
        tmp_path / "operator.yaml", NAMESPACES, storage_of=server, gc={"settle": "1s"}
    )
    before = server.stored_keys(f"repositories/{repo}/")
    for dry_run in ((), ("--dry-run",)):
        refused = registry_command("repo", "delete", repo, *dry_run, config=config)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr == (
            f"registry: DENIED: repository {repo} has 2 immutable tags, e.g. v1 (namespace"
            " 'frozen/**', immutable_tags 'v*'); nothing was deleted (--force deletes them too)\n"
        )
    assert server.stored_keys(f"repositories/{repo}/") == before

    forced = registry_command("repo", "delete", repo, "--force", "--json", config=config)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["tags"] == 3
    assert server.stored_keys(f"repositories/{repo}/") == []
    assert repo not in c.get("/v2/_catalog").json()["repositories"]


ROUNDS = 12


def race(
    clients: tuple[httpx.Client, httpx.Client], repo: str, tag: str, bodies: list[bytes]
) -> dict[int, int]:
    """Each client PUTs its body under tag at the same moment; status by client index."""
    start, statuses = threading.Barrier(2), dict[int, int]()

    def push(index: int) -> None:
        start.wait(timeout=30)
        statuses[index] = put_manifest(clients[index], repo, tag, bodies[index]).status_code

    threads = [threading.Thread(target=push, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_two_replicas_racing_to_set_an_immutable_tag_have_exactly_one_winner(
    s3_backend: S3Backend, tmp_path: Path
) -> None:
    """Two replicas on one S3 storage each push a different manifest under the same new
    immutable tag at the same moment, a dozen times over: one 201 and one 403 each time,
    and the tag names the winner's manifest (the deterministic proof, every interleaving:
    tests/service/test_immutable_tags.py)."""
    config = namespaces_file(tmp_path / "registry.yaml", NAMESPACES)
    with (
        run_registry(tmp_path, config_file=config, backend=s3_backend) as one,
        run_registry(tmp_path, config_file=config, backend=s3_backend) as two,
        httpx.Client(base_url=one.url, timeout=60) as a,
        httpx.Client(base_url=two.url, timeout=60) as b,
    ):
        repo = "frozen/raced"
        manifests = [image_manifest(a, repo, n=1), image_manifest(a, repo, n=2)]
        for round_ in range(ROUNDS):
            statuses = race((a, b), repo, f"v{round_}", manifests)
            assert sorted(statuses.values()) == [201, 403], statuses
            winner = manifests[next(i for i, status in statuses.items() if status == 201)]
            for client in (a, b):
                assert client.get(f"/v2/{repo}/manifests/v{round_}").content == winner
