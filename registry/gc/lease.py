"""The one lease that lets a single process in the whole deployment collect at a time.

`gc/lease` holds `{"holder", "run", "expires"}`. It is created with put-if-absent, renewed by
its holder with compare-and-swap, and taken over with compare-and-swap once expired; expiry is
judged by the clock of the process that reads it (replicas are assumed to keep their clocks
within a few seconds, as NTP does). A holder that fails to renew stops collecting before its
lease can expire, so two collectors never delete at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass

from registry.storage import layout
from registry.storage.protocol import NotFound, PreconditionFailed, Storage

# Long enough to ride out a storage that answers slowly for minutes (an S3 call may take
# its read timeout times its attempts); what a dead collector costs: the next run waits it out.
LEASE_SECONDS = 300.0
RENEW_EVERY_SECONDS = 20.0
# A holder stops collecting when less than this is left of its lease and it could not renew.
SAFETY_MARGIN_SECONDS = 60.0


class LeaseHeld(Exception):
    """Another collector holds the lease."""

    def __init__(self, holder: str, run: str, expires: float) -> None:
        left = max(0.0, expires - time.time())
        super().__init__(f"held by {holder} (run {run}, expires in {left:.0f}s)")
        self.holder = holder


class LeaseLost(Exception):
    """Our lease was taken over or could not be renewed in time."""


@dataclass(frozen=True, slots=True)
class _State:
    holder: str
    run: str
    expires: float


def _decode(data: bytes) -> _State | None:
    try:
        document = json.loads(data)
        return _State(str(document["holder"]), str(document["run"]), float(document["expires"]))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treated as expired, and taken over


def default_holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class Lease:
    def __init__(self, storage: Storage, holder: str | None = None) -> None:
        self.storage = storage
        self.holder = holder or default_holder()
        self.run = uuid.uuid4().hex[:16]
        self.expires = 0.0
        self._version: str | None = None

    def _body(self, expires: float) -> bytes:
        return json.dumps({"holder": self.holder, "run": self.run, "expires": expires}).encode()

    async def acquire(self) -> None:
        """Take the lease; raises LeaseHeld when a live one is someone else's."""
        expires = time.time() + LEASE_SECONDS
        if await self.storage.put_if_absent(layout.GC_LEASE, self._body(expires)):
            self._version = (await self.storage.get_bytes(layout.GC_LEASE))[1]
            self.expires = expires
            return
        try:
            data, version = await self.storage.get_bytes(layout.GC_LEASE)
        except NotFound:  # released meanwhile: try once more from the start
            return await self.acquire()
        state = _decode(data)
        if state is not None and state.expires > time.time():
            raise LeaseHeld(state.holder, state.run, state.expires)
        try:
            self._version = await self.storage.compare_and_swap(
                layout.GC_LEASE, self._body(expires), version
            )
        except PreconditionFailed:  # another collector took it over first
            return await self.acquire()
        self.expires = expires

    async def renew(self) -> None:
        """Extend the lease; raises LeaseLost if it is no longer ours."""
        if self._version is None:
            raise LeaseLost("not held")
        expires = time.time() + LEASE_SECONDS
        body = self._body(expires)
        try:
            self._version = await self.storage.compare_and_swap(
                layout.GC_LEASE, body, self._version
            )
        except PreconditionFailed:
            # A retried write whose first attempt landed (its answer lost) fails like this
            # too: the lease is still ours if it holds what we wrote.
            try:
                data, version = await self.storage.get_bytes(layout.GC_LEASE)
            except NotFound:
                data, version = b"", ""
            if data != body:
                self._version = None
                raise LeaseLost("the lease was taken over") from None
            self._version = version
        self.expires = expires

    def check(self) -> None:
        """Raise LeaseLost unless the lease is safely ours for a while yet."""
        if self._version is None:
            raise LeaseLost("the lease was taken over")
        left = self.expires - time.time()
        if left < SAFETY_MARGIN_SECONDS:
            raise LeaseLost(f"the lease could not be renewed in time ({left:.0f}s left)")

    async def release(self) -> None:
        if self._version is not None:
            await self.storage.delete_if_version(layout.GC_LEASE, self._version)
            self._version = None
