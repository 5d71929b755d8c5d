"""Run the app under uvicorn (uvloop + httptools with the connection rules of
`registry.connections`), with graceful shutdown on SIGTERM/SIGINT and a reload of
`auth.policy` and `namespaces` on SIGHUP (registry/reload.py).

With `http.workers > 1` we run uvicorn's supervisor ourselves: its SIGHUP would restart every
worker; ours validates the configuration file once and, when it is valid, passes the signal
on to each worker, which reloads in place.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
from socket import socket as Socket
from typing import Any, cast

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from registry import reload
from registry.app import create_app
from registry.config import CONFIG_FILE_ENV, Config, load_config
from registry.connections import ConnectionRules, GuardedHttpProtocol, raise_open_files_limit

GRACEFUL_SHUTDOWN_SECONDS = 30
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as cli.py's


def app_factory() -> object:
    """Entry point for uvicorn worker processes, which re-read the configuration."""
    config = load_config(os.environ.get(CONFIG_FILE_ENV), os.environ)
    logging.basicConfig(level=config.log.level.upper(), format=LOG_FORMAT)
    return create_app(config, sighup="reload-quietly")


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, with SIGHUP a reload instead of a restart of every worker.

    SIGHUP stays blocked here (so workers start with it blocked, see reload.py); the main loop
    takes a pending one every half second."""

    def __init__(self, config: uvicorn.Config, sockets: list[Socket], running: Config) -> None:
        super().__init__(config, sockets)
        self.running = running

    def handle_signals(self) -> None:
        if signal.sigtimedwait({signal.SIGHUP}, 0) is not None:
            self.handle_hup()
        super().handle_signals()

    def handle_hup(self) -> None:
        new = reload.read(os.environ)
        if new is None:
            return
        reload.note_ignored(self.running, new)
        pids = [p.pid for p in self.processes if p.pid is not None and p.exitcode is None]
        for pid in pids:
            os.kill(pid, signal.SIGHUP)
        logging.getLogger("registry").info(
            "SIGHUP: configuration valid, reloading in workers %s", ", ".join(map(str, pids))
        )


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
    reload.block_sighup()  # until the serving process has its handler (reload.on_sighup)
    if config.http.workers > 1:
        return _supervise(config, options)
    uvicorn.run(create_app(config, sighup="reload"), **options)
    return 0


def _supervise(config: Config, options: dict[str, Any]) -> int:
    """uvicorn.run with workers, under our Supervisor."""
    server_config = uvicorn.Config(
        "registry.server:app_factory", factory=True, workers=config.http.workers, **options
    )
    sock = server_config.bind_socket()
    try:
        Supervisor(server_config, [sock], config).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
