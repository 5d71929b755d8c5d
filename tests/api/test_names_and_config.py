"""Repository-name validation on every route, and behaviour that depends on configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.oci import digest_of, error_codes, image_manifest, push_blob, put_manifest, raw_request
from testkit.registry import Backend, RunningRegistry, run_registry


@pytest.mark.parametrize(
    "path",
    [
        "/v2/Upper/tags/list",
        "/v2/a/../b/tags/list",
        "/v2/a/%2e%2e/b/tags/list",
        "/v2/%2e%2e/tags/list",
        "/v2//leading/tags/list",
        "/v2/trailing//tags/list",
        "/v2/-dash/tags/list",
        "/v2/_internal/tags/list",
        "/v2/a/_tags/tags/list",
        "/v2/" + "a" * 256 + "/tags/list",
    ],
)
def test_invalid_repository_names_are_name_invalid(
    registry_server: RunningRegistry, path: str
) -> None:
    status, raw = raw_request(
        registry_server.url, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 400, raw
    assert b'"NAME_INVALID"' in raw


def test_invalid_name_on_upload_and_manifest_routes(client: httpx.Client) -> None:
    r = client.post("/v2/Bad/blobs/uploads/")
    assert r.status_code == 400 and error_codes(r) == ["NAME_INVALID"]
    r = client.put("/v2/Bad/manifests/v1", content=b"{}")
    assert r.status_code == 400 and error_codes(r) == ["NAME_INVALID"]


def test_longest_valid_name_works(client: httpx.Client) -> None:
    name = "a" * 100 + "/" + "b" * 154
    assert len(name) == 255
    push_blob(client, name, b"x")
    assert client.get(f"/v2/{name}/tags/list").status_code == 200


def test_invalid_names_never_touch_storage(registry_server: RunningRegistry) -> None:
    raw_request(
        registry_server.url,
        b"POST /v2/a/../../escape/blobs/uploads/?digest=sha256:"
        + digest_of(b"").encode()[7:]
        + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    names = registry_server.everything_around_storage()
    assert not [n for n in names if any(part.startswith("escape") for part in n.split("/"))]


@pytest.fixture(scope="module")
def no_delete(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    with run_registry(
        tmp_path_factory.mktemp("nodelete"),
        {"REGISTRY_STORAGE_DELETE_ENABLED": "false"},
        backend=backend,
    ) as server:
        yield server


def test_deletes_are_unsupported_when_disabled(no_delete: RunningRegistry) -> None:
    with httpx.Client(base_url=no_delete.url) as c:
        body = image_manifest(c, "repo")
        put_manifest(c, "repo", "v1", body)
        blob = push_blob(c, "repo", b"keep me")
        for path in (
            f"/v2/repo/manifests/{digest_of(body)}",
            "/v2/repo/manifests/v1",
            f"/v2/repo/blobs/{blob}",
        ):
            r = c.delete(path)
            assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"]
        assert c.get("/v2/repo/manifests/v1").status_code == 200
        assert c.get(f"/v2/repo/blobs/{blob}").content == b"keep me"


def test_bad_configuration_fails_at_start_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  filesystem:\n    rooot: /tmp/x\n")
    run = subprocess.run(
        [sys.executable, "-m", "registry", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "registry: configuration error: storage.filesystem.rooot: unknown configuration key"
        " (did you mean storage.filesystem.root?)"
    ]


def test_several_workers_read_the_config_file_and_share_uploads(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("http:\n  workers: 2\nstorage:\n  delete:\n    enabled: false\n")
    with run_registry(tmp_path, config_file=config) as server:
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        commands = [
            Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children.read_text().split()
        ]
        assert sum(b"spawn_main" in command for command in commands) == 2
        data = b"x" * 100_000
        for _ in range(4):  # new connections land on either worker
            with httpx.Client(base_url=server.url) as c:
                location = c.post("/v2/workers/blobs/uploads/").headers["location"]
            with httpx.Client(base_url=server.url) as c:
                assert c.patch(location, content=data).status_code == 202
            with httpx.Client(base_url=server.url) as c:
                r = c.put(location, params={"digest": digest_of(data)})
                assert r.status_code == 201
                assert c.delete(f"/v2/workers/blobs/{digest_of(data)}").status_code == 405
