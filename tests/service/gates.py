"""A storage driver wrapper that stops one operation at a chosen storage call.

The operation to stop runs with `ACTOR` set (a context variable, so the tasks it starts for
concurrent calls carry it too); every other caller passes straight through. Its storage calls
are numbered in the order they start. At call `step` the gate either waits (before the call
reaches storage, or after it completed) until released, so the test can run another operation
to completion in between; or it crashes the operation: that call and every later call of the
actor raise `SimulatedCrash` without reaching storage, as if the process had died there (calls
already under way still finish, as they would have on the server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Literal

from registry.storage.protocol import Storage

ACTOR: ContextVar[str | None] = ContextVar("ACTOR", default=None)
GATED_CALLS = frozenset(
    {
        "stat",
        "get_bytes",
        "put_bytes",
        "put_if_absent",
        "compare_and_swap",
        "delete",
        "delete_if_version",
        "list",
        "move",
        "write",
    }
)
Mode = Literal["before", "after", "crash"]


class SimulatedCrash(BaseException):
    """The process died: nothing after this point of the operation reaches storage."""


class GatedStorage:
    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.actor: str | None = None
        self.step = 0
        self.mode: Mode = "before"
        self.calls: list[str] = []  # the actor's calls, "operation key", in start order
        self.reached = asyncio.Event()
        self.released = asyncio.Event()
        self.crashed = False

    def stop(self, actor: str, step: int, mode: Mode) -> None:
        """Stop `actor` at its `step`-th storage call (1-based) from now on."""
        self.actor, self.step, self.mode = actor, step, mode
        self.calls, self.crashed = [], False
        self.reached, self.released = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in GATED_CALLS:
            return attribute

        async def gated(*args: Any, **kwargs: Any) -> Any:
            return await self._gated(f"{name} {args[0]}", lambda: attribute(*args, **kwargs))

        return gated

    async def _gated(self, description: str, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.actor is None or ACTOR.get() != self.actor:
            return await call()
        if self.crashed:
            raise SimulatedCrash
        self.calls.append(description)
        number = len(self.calls)
        if number == self.step and self.mode == "crash":
            self.crashed = True
            self.reached.set()
            raise SimulatedCrash
        if number == self.step and self.mode == "before":
            self.reached.set()
            await self.released.wait()
        result = await call()
        if number == self.step and self.mode == "after":
            self.reached.set()
            await self.released.wait()
        return result
