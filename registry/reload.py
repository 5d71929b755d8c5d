"""Reload without restart: on SIGHUP a serving process re-reads its configuration file and
swaps in the new `auth.policy` and `namespaces` (docs/namespaces.md).

A file that fails validation is refused in one log line and the running configuration stays;
changes to any other section need a restart and are named in a log line. SIGHUP stays blocked
in a serving process (and so in the workers it spawns) until its handler is installed: a
signal sent while a worker starts waits for it instead of killing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import AsyncIterator, Mapping

from registry.auth.authorizer import Authorizer
from registry.auth.basic import BasicAuthorizer
from registry.auth.policy import Policy
from registry.auth.token import BearerAuthorizer
from registry.config import CONFIG_FILE_ENV, AuthConfig, Config, ConfigError, load_config
from registry.namespaces import Namespaces
from registry.wiring import Services

log = logging.getLogger("registry")
RELOADED = ("auth.policy", "namespaces")
REFUSED = "reload refused, keeping the running configuration: %s"


def block_sighup() -> None:
    """Hold SIGHUP pending in this thread (and the processes it starts) until `on_sighup`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def read(environ: Mapping[str, str]) -> Config | None:
    """The configuration as a start would read it now (`$REGISTRY_CONFIG` and environment);
    None, after one log line, when it is invalid."""
    try:
        return load_config(environ.get(CONFIG_FILE_ENV), environ)
    except ConfigError as exc:
        log.error(REFUSED, exc)
        return None


def needs_restart(running: Config, new: Config) -> list[str]:
    """The sections (auth: its keys) that differ between running and new other than the
    reloaded ones."""
    changed = []
    for section in dataclasses.fields(Config):
        if section.name == "namespaces":
            continue
        if section.name == "auth":
            for key in dataclasses.fields(AuthConfig):
                if key.name != "policy" and getattr(running.auth, key.name) != getattr(
                    new.auth, key.name
                ):
                    changed.append(f"auth.{key.name}")
        elif getattr(running, section.name) != getattr(new, section.name):
            changed.append(section.name)
    return changed


def note_ignored(running: Config, new: Config) -> None:
    changed = needs_restart(running, new)
    if changed:
        log.warning(
            "reload: %s changed, which takes a restart: the running values stay (reloaded: %s)",
            ", ".join(changed),
            " and ".join(RELOADED),
        )


def _basic(authorizer: Authorizer) -> BasicAuthorizer | None:
    if isinstance(authorizer, BasicAuthorizer):
        return authorizer
    if isinstance(authorizer, BearerAuthorizer):
        return authorizer.basic
    return None  # auth.mode none: no policy


def apply(services: Services, new: Config) -> None:
    """Swap in the new `namespaces` and `auth.policy` (each object replaced as a whole)."""
    namespaces = Namespaces(new.namespaces)
    basic = _basic(services.authorizer)
    if basic is not None:
        basic.policy = Policy(new.auth.policy, namespaces)
    services.registry.namespaces = namespaces
    log.info(
        "configuration reloaded in process %d: auth.policy (%d rules), namespaces (%d)",
        os.getpid(),
        len(new.auth.policy.rules),
        len(namespaces),
    )


def reload(services: Services, environ: Mapping[str, str], *, quiet: bool = False) -> bool:
    """Re-read the configuration and apply it; whether it was valid. `quiet`: leave the note
    about sections that need a restart to the supervisor (it logs it once for all workers)."""
    new = read(environ)
    if new is None:
        return False
    if not quiet:
        note_ignored(services.config, new)
    apply(services, new)
    return True


@contextlib.asynccontextmanager
async def on_sighup(services: Services, *, quiet: bool = False) -> AsyncIterator[None]:
    """Reload on SIGHUP while serving (in the main thread of the serving process)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: reload(services, os.environ, quiet=quiet))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})  # a pending one runs now
    try:
        yield
    finally:
        block_sighup()
        loop.remove_signal_handler(signal.SIGHUP)
