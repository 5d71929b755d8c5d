"""The app in this process, on a filesystem storage of the module's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette

from registry.app import create_app
from registry.config import load_config


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def app_on(root: Path, **environ: str) -> Starlette:
    return create_app(load_config(None, {"REGISTRY_STORAGE_FILESYSTEM_ROOT": str(root), **environ}))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    return app_on(tmp_path_factory.mktemp("inprocess"))
