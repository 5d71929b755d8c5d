"""Background jobs of a serving process: one job run again and again, at a fixed interval."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

log = logging.getLogger("registry")


async def every(interval: float, what: str, job: Callable[[], Awaitable[object]]) -> None:
    """Run job now and then every `interval` seconds, until cancelled. A failure is logged and
    the next run comes as planned: housekeeping must never take the server down with it."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s failed", what)
        await anyio.sleep(interval)
