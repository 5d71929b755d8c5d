"""docker, skopeo and oras against immutable tags (docs/immutable-tags.md): pushing the same
image again under an immutable tag passes (a CI re-run), pushing another image under it fails,
and each client's output carries our message. One registry for the module, with a namespace
whose `v*` tags are immutable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import oras.client  # type: ignore[import-untyped]
import pytest

from testkit.namespace_config import namespaces_file
from testkit.registry import RunningRegistry, run_registry
from tests.clients.images import build_image, write_oci_layout
from tests.clients.test_docker import load_offline_image, pushed_digest
from tests.clients.test_oras import push, write_files
from tests.clients.test_skopeo import PLAIN_HTTP
from tests.clients.tools import Docker, Skopeo
from tests.clients.wire import get_manifest

pytestmark = pytest.mark.clients

NAMESPACES = [{"pattern": "frozen/**", "immutable_tags": ["v*"]}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    data_dir = tmp_path_factory.mktemp("immutable-clients")
    config = namespaces_file(data_dir / "registry.yaml", NAMESPACES)
    with run_registry(data_dir, config_file=config) as running:
        yield running


@pytest.fixture
def client(server: RunningRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def refusal(repo: str, digest: str) -> str:
    """Our message for a push that would move tag v1 of `repo` off `digest`."""
    return (
        f"tag v1 is immutable (namespace 'frozen/**', immutable_tags 'v*'): it names {digest};"
        " push under a new tag"
    )


def test_docker_pushes_an_immutable_tag_again_but_not_another_image_under_it(
    docker: Docker, server: RunningRegistry, client: httpx.Client, tmp_path: Path
) -> None:
    ref = f"{server.host}/frozen/docker:v1"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    load_offline_image(docker, tmp_path / "first", build_image(layer_sizes=(64 * 1024,)), ref)
    digest = pushed_digest(docker("push", ref).stdout)
    assert pushed_digest(docker("push", ref).stdout) == digest  # a CI re-run

    load_offline_image(docker, tmp_path / "second", build_image(layer_sizes=(48 * 1024,)), ref)
    refused = docker("push", ref, check=False)
    assert refused.returncode != 0
    assert f"denied: {refusal('frozen/docker', digest)}" in refused.stdout + refused.stderr
    assert get_manifest(client, "frozen/docker", "v1").headers["docker-content-digest"] == digest
    docker("rmi", ref)


def test_skopeo_copies_an_immutable_tag_again_but_not_another_image_under_it(
    skopeo: Skopeo, server: RunningRegistry, client: httpx.Client, tmp_path: Path
) -> None:
    first, second = build_image(layer_sizes=(32 * 1024,)), build_image(layer_sizes=(40 * 1024,))
    write_oci_layout(first, tmp_path / "first", "v1")
    write_oci_layout(second, tmp_path / "second", "v1")
    destination = f"docker://{server.host}/frozen/skopeo:v1"
    for _ in range(2):
        skopeo(
            "copy", "--preserve-digests", *PLAIN_HTTP, f"oci:{tmp_path / 'first'}:v1", destination
        )

    refused = skopeo("copy", *PLAIN_HTTP, f"oci:{tmp_path / 'second'}:v1", destination, check=False)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert f"denied: {refusal('frozen/skopeo', first.manifest.digest)}" in output
    # DENIED, not MANIFEST_INVALID: skopeo tried no other manifest format.
    assert output.count("denied: tag v1 is immutable") == 1, output
    manifest = get_manifest(client, "frozen/skopeo", "v1")
    assert manifest.headers["docker-content-digest"] == first.manifest.digest


def test_oras_pushes_an_immutable_tag_again_but_not_another_artifact_under_it(
    server: RunningRegistry,
    client: httpx.Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # With its default token auth, oras-py takes any 403 for an authentication challenge it
    # cannot answer, retries for about two minutes and never shows the error body; with
    # credentials (basic auth, as after a login) it logs the registry's message.
    oras_client = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="basic")
    oras_client.auth.set_basic_auth("ci", "secret")
    target = f"{server.host}/frozen/oras:v1"
    try:
        files = write_files(tmp_path / "first", {"a.bin": 4096})
        digest = push(oras_client, target, files)
        assert push(oras_client, target, files) == digest

        caplog.clear()
        with pytest.raises(ValueError, match="Forbidden"):
            push(oras_client, target, write_files(tmp_path / "second", {"b.bin": 4096}))
    finally:
        oras_client.session.close()
    # oras-py logs the registry's message (logger oras.logger, level ERROR), then raises.
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        refusal("frozen/oras", digest)
    ]
    assert get_manifest(client, "frozen/oras", "v1").headers["docker-content-digest"] == digest
