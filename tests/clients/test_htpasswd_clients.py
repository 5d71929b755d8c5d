"""docker login, skopeo and oras with credentials, in htpasswd mode (Basic) and in token mode
(the built-in Docker token service)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import oras.client  # type: ignore[import-untyped]
import pytest

from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user, htpasswd_env
from tests.clients.images import build_image, write_oci_layout
from tests.clients.test_docker import image_id, load_offline_image, pushed_digest
from tests.clients.test_oras import push, write_files
from tests.clients.test_skopeo import assert_layout_holds, copy
from tests.clients.tools import Docker, Skopeo

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp(f"{request.param}-clients")
    add_user(directory / "htpasswd", "ci-robot", PASSWORD)
    env = htpasswd_env(directory / "htpasswd") | {"REGISTRY_AUTH_MODE": request.param}
    with run_registry(directory, env) as server:
        yield server


def test_docker_login_checks_the_password_then_pushes_and_pulls(
    docker: Docker, secured: RunningRegistry, tmp_path: Path
) -> None:
    refused = docker("login", "-u", "ci-robot", "-p", "wrong", secured.host, check=False)
    assert refused.returncode != 0 and "unauthorized" in (refused.stderr + refused.stdout).lower()
    docker("login", "-u", "ci-robot", "-p", PASSWORD, secured.host)
    try:
        image = build_image(layer_sizes=(256 * 1024,))
        ref = f"{secured.host}/private/app:v1"
        load_offline_image(docker, tmp_path, image, ref)
        digest = pushed_digest(docker("push", ref).stdout)
        docker("rmi", ref)
        pulled = docker("pull", ref).stdout
        assert digest in pulled and image_id(docker, ref) == image.image_id
        docker("rmi", ref)
    finally:
        docker("logout", secured.host)
    anonymous = docker("pull", f"{secured.host}/private/app:v1", check=False)
    assert anonymous.returncode != 0


def test_skopeo_copies_with_credentials(
    skopeo: Skopeo, secured: RunningRegistry, tmp_path: Path
) -> None:
    image = build_image(layer_sizes=(100 * 1024, 200 * 1024))
    write_oci_layout(image, tmp_path / "in", "v1")
    creds = f"ci-robot:{PASSWORD}"
    destination = f"docker://{secured.host}/skopeo/app:v1"
    copy(skopeo, f"oci:{tmp_path / 'in'}:v1", destination, "--dest-creds", creds)
    copy(skopeo, destination, f"oci:{tmp_path / 'out'}:v1", "--src-creds", creds)
    assert_layout_holds(tmp_path / "out", "v1", image)
    with pytest.raises(AssertionError, match=r"401|unauthorized|authentication required"):
        copy(skopeo, destination, f"oci:{tmp_path / 'anonymous'}:v1")


def test_oras_pushes_and_pulls_with_credentials(secured: RunningRegistry, tmp_path: Path) -> None:
    files = write_files(tmp_path / "in", {"report.json": 2048})
    # oras-py's token backend renews a token only on 403, while registries (Distribution and
    # ours) answer an insufficient token with 401 + error="insufficient_scope"; so it sends
    # Basic credentials, which both modes accept.
    client = oras.client.OrasClient(hostname=secured.host, insecure=True, auth_backend="basic")
    try:
        client.auth.set_basic_auth("ci-robot", PASSWORD)
        target = f"{secured.host}/artifacts/report:v1"
        digest = push(client, target, files)
        client.pull(target=target, outdir=str(tmp_path / "out"))
        assert (tmp_path / "out" / "report.json").read_bytes() == files[0].read_bytes()
    finally:
        client.session.close()
    r = httpx.get(f"{secured.url}/v2/artifacts/report/manifests/v1", auth=("ci-robot", PASSWORD))
    assert r.headers["docker-content-digest"] == digest


def test_skopeo_pulls_a_public_namespace_anonymously_but_cannot_push_there(
    skopeo: Skopeo, tmp_path: Path
) -> None:
    add_user(tmp_path / "htpasswd", "publisher", PASSWORD)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"auth:\n  mode: token\n  htpasswd:\n    path: {tmp_path / 'htpasswd'}\n"
        "  policy:\n    rules:\n"
        "      - repositories: ['public/**']\n        principals: [anonymous]\n"
        "        actions: [pull]\n"
        "      - repositories: ['**']\n        principals: [publisher]\n        actions: ['*']\n"
    )
    image = build_image(layer_sizes=(64 * 1024,))
    write_oci_layout(image, tmp_path / "in", "v1")
    with run_registry(tmp_path, config_file=config) as server:
        public = f"docker://{server.host}/public/tool:v1"
        copy(skopeo, f"oci:{tmp_path / 'in'}:v1", public, "--dest-creds", f"publisher:{PASSWORD}")
        copy(skopeo, public, f"oci:{tmp_path / 'out'}:v1")  # no credentials at all
        assert_layout_holds(tmp_path / "out", "v1", image)
        with pytest.raises(AssertionError, match=r"(?i)unauthorized|denied|401|403"):
            copy(skopeo, f"oci:{tmp_path / 'in'}:v1", f"docker://{server.host}/public/tool:v2")
