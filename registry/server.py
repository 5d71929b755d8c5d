"""Run the app under uvicorn (uvloop + httptools), with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from registry.app import create_app
from registry.config import CONFIG_FILE_ENV, Config, load_config

GRACEFUL_SHUTDOWN_SECONDS = 30


def app_factory() -> object:
    """Entry point for uvicorn worker processes, which re-read the configuration."""
    return create_app(load_config(os.environ.get(CONFIG_FILE_ENV), os.environ))


def serve(config: Config, config_path: str | None) -> int:
    options: dict[str, Any] = {
        "host": config.http.host,
        "port": config.http.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": config.log.level,
        "access_log": config.log.access_log,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "server_header": False,
        "ssl_certfile": config.http.tls.certificate or None,
        "ssl_keyfile": config.http.tls.key or None,
        "proxy_headers": False,
    }
    if config.http.workers > 1:
        if config_path is not None:
            os.environ[CONFIG_FILE_ENV] = os.path.abspath(config_path)
        uvicorn.run(
            "registry.server:app_factory", factory=True, workers=config.http.workers, **options
        )
    else:
        uvicorn.run(create_app(config), **options)
    return 0
