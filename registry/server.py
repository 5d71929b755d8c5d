"""Run the app under uvicorn (uvloop + httptools with the connection rules of
`registry.connections`), with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from typing import Any, cast

import uvicorn

from registry.app import create_app
from registry.config import CONFIG_FILE_ENV, Config, load_config
from registry.connections import ConnectionRules, GuardedHttpProtocol, raise_open_files_limit

GRACEFUL_SHUTDOWN_SECONDS = 30


def app_factory() -> object:
    """Entry point for uvicorn worker processes, which re-read the configuration."""
    return create_app(load_config(os.environ.get(CONFIG_FILE_ENV), os.environ))


def _ipv6_available() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


def listen_host(host: str, workers: int) -> str:
    """What uvicorn binds for the configured host; `` (an address like `:5000`) means every
    interface, IPv4 and IPv6. One process binds both itself (host ``); several share one
    dual-stack socket (`::`), or an IPv4 one where IPv6 is off."""
    if host or workers == 1:
        return host
    return "::" if _ipv6_available() else "0.0.0.0"


def http_protocol(config: Config) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol bound to the configured connection rules (a partial, so
    that worker processes can be handed it)."""
    connections = raise_open_files_limit(config.http.limits.connections)
    rules = ConnectionRules.of(config.http, connections)
    return cast(type[asyncio.Protocol], functools.partial(GuardedHttpProtocol, rules=rules))


def serve(config: Config, config_path: str | None) -> int:
    options: dict[str, Any] = {
        "host": listen_host(config.http.host, config.http.workers),
        "port": config.http.port,
        "loop": "uvloop",
        "http": http_protocol(config),
        "ws": "none",
        "timeout_keep_alive": config.http.timeouts.idle,
        "log_level": config.log.level,
        "access_log": config.log.access_log,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "server_header": False,
        "ssl_certfile": config.http.tls.certificate or None,
        "ssl_keyfile": config.http.tls.key or None,
        "proxy_headers": False,
    }
    if config_path is not None:  # for worker processes and scheduled collections (gc)
        os.environ[CONFIG_FILE_ENV] = os.path.abspath(config_path)
    if config.http.workers > 1:
        uvicorn.run(
            "registry.server:app_factory", factory=True, workers=config.http.workers, **options
        )
    else:
        uvicorn.run(create_app(config), **options)
    return 0
