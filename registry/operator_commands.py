"""The operator commands that work on the registry's storage: `registry gc`, `registry
maintenance on|off|status` and `registry repo delete NAME`. Each builds the services the
server builds (`wiring.build`), calls them and prints; `cli.py` parses the arguments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from registry import wiring
from registry.config import Config
from registry.errors import ErrorCode, RegistryError
from registry.gc.collector import Collector
from registry.gc.lease import LeaseHeld, LeaseLost
from registry.gc.schedule import describe
from registry.maintenance import POLL_INTERVAL_SECONDS, ReadOnlyMode, new_flag
from registry.repository_delete import BLOB_LINK, MANIFEST, TAG, delete_repository
from registry.service import Registry, StorageError
from registry.storage import layout

CONFIG_KEY = "storage.maintenance.readonly.enabled"
# The CPU priority a collection lowers itself by (nice), below the servers it runs beside.
NICENESS = 10
PLURAL = {TAG: "tags", MANIFEST: "manifests", BLOB_LINK: "blob_links"}


def collect_garbage(
    config: Config,
    dry_run: bool,
    grace: float | None,
    settle: float | None,
    as_json: bool,
    retention: bool = False,
) -> int:
    """One collection (see docs/gc.md), after retention with `retention`
    (docs/retention.md); its summary, as one JSON line with as_json."""
    with contextlib.suppress(OSError):  # serving comes first on a shared machine
        os.nice(NICENESS)
    settings = wiring.gc_settings(config, blob_grace=grace, settle=settle, retention=retention)
    if settings.settle < config.gc.settle:
        logging.getLogger("registry.gc").warning(
            "--settle %gs is shorter than gc.settle (%gs): replicas trust a repository's catalog "
            "entry for a third of their gc.settle, and the settle must outlast that",
            settings.settle,
            config.gc.settle,
        )

    async def collect(registry: Registry) -> int:
        try:
            summary = await Collector(registry, settings).collect(dry_run)
        except LeaseHeld as exc:
            print(f"registry gc: another collector is running: lease {exc}", file=sys.stderr)
            return 1
        except LeaseLost as exc:
            print(f"registry gc: stopped: {exc}", file=sys.stderr)
            return 1
        print(summary.as_json() if as_json else describe(summary))
        return 0

    return run_on_registry(config, collect)


def maintenance(config: Config, action: str, as_json: bool) -> int:
    """Set (`on`), remove (`off`) or show (`status`) the read-only flag; then print the mode."""
    return run_on_registry(
        config, lambda registry: _maintenance(registry.maintenance, action, as_json)
    )


def delete_repo(
    config: Config, name: str, dry_run: bool, as_json: bool, force: bool = False
) -> int:
    settle = config.gc.settle
    return run_on_registry(
        config, lambda registry: _delete_repo(registry, name, settle, dry_run, as_json, force)
    )


def run_on_registry(config: Config, command: Callable[[Registry], Awaitable[int]]) -> int:
    """Exit status of command run on the configured registry; storage and registry errors
    are one line on stderr and status 1."""
    services = wiring.build(config)

    async def run() -> int:
        try:
            return await command(services.registry)
        finally:
            await services.storage.aclose()

    try:
        return anyio.run(run)
    except StorageError as exc:
        print(f"registry: storage error: {exc}", file=sys.stderr)
    except RegistryError as exc:
        print(f"registry: {_explained(exc)}", file=sys.stderr)
    return 1


def _explained(error: RegistryError) -> str:
    if error.code is ErrorCode.NAME_UNKNOWN and isinstance(error.detail, dict):
        return f"NAME_UNKNOWN: no repository {error.detail['name']} in the catalog"
    return f"{error.code.name}: {error.message}"


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def _maintenance(mode: ReadOnlyMode, action: str, as_json: bool) -> int:
    if action == "on":
        await mode.set_flag(new_flag(_operator()))
    elif action == "off":
        await mode.clear_flag()
    flag = await mode.read_flag()
    if as_json:
        document = {
            "read_only": mode.active,
            "configured": mode.configured,
            "flag": dataclasses.asdict(flag) if flag is not None else None,
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"read-only mode: {'on' if mode.active else 'off'}")
        if flag is not None:
            print(f"  flag {layout.READ_ONLY_FLAG}: set by {flag.set_by} at {flag.set_at}")
        else:
            print(f"  flag {layout.READ_ONLY_FLAG}: not set")
        print(f"  configuration {CONFIG_KEY}: {str(mode.configured).lower()}")
    if action in ("on", "off"):
        polled = f"they poll the flag every {POLL_INTERVAL_SECONDS:g} s"
        print(f"registry: every replica follows within seconds ({polled})", file=sys.stderr)
    if action == "off" and mode.active:
        print(f"registry: still read-only: {CONFIG_KEY} is true", file=sys.stderr)
        return 1
    return 0


async def _delete_repo(
    registry: Registry, name: str, settle: float, dry_run: bool, as_json: bool, force: bool
) -> int:
    items: dict[str, list[str]] = {plural: [] for plural in PLURAL.values()}

    def report(kind: str, item: str) -> None:
        if as_json:
            items[PLURAL[kind]].append(item)
        else:
            print(f"would remove {kind} {item}")

    if dry_run:
        deletion = await delete_repository(
            registry, name, settle=settle, dry_run=True, force=force, report=report
        )
    else:
        deletion = await delete_repository(registry, name, settle=settle, force=force)
    counts = {PLURAL[TAG]: deletion.tags, PLURAL[MANIFEST]: deletion.manifests}
    counts[PLURAL[BLOB_LINK]] = deletion.blob_links
    if as_json:
        document: dict[str, Any] = {"repository": name, "dry_run": dry_run, **counts}
        if dry_run:
            document["items"] = items
        else:
            document["pushed_meanwhile"] = deletion.pushed_meanwhile
        print(json.dumps(document, indent=2))
    else:
        what = ", ".join(f"{count} {plural.replace('_', ' ')}" for plural, count in counts.items())
        if dry_run:
            print(f"dry run: {name}: would remove {what}; nothing was changed")
        else:
            print(f"{name}: removed {what}; its blobs stay until garbage collection")
    if deletion.pushed_meanwhile:
        print(
            f"registry: a push to {name} ran during the delete; what it wrote stays, and so does"
            " the repository (run the command again)",
            file=sys.stderr,
        )
        return 1
    return 0
