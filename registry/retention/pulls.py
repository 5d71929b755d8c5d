"""Pull records: when a manifest of a repository was last pulled (a GET by tag or digest, not
a HEAD), for retention's `keep_pulled_days`.

A record is an empty object (layout.pulled) whose modification time is the pull time. Written
cheaply: at most once per repository and digest per process and RECORD_EVERY_SECONDS (so a
pull time is at most that much older than the last pull), as a background task the request
never waits for; when WRITES_AT_ONCE writes are already under way, a pull is not recorded
(the next one after the busy spell is). A failed write is logged and forgotten. What this
process wrote lately is remembered in a bounded map, cleared when full.
"""

from __future__ import annotations

import asyncio
import logging
import time

from registry.digest import Digest
from registry.storage import layout
from registry.storage.protocol import Storage

log = logging.getLogger("registry.retention")
RECORD_EVERY_SECONDS = 3600.0
REMEMBERED = 10_000
WRITES_AT_ONCE = 8


class PullRecorder:
    def __init__(
        self,
        storage: Storage,
        every: float = RECORD_EVERY_SECONDS,
        remembered: int = REMEMBERED,
        at_once: int = WRITES_AT_ONCE,
    ) -> None:
        self.storage = storage
        self.every = every
        self.remembered = remembered
        self.at_once = at_once
        self._written: dict[tuple[str, Digest], float] = {}  # monotonic time of the write
        self._writing: set[asyncio.Task[None]] = set()

    def record(self, name: str, digest: Digest) -> None:
        """Note a pull now; returns at once (the write, if due, runs in the background)."""
        key, now = (name, digest), time.monotonic()
        last = self._written.get(key)
        if last is not None and now - last < self.every:
            return
        if len(self._writing) >= self.at_once:
            return  # saturated: a later pull records it
        if len(self._written) >= self.remembered:
            self._written.clear()
        self._written[key] = now
        task = asyncio.get_running_loop().create_task(self._write(key, now))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, key: tuple[str, Digest], when: float) -> None:
        name, digest = key
        try:
            await self.storage.put_bytes(layout.pulled(name, digest), b"")
        except Exception as exc:  # never the request's problem
            log.warning("retention: could not record a pull of %s@%s: %s", name, digest, exc)
            if self._written.get(key) == when:
                del self._written[key]  # the next pull tries again

    async def flush(self) -> None:
        """Wait for the writes under way."""
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
