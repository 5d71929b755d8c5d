"""oras-py pushes artifacts, attaches one to another as its subject, and pulls them back."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import oras.client  # type: ignore[import-untyped]
import oras.oci  # type: ignore[import-untyped]
import pytest

from testkit.registry import RunningRegistry
from tests.clients.images import OCI_INDEX, OCI_MANIFEST, sha256_digest
from tests.clients.wire import blob_size, get_manifest

pytestmark = pytest.mark.clients

SIGNATURE_CONFIG = "application/vnd.example.signature.config.v1+json"


def write_files(directory: Path, sizes: dict[str, int]) -> list[Path]:
    directory.mkdir(parents=True)
    paths = [directory / name for name in sizes]
    for path, size in zip(paths, sizes.values(), strict=True):
        path.write_bytes(os.urandom(size))
    return paths


def push(client: oras.client.OrasClient, target: str, files: list[Path], **options: object) -> str:
    """Push an artifact; returns the manifest digest the registry reported."""
    response = client.push(
        target=target,
        files=[str(f) for f in files],
        disable_path_validation=True,
        quiet=True,
        **options,
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def test_oras_push_then_pull_returns_identical_files(
    oras_client: oras.client.OrasClient,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    files = write_files(tmp_path / "in", {"a.bin": 10, "b.bin": 300 * 1024, "empty.txt": 0})
    target = f"{registry_server.host}/{repo}:v1"

    digest = push(oras_client, target, files)

    manifest = get_manifest(client, repo, "v1")
    assert manifest.headers["Docker-Content-Digest"] == digest
    layers = manifest.json()["layers"]
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in layers]
    assert titles == ["a.bin", "b.bin", "empty.txt"]
    for path, layer in zip(files, layers, strict=True):
        assert layer["digest"] == sha256_digest(path.read_bytes())
        assert blob_size(client, repo, layer["digest"]) == path.stat().st_size

    pulled = oras_client.pull(target=target, outdir=str(tmp_path / "out"))

    assert sorted(Path(p).name for p in pulled) == ["a.bin", "b.bin", "empty.txt"]
    for path in files:
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes()


def test_oras_artifact_with_a_subject_is_listed_by_the_referrers_api(
    oras_client: oras.client.OrasClient,
    registry_server: RunningRegistry,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    subject_files = write_files(tmp_path / "subject", {"payload.bin": 4096})
    subject_digest = push(oras_client, f"{registry_server.host}/{repo}:v1", subject_files)
    stored_subject = get_manifest(client, repo, subject_digest)
    subject = oras.oci.Subject(
        mediaType=stored_subject.headers["Content-Type"],
        digest=subject_digest,
        size=len(stored_subject.content),
    )
    signature_files = write_files(tmp_path / "signature", {"signature.sig": 512})
    config = tmp_path / "signature-config.json"
    config.write_bytes(b'{"signer":"tests"}')
    annotations = {"org.example.signed-by": "tests", "org.example.purpose": "referrers"}

    referrer_digest = push(
        oras_client,
        f"{registry_server.host}/{repo}:signature",
        signature_files,
        subject=subject,
        manifest_annotations=annotations,
        manifest_config=f"{config}:{SIGNATURE_CONFIG}",
    )

    response = client.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    referrers = response.json()
    assert referrers["schemaVersion"] == 2
    assert referrers["mediaType"] == OCI_INDEX
    referrer = get_manifest(client, repo, referrer_digest)
    assert referrer.json()["subject"]["digest"] == subject_digest
    assert referrers["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": referrer_digest,
            "size": len(referrer.content),
            "artifactType": SIGNATURE_CONFIG,  # no artifactType: the config media type stands in
            "annotations": annotations,
        }
    ]

    pulled = oras_client.pull(
        target=f"{registry_server.host}/{repo}@{referrer_digest}", outdir=str(tmp_path / "out")
    )

    assert [Path(p).name for p in pulled] == ["signature.sig"]
    assert (tmp_path / "out" / "signature.sig").read_bytes() == signature_files[0].read_bytes()
