"""Scheduled collection: every replica with `gc.enabled` checks now and then whether the last
collection anywhere in the deployment ended more than `interval` ago, and if so runs one; the
lease lets exactly one replica's collection go on.

A collection runs as a child process (`registry gc --json --retention`, reading the same
configuration; tag retention runs first, under the collection's lease): its memory goes when
it ends, it runs at a lower CPU priority than the requests it shares the machine with, and it
stays out of the serving event loop. Its logs join the server's.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import anyio

from registry.gc.collector import Summary
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import NotFound

log = logging.getLogger("registry.gc")
# Retention first, under the collection's lease: what it untags is collected in the same run.
COMMAND = (sys.executable, "-m", "registry", "gc", "--json", "--retention")


async def last_finished(registry: Registry) -> float:
    """When the last collection ended (0 if none did), by its collector's clock."""
    try:
        data, _ = await registry.storage.get_bytes(layout.GC_LAST_RUN)
        return float(json.loads(data)["finished"])
    except NotFound:
        return 0.0
    except (ValueError, KeyError, TypeError):
        return 0.0  # unreadable: a collection is due, the lease still allows only one


async def collect_if_due(registry: Registry, interval: float) -> None:
    if registry.read_only or time.time() - await last_finished(registry) < interval:
        return
    done = await anyio.run_process(
        COMMAND, stdin=subprocess.DEVNULL, stderr=None, check=False
    )  # the configuration comes with the environment (REGISTRY_CONFIG and overrides)
    if done.returncode != 0:  # e.g. another replica collects: its reason is in the log
        log.info("gc: the scheduled collection ended with status %d", done.returncode)
        return
    summary = Summary(**json.loads(done.stdout.decode().splitlines()[-1]))
    log.info("gc: %s", describe(summary))


def describe(summary: Summary) -> str:
    """One line for people."""
    verb = "would delete" if summary.dry_run else "deleted"
    freed = _size(summary.bytes_freed)
    text = (
        f"{verb} {summary.manifests_deleted} manifests, {summary.links_deleted} links, "
        f"{summary.blobs_deleted} blobs ({freed}), {summary.repositories_deleted} repositories "
        f"in {summary.duration_seconds:.1f}s"
    )
    if summary.tags_deleted:
        text += f"; retention {verb} {summary.tags_deleted} tags first"
    if summary.rescued:
        text += f"; {summary.rescued} kept because clients used them meanwhile"
    if summary.leftovers_cleared:
        text += f"; cleared {summary.leftovers_cleared} tombstones of an interrupted run"
    if summary.uploads_purged:
        text += f"; purged {summary.uploads_purged} abandoned upload objects"
    return text


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
