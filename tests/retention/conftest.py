"""A registry per backend for the retention tests (shared by the module), and operator
configuration files that add `namespaces` to its storage."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from testkit.commands import registry_command, storage_section
from testkit.oci import OCI_INDEX, OCI_MANIFEST, descriptor, image_manifest, put_manifest
from testkit.registry import Backend, FilesystemBackend, RunningRegistry, run_registry


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    data_dir = tmp_path_factory.mktemp(f"retention-{backend.name}")
    with run_registry(data_dir, {"REGISTRY_GC_SETTLE": "1s"}, backend=backend) as running:
        yield running


def operator_config(server: RunningRegistry, namespaces: list[dict[str, Any]]) -> Path:
    path = server.data_dir / f"retention-{os.urandom(4).hex()}.yaml"
    document = {"storage": storage_section(server), "gc": {"settle": "1s"}}
    path.write_text(yaml.safe_dump({**document, "namespaces": namespaces}))
    return path


def retention(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    done = registry_command("retention", *args, config=config)
    assert done.returncode == 0, done.stderr
    return done


def retention_json(*args: str, config: Path) -> Any:
    return json.loads(retention(*args, "--json", config=config).stdout)


def push_image(client: httpx.Client, repo: str, tag: str, n: int) -> bytes:
    manifest = image_manifest(client, repo, [f"layer {repo} {n}".encode()], n=n)
    assert put_manifest(client, repo, tag, manifest).status_code == 201
    return manifest


def push_index(client: httpx.Client, repo: str, tag: str, children: list[bytes]) -> bytes:
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(child, OCI_MANIFEST) for child in children],
        }
    ).encode()
    assert put_manifest(client, repo, tag, index, OCI_INDEX).status_code == 201
    return index


def tags_of(client: httpx.Client, repo: str) -> list[str]:
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200, response.text
    return sorted(response.json()["tags"] or [])


def age_tag(server: RunningRegistry, repo: str, tag: str, days: float) -> None:
    """Make the tag look pushed `days` ago (filesystem only: its file's modification time)."""
    assert isinstance(server.backend, FilesystemBackend)
    path = server.backend.files(server.data_dir)[f"repositories/{repo}/_tags/{tag}"]
    when = path.stat().st_mtime - days * 86400
    os.utime(path, (when, when))
