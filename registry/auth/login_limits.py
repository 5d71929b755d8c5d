"""Failed logins, counted per (client address, user name), with an exponential lockout.

A few wrong passwords are free; from then on every failure locks that user out *from that
address* for twice as long as the one before, up to a cap, and a correct password clears
the count. Checks of one (address, user) run at most as many at a time as it has free
failures left (others wait their turn), so guesses sent all at once cannot all pass the
lockout test before the first of them has failed, while a client sending the right password
on many parallel requests is only queued, never refused. Other users behind the same
address (every user, behind a TLS proxy) are never held back. The table is per process
and bounded: a client trying millions of user names evicts the oldest entries, it cannot
grow the table (each try costs it a bcrypt check).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

FREE_FAILURES = 5
FIRST_LOCKOUT_SECONDS = 1.0
MAX_LOCKOUT_SECONDS = 900.0
# A user's count is forgotten this long after its last failure or lockout ended.
FORGET_AFTER_SECONDS = 900.0
MAX_TRACKED_LOGINS = 10_000


@dataclass
class _Failures:
    count: int
    locked_until: float
    last_failure: float

    def forgotten_at(self, forget_after: float) -> float:
        return max(self.locked_until, self.last_failure) + forget_after


class FailedLogins:
    def __init__(
        self,
        *,
        free_failures: int = FREE_FAILURES,
        first_lockout: float = FIRST_LOCKOUT_SECONDS,
        max_lockout: float = MAX_LOCKOUT_SECONDS,
        forget_after: float = FORGET_AFTER_SECONDS,
        capacity: int = MAX_TRACKED_LOGINS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures, self.first_lockout, self.max_lockout = (
            free_failures,
            first_lockout,
            max_lockout,
        )
        self.forget_after, self.capacity, self._clock = forget_after, capacity, clock
        # Ordered by last failure, oldest first: what is forgotten or evicted first.
        self._table: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        self._checking: dict[tuple[str, str], int] = {}  # checks under way
        self._check_ended: dict[tuple[str, str], anyio.Event] = {}

    def __len__(self) -> int:
        return len(self._table)

    def _forget_old(self, now: float) -> None:
        while self._table:
            oldest = next(iter(self._table.values()))
            if oldest.forgotten_at(self.forget_after) > now:
                break
            self._table.popitem(last=False)

    def _free_failures_left(self, key: tuple[str, str]) -> int:
        failures = self._table.get(key)
        return max(1, self.free_failures - (failures.count if failures else 0))

    @contextlib.asynccontextmanager
    async def turn(self, source: str, user: str) -> AsyncIterator[None]:
        """Waits until one more check of `user` from `source` may run (see the module doc);
        test `retry_after` inside, since the waiting may have ended in a lockout."""
        key = (source, user)
        while self._checking.get(key, 0) >= self._free_failures_left(key):
            ended = self._check_ended.setdefault(key, anyio.Event())
            await ended.wait()
        self._checking[key] = self._checking.get(key, 0) + 1
        try:
            yield
        finally:
            self._checking[key] -= 1
            if not self._checking[key]:
                del self._checking[key]
            if key in self._check_ended:
                self._check_ended.pop(key).set()

    def retry_after(self, source: str, user: str) -> int:
        """Whole seconds until `user` may try again from `source`; 0: now."""
        now = self._clock()
        self._forget_old(now)
        failures = self._table.get((source, user))
        if failures is None or failures.locked_until <= now:
            return 0
        return max(1, math.ceil(failures.locked_until - now))

    def record_failure(self, source: str, user: str) -> float:
        """Count a wrong password; the lockout it starts, in seconds (0: none yet)."""
        now = self._clock()
        self._forget_old(now)
        key = (source, user)
        failures = self._table.pop(key, None) or _Failures(0, now, now)
        failures.count += 1
        failures.last_failure = now
        lockout = 0.0
        excess = failures.count - self.free_failures
        if excess >= 0:
            lockout = min(self.first_lockout * 2 ** min(excess, 64), self.max_lockout)
            failures.locked_until = now + lockout
        while len(self._table) >= self.capacity:
            self._table.popitem(last=False)
        self._table[key] = failures
        return lockout

    def record_success(self, source: str, user: str) -> None:
        self._table.pop((source, user), None)
