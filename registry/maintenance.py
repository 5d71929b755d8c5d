"""Read-only maintenance mode: on by configuration, or by a flag object in storage that an
operator sets (`registry maintenance on`) and every replica polls, so all of them stop
accepting changes within a few seconds without a restart.

The answer is kept in memory between polls; a poll that fails keeps the last known answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from registry.storage import layout
from registry.storage.protocol import NotFound, Storage, StorageError

# Every replica polls the flag this often, so it takes effect everywhere within this (plus a
# poll's own duration: one stat).
POLL_INTERVAL_SECONDS = 2.0
READ_ONLY_MESSAGE = "registry is in read-only mode"
log = logging.getLogger("registry")


@dataclass(frozen=True, slots=True)
class Flag:
    """Who set the read-only flag and when (as the flag says; "unknown" if it does not)."""

    set_by: str
    set_at: str  # ISO 8601, UTC

    def encode(self) -> bytes:
        return json.dumps({"set_by": self.set_by, "set_at": self.set_at}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Flag:
        """Any object at the flag's key turns the mode on, whatever it holds (an operator
        may create it by hand)."""
        try:
            fields = json.loads(data)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            fields = {}
        return cls(str(fields.get("set_by", "unknown")), str(fields.get("set_at", "unknown")))


def new_flag(set_by: str) -> Flag:
    return Flag(set_by, datetime.now(UTC).isoformat(timespec="seconds"))


class ReadOnlyMode:
    """Whether the registry refuses changes: `configured`, or the flag in storage as last
    seen by `poll` (or changed through `set_flag`, `clear_flag`, `read_flag`)."""

    def __init__(self, storage: Storage, *, configured: bool = False) -> None:
        self.storage = storage
        self.configured = configured
        self.flagged = False
        self._poll_failing = False

    @property
    def active(self) -> bool:
        return self.configured or self.flagged

    async def read_flag(self) -> Flag | None:
        """The flag as stored now (None: not set); raises StorageError."""
        try:
            data, _ = await self.storage.get_bytes(layout.READ_ONLY_FLAG)
        except NotFound:
            self.flagged = False
            return None
        self.flagged = True
        return Flag.decode(data)

    async def set_flag(self, flag: Flag) -> None:
        await self.storage.put_bytes(layout.READ_ONLY_FLAG, flag.encode())
        self.flagged = True

    async def clear_flag(self) -> bool:
        """Remove the flag; False if it was not set."""
        removed = await self.storage.delete(layout.READ_ONLY_FLAG)
        self.flagged = False
        return removed

    async def poll(self) -> None:
        """Look whether the flag is set. A failure keeps the last answer and is logged once,
        until a poll succeeds again."""
        try:
            await self.storage.stat(layout.READ_ONLY_FLAG)
            flagged = True
        except NotFound:
            flagged = False
        except StorageError as exc:
            if not self._poll_failing:
                state = "on" if self.flagged else "off"
                log.warning(
                    "cannot read the read-only flag (keeping read-only %s meanwhile): %s",
                    state,
                    exc,
                )
            self._poll_failing = True
            return
        if self._poll_failing:
            log.warning("the read-only flag can be read again")
            self._poll_failing = False
        if flagged != self.flagged:
            state = "on" if flagged else "off"
            log.warning("read-only mode %s by the flag %s", state, layout.READ_ONLY_FLAG)
        self.flagged = flagged
