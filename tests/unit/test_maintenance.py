"""Read-only maintenance mode: its configuration key, the routes it refuses, and how a replica
keeps its answer when the flag cannot be read."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from registry.config import ConfigError, load_config
from registry.maintenance import Flag, ReadOnlyMode, new_flag
from registry.routes import ENDPOINTS
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage
from registry.storage.protocol import ObjectInfo, StorageError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_read_only_is_off_by_default_and_set_by_file_or_environment(tmp_path: Path) -> None:
    assert load_config().storage.maintenance.readonly.enabled is False
    path = tmp_path / "c.yaml"
    path.write_text("storage:\n  maintenance:\n    readonly:\n      enabled: true\n")
    assert load_config(path).storage.maintenance.readonly.enabled is True
    environ = {"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED": "false"}
    assert load_config(path, environ).storage.maintenance.readonly.enabled is False


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("storage:\n  maintenance:\n    readonly:\n      enabled: yes please\n", "expected true"),
        ("storage:\n  maintenance:\n    read_only:\n      enabled: true\n", "did you mean"),
        ("storage:\n  maintenance:\n    readonly: true\n", "expected a mapping"),
    ],
)
def test_a_bad_read_only_setting_names_the_key(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=f"storage.maintenance.read.*{message}"):
        load_config(path)


def test_read_only_mode_refuses_exactly_the_routes_that_change_content() -> None:
    refused = {
        (method, endpoint.path.removeprefix("/v2/{name:path}"))
        for endpoint in ENDPOINTS
        if endpoint.changes_content
        for method in endpoint.methods
    }
    assert refused == {
        ("PUT", "/manifests/{reference}"),
        ("DELETE", "/manifests/{reference}"),
        ("POST", "/blobs/uploads/"),  # uploads and mounts
        ("PATCH", "/blobs/uploads/{uuid}"),
        ("PUT", "/blobs/uploads/{uuid}"),
        ("DELETE", "/blobs/uploads/{uuid}"),
        ("DELETE", "/blobs/{digest}"),
    }


def test_a_flag_that_is_not_json_still_turns_the_mode_on() -> None:
    assert Flag.decode(b"") == Flag("unknown", "unknown")
    flag = new_flag("alice@host")
    assert Flag.decode(flag.encode()) == flag


class FailingStat(FilesystemStorage):
    failing = False

    async def stat(self, key: str) -> ObjectInfo:
        if self.failing:
            raise StorageError("storage is down")
        return await super().stat(key)


async def test_a_failed_poll_keeps_the_last_answer_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = FailingStat(str(tmp_path))
    mode = ReadOnlyMode(storage)
    await storage.put_bytes(layout.READ_ONLY_FLAG, new_flag("alice@host").encode())
    await mode.poll()
    assert mode.active
    storage.failing = True
    await storage.delete(layout.READ_ONLY_FLAG)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "registry"):
        for _ in range(3):
            await mode.poll()
            assert mode.active
    assert [r.message.startswith("cannot read the read-only flag") for r in caplog.records] == [
        True
    ]
    storage.failing = False
    await mode.poll()
    assert not mode.active
    await storage.aclose()


async def test_configured_read_only_holds_whatever_the_flag_says(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path))
    mode = ReadOnlyMode(storage, configured=True)
    await mode.poll()
    assert mode.active and not mode.flagged
    await mode.set_flag(new_flag("alice@host"))
    assert await mode.clear_flag() and mode.active
    await storage.aclose()
