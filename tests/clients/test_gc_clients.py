"""docker, skopeo and oras fill a registry of their own, delete some of it, `registry gc` collects
the garbage, and every client still pulls what is still tagged; docker pushes the deleted image
again, uploading the blobs the collection deleted (issue 12, proof point 5).

One registry for the module, filled, trimmed and collected once by the `collected` fixture (a
collection takes the whole storage, so not the session's shared server). Ground truth comes
from the registry over HTTP before the collection: what every kept and every deleted manifest
names. What goes is exactly what deleted manifests name and kept ones do not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import oras.client  # type: ignore[import-untyped]
import oras.oci  # type: ignore[import-untyped]
import pytest

from testkit.registry import (
    PROJECT_ROOT,
    Backend,
    FilesystemBackend,
    RunningRegistry,
    S3Backend,
    run_registry,
)
from tests.clients.images import (
    Image,
    build_image,
    image_of,
    random_layer,
    sha256_digest,
    write_oci_layout,
)
from tests.clients.test_docker import image_id, load_offline_image, pushed_digest
from tests.clients.test_oras import SIGNATURE_CONFIG, push, write_files
from tests.clients.test_skopeo import assert_layout_holds, copy
from tests.clients.tools import Docker, Skopeo
from tests.clients.wire import get_manifest
from tests.conftest import BACKENDS

pytestmark = pytest.mark.clients

# The servers trust a catalog entry for a third of gc.settle; the collector settles that long.
SETTLE = "1s"
SERVER_ENV = {"REGISTRY_GC_SETTLE": SETTLE}
# Referrers whose subject is gone go once older than untagged_grace (24 h by default).
COLLECTOR_ENV = {**SERVER_ENV, "REGISTRY_GC_UNTAGGED_GRACE": "0s"}

Manifest = tuple[str, str]  # (repository, digest)


@dataclass(frozen=True)
class Collected:
    server: RunningRegistry
    workdir: Path
    one: Image  # docker: apps:one, kept
    two: Image  # docker: apps:two, shares its base layer with one; deleted by digest
    one_digest: str
    two_digest: str
    mirrored: Image  # skopeo: mirror:c (kept), copied on to scratch:c (deleted)
    kept_files: list[Path]  # oras: artifacts:keep
    gone_files: list[Path]  # oras: artifacts:gone, deleted
    keep_digest: str
    gone_digest: str
    one_signature: Manifest  # oras referrers, untagged: of apps:one (kept)...
    orphans: list[Manifest]  # ...and of the deleted apps:two and artifacts:gone
    kept: dict[Manifest, set[str]]  # what each kept manifest names
    deleted: dict[Manifest, set[str]]  # what each deleted manifest named
    blobs_before: set[str]
    links_before: dict[str, set[str]]
    summary: dict[str, Any]
    blobs_after: set[str]  # the global blobs right after the collection
    links_after: dict[str, set[str]]  # repository -> its links right after the collection
    catalog_after: list[str]

    @property
    def kept_blobs(self) -> set[str]:
        return set().union(*self.kept.values())

    @property
    def gone_blobs(self) -> set[str]:
        return set().union(*self.deleted.values()) - self.kept_blobs

    def ref(self, name: str) -> str:
        return f"{self.server.host}/{name}"


def named_blobs(client: httpx.Client, repo: str, reference: str) -> set[str]:
    """The config and layer digests of a stored image manifest."""
    body = get_manifest(client, repo, reference).json()
    return {body["config"]["digest"], *(layer["digest"] for layer in body["layers"])}


def stored_blobs(server: RunningRegistry) -> set[str]:
    return {"sha256:" + key.rsplit("/", 1)[1] for key in server.stored_keys("blobs/sha256/")}


def stored_links(server: RunningRegistry) -> dict[str, set[str]]:
    links: dict[str, set[str]] = {}
    for key in server.stored_keys("repositories/"):
        repo, found, rest = key.removeprefix("repositories/").partition("/_blobs/sha256/")
        if found:
            links.setdefault(repo, set()).add("sha256:" + rest)
    return links


def attach(
    oras_client: oras.client.OrasClient,
    client: httpx.Client,
    server: RunningRegistry,
    repo: str,
    subject_digest: str,
    directory: Path,
) -> Manifest:
    """An untagged signature whose subject is `repo@subject_digest`, as `oras attach` pushes
    one. oras-py pushes to a tag only, so the tag comes off again through the API."""
    stored = get_manifest(client, repo, subject_digest)
    subject = oras.oci.Subject(
        mediaType=stored.headers["Content-Type"],
        digest=subject_digest,
        size=len(stored.content),
    )
    files = write_files(directory, {"signature.sig": 512})
    config = directory / "config.json"
    config.write_bytes(b'{"signer":"tests"}')
    digest = push(
        oras_client,
        f"{server.host}/{repo}:attaching",
        files,
        subject=subject,
        manifest_config=f"{config}:{SIGNATURE_CONFIG}",
    )
    untag = client.delete(f"/v2/{repo}/manifests/attaching")
    assert untag.status_code == 202, untag.text
    return repo, digest


def run_gc(server: RunningRegistry) -> dict[str, Any]:
    """`registry gc --grace 0s --settle 1s --json` on the server's storage; its summary."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
        **server.backend.environment(server.data_dir),
        **COLLECTOR_ENV,
    }
    command = [sys.executable, "-m", "registry", "gc", "--grace", "0s", "--settle", SETTLE]
    result = subprocess.run(
        [*command, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    summary: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return summary


@pytest.fixture(scope="module", params=BACKENDS)
def collected(
    request: pytest.FixtureRequest, docker: Docker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Collected]:
    """A registry of the module's own, filled by the clients, trimmed, and collected."""
    backend: Backend = FilesystemBackend()
    if request.param == "s3":
        s3: S3Backend = request.getfixturevalue("s3_backend")
        backend = s3
    workdir = tmp_path_factory.mktemp("gc-clients")
    skopeo = Skopeo(workdir / "skopeo")
    with (
        run_registry(tmp_path_factory.mktemp("gc-registry"), SERVER_ENV, backend=backend) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        oras_client = oras.client.OrasClient(hostname=server.host, insecure=True)
        host = server.host
        base = random_layer(384 * 1024, "base")
        one = image_of((base, random_layer(96 * 1024, "one")))
        two = image_of((base, random_layer(160 * 1024, "two")))
        try:
            # docker: two images sharing their base layer, two tags of one repository.
            load_offline_image(docker, tmp_path_factory.mktemp("one"), one, f"{host}/apps:one")
            load_offline_image(docker, tmp_path_factory.mktemp("two"), two, f"{host}/apps:two")
            one_digest = pushed_digest(docker("push", f"{host}/apps:one").stdout)
            two_digest = pushed_digest(docker("push", f"{host}/apps:two").stdout)
            one_layers = get_manifest(client, "apps", one_digest).json()["layers"]
            two_layers = get_manifest(client, "apps", two_digest).json()["layers"]
            assert one_layers[0] == two_layers[0] and one_layers[1] != two_layers[1]

            # skopeo: an OCI layout into mirror, and from there (mounting) into scratch.
            mirrored = build_image(layer_sizes=(64 * 1024, 256 * 1024))
            write_oci_layout(mirrored, workdir / "layout", "c")
            copy(skopeo, f"oci:{workdir / 'layout'}:c", f"docker://{host}/mirror:c")
            copy(skopeo, f"docker://{host}/mirror:c", f"docker://{host}/scratch:c")

            # oras: two artifacts, and signatures of apps:one, apps:two and artifacts:gone.
            kept_files = write_files(workdir / "keep", {"kept.bin": 200 * 1024, "notes.txt": 99})
            gone_files = write_files(workdir / "gone", {"gone.bin": 150 * 1024})
            keep_digest = push(oras_client, f"{host}/artifacts:keep", kept_files)
            gone_digest = push(oras_client, f"{host}/artifacts:gone", gone_files)
            one_signature = attach(
                oras_client, client, server, "apps", one_digest, workdir / "sig-one"
            )
            orphans = [
                attach(oras_client, client, server, "apps", two_digest, workdir / "sig-two"),
                attach(oras_client, client, server, "artifacts", gone_digest, workdir / "sig-gone"),
            ]

            kept_manifests = [
                ("apps", one_digest),
                one_signature,
                ("mirror", mirrored.manifest.digest),
                ("artifacts", keep_digest),
            ]
            deleted_manifests = [
                ("apps", two_digest),
                ("scratch", mirrored.manifest.digest),
                ("artifacts", gone_digest),
                *orphans,
            ]
            kept = {m: named_blobs(client, *m) for m in kept_manifests}
            deleted = {m: named_blobs(client, *m) for m in deleted_manifests}
            blobs_before = stored_blobs(server)
            links_before = stored_links(server)

            # Deletes, through the API: by digest with plain HTTP, and each client's own.
            response = client.delete(f"/v2/apps/manifests/{two_digest}")
            assert response.status_code == 202, response.text
            skopeo("delete", "--tls-verify=false", f"docker://{host}/scratch:c")
            assert oras_client.delete_tags(f"{host}/artifacts", "gone") == ["gone"]

            summary = run_gc(server)
            catalog = client.get("/v2/_catalog")
            assert catalog.status_code == 200, catalog.text
            yield Collected(
                server=server,
                workdir=workdir,
                one=one,
                two=two,
                one_digest=one_digest,
                two_digest=two_digest,
                mirrored=mirrored,
                kept_files=kept_files,
                gone_files=gone_files,
                keep_digest=keep_digest,
                gone_digest=gone_digest,
                one_signature=one_signature,
                orphans=orphans,
                kept=kept,
                deleted=deleted,
                blobs_before=blobs_before,
                links_before=links_before,
                summary=summary,
                blobs_after=stored_blobs(server),
                links_after=stored_links(server),
                catalog_after=catalog.json()["repositories"],
            )
        finally:
            oras_client.session.close()
            for tag in ("one", "two"):
                docker("rmi", f"{host}/apps:{tag}", check=False)


@pytest.fixture
def gc_client(collected: Collected) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collected.server.url, timeout=60) as client:
        yield client


def test_gc_deletes_exactly_the_blobs_and_links_only_deleted_manifests_named(
    collected: Collected,
) -> None:
    summary = collected.summary
    gone = collected.gone_blobs
    # Every blob the clients stored is named by some manifest.
    assert collected.blobs_before == collected.kept_blobs | set().union(*collected.deleted.values())
    # The deleted docker image's config and top layer go, their shared base layer stays; so
    # does the file of the deleted oras artifact.
    two = collected.deleted[("apps", collected.two_digest)]
    one = collected.kept[("apps", collected.one_digest)]
    assert len(two - one) == 2 and collected.two.config.digest in two - one
    assert two - one <= gone and not two & one & gone
    assert sha256_digest(collected.gone_files[0].read_bytes()) in gone
    assert summary["dry_run"] is False
    assert summary["blobs_deleted"] == len(gone) > 0
    assert summary["bytes_freed"] > 0
    assert summary["manifests_deleted"] == len(collected.orphans)  # the orphaned signatures
    assert summary["repositories_deleted"] == 1  # scratch
    assert summary["rescued"] == 0

    assert collected.blobs_after == collected.kept_blobs
    assert collected.blobs_after == collected.blobs_before - gone
    # Each repository keeps the links its kept manifests name, and only those.
    expected_links: dict[str, set[str]] = {}
    for (repo, _), blobs in collected.kept.items():
        expected_links.setdefault(repo, set()).update(blobs)
    assert collected.links_after == expected_links
    assert summary["links_deleted"] == sum(
        len(links - collected.links_after.get(repo, set()))
        for repo, links in collected.links_before.items()
    )
    assert sorted(collected.catalog_after) == ["apps", "artifacts", "mirror"]
    assert collected.server.stored_keys("gc/blob-tombstones/") == []


def test_docker_pulls_the_image_still_tagged_base_layer_and_all(
    collected: Collected, docker: Docker
) -> None:
    ref = collected.ref("apps:one")
    # Neither image stays local, so the pull fetches the shared base layer as well.
    for tag in ("one", "two"):
        docker("rmi", collected.ref(f"apps:{tag}"), check=False)
    assert docker("image", "inspect", collected.one.image_id, check=False).returncode != 0

    pull = docker("pull", ref).stdout

    assert f"Digest: {collected.one_digest}" in pull, pull
    assert image_id(docker, ref) == collected.one.image_id
    docker("rmi", ref)


def test_docker_pushes_the_deleted_image_again_uploading_what_gc_deleted_then_pulls_it(
    collected: Collected, docker: Docker, gc_client: httpx.Client, tmp_path: Path
) -> None:
    ref = collected.ref("apps:two")
    load_offline_image(docker, tmp_path, collected.two, ref)
    own = collected.deleted[("apps", collected.two_digest)] - collected.kept_blobs
    assert not own & stored_blobs(collected.server)

    push = docker("push", ref).stdout

    assert pushed_digest(push) == collected.two_digest
    base, top = (layer.diff_id.removeprefix("sha256:")[:12] for layer in collected.two.layers)
    assert f"{base}: Layer already exists" in push and f"{top}: Pushed" in push, push
    assert own <= stored_blobs(collected.server)
    assert (
        named_blobs(gc_client, "apps", "two") == collected.deleted[("apps", collected.two_digest)]
    )
    docker("rmi", ref)
    assert docker("image", "inspect", collected.two.image_id, check=False).returncode != 0
    docker("pull", ref)
    assert image_id(docker, ref) == collected.two.image_id
    docker("rmi", ref)


def test_skopeo_copies_the_mirrored_image_out_and_into_the_collected_repository_again(
    collected: Collected, skopeo: Skopeo, gc_client: httpx.Client, tmp_path: Path
) -> None:
    registry = f"docker://{collected.server.host}"

    copy(skopeo, f"{registry}/mirror:c", f"oci:{tmp_path / 'out'}:c")

    assert_layout_holds(tmp_path / "out", "c", collected.mirrored)
    # scratch went with its last manifest; a copy into it mounts the layers from mirror again.
    assert gc_client.get("/v2/scratch/tags/list").status_code == 404
    log = copy(skopeo, f"{registry}/mirror:c", f"{registry}/scratch:c", debug=True)
    assert log.count("... mount OK") == len(collected.mirrored.layers), log
    copy(skopeo, f"{registry}/scratch:c", f"oci:{tmp_path / 'again'}:c")
    assert_layout_holds(tmp_path / "again", "c", collected.mirrored)


@pytest.fixture
def gc_oras_client(collected: Collected) -> Iterator[oras.client.OrasClient]:
    client = oras.client.OrasClient(hostname=collected.server.host, insecure=True)
    try:
        yield client
    finally:
        client.session.close()


def test_oras_pulls_the_kept_artifact_and_signature_while_the_orphans_are_gone(
    collected: Collected,
    gc_oras_client: oras.client.OrasClient,
    gc_client: httpx.Client,
    tmp_path: Path,
) -> None:
    pulled = gc_oras_client.pull(
        target=collected.ref("artifacts:keep"), outdir=str(tmp_path / "keep")
    )

    assert sorted(Path(p).name for p in pulled) == ["kept.bin", "notes.txt"]
    for path in collected.kept_files:
        assert (tmp_path / "keep" / path.name).read_bytes() == path.read_bytes()

    repo, signature = collected.one_signature
    referrers = gc_client.get(f"/v2/{repo}/referrers/{collected.one_digest}")
    assert referrers.status_code == 200, referrers.text
    assert [d["digest"] for d in referrers.json()["manifests"]] == [signature]
    pulled = gc_oras_client.pull(
        target=collected.ref(f"{repo}@{signature}"), outdir=str(tmp_path / "signature")
    )
    assert [Path(p).name for p in pulled] == ["signature.sig"]
    signed = collected.workdir / "sig-one" / "signature.sig"
    assert (tmp_path / "signature" / "signature.sig").read_bytes() == signed.read_bytes()

    for subject in ("apps", collected.two_digest), ("artifacts", collected.gone_digest):
        listed = gc_client.get(f"/v2/{subject[0]}/referrers/{subject[1]}")
        assert listed.status_code == 200, listed.text
        assert listed.json()["manifests"] == []
    for orphan_repo, orphan in collected.orphans:
        missing = gc_client.get(f"/v2/{orphan_repo}/manifests/{orphan}")
        assert missing.status_code == 404, missing.text
