"""Parallel logins of one user from one address, with the password check paused: guesses
sent all at once get no more checks than the free failures allow, while the right password
sent on many parallel requests (docker pushing layers with Basic credentials) only waits."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import anyio
import anyio.from_thread
import pytest
from starlette.applications import Starlette

from registry.auth.basic import BasicAuthorizer
from registry.auth.htpasswd import HtpasswdUsers, add_user
from registry.auth.login_limits import FREE_FAILURES
from tests.inprocess.asgi import call
from tests.inprocess.conftest import app_on

pytestmark = pytest.mark.anyio
PARALLEL = FREE_FAILURES + 3
GATE_TIMEOUT_SECONDS = 10


class GatedUsers(HtpasswdUsers):
    """The real users, with every password check held at a gate until the test opens it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self.started = 0
        self.free_checks_started = anyio.Event()

    def verify(self, user: str, password: str) -> str | None:
        with self._lock:
            self.started += 1
            started = self.started
        if started == FREE_FAILURES:
            anyio.from_thread.run_sync(self.free_checks_started.set)
        assert self.gate.wait(GATE_TIMEOUT_SECONDS)
        return super().verify(user, password)


def gated_app(tmp_path: Path) -> tuple[Starlette, GatedUsers]:
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", "secret")
    app = app_on(
        tmp_path / "storage",
        REGISTRY_AUTH_MODE="htpasswd",
        REGISTRY_AUTH_HTPASSWD_PATH=str(htpasswd),
    )
    authorizer = app.state.authorizer
    assert isinstance(authorizer, BasicAuthorizer)
    users = authorizer.users = GatedUsers(htpasswd)
    return app, users


async def parallel_logins(app: Starlette, users: GatedUsers, password: str) -> list[int]:
    """PARALLEL logins at once; returns their statuses once the gate opened, after checking
    that no more than FREE_FAILURES checks started while it was closed."""
    authorization = "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()
    statuses: list[int] = []

    async def login() -> None:
        response = await call(app, "GET", "/v2/", {"authorization": authorization})
        statuses.append(response.status)

    with anyio.fail_after(GATE_TIMEOUT_SECONDS):
        async with anyio.create_task_group() as logins:
            for _ in range(PARALLEL):
                logins.start_soon(login)
            await users.free_checks_started.wait()
            await anyio.sleep(0.3)  # time for any further check to start, were it allowed
            assert users.started == FREE_FAILURES and statuses == []
            users.gate.set()
    return sorted(statuses)


async def test_guesses_sent_at_once_get_only_the_free_checks(tmp_path: Path) -> None:
    app, users = gated_app(tmp_path)
    statuses = await parallel_logins(app, users, "guess")
    assert statuses == [401] * FREE_FAILURES + [429] * (PARALLEL - FREE_FAILURES)
    assert users.started == FREE_FAILURES


async def test_the_right_password_on_parallel_requests_waits_and_succeeds(
    tmp_path: Path,
) -> None:
    app, users = gated_app(tmp_path)
    assert await parallel_logins(app, users, "secret") == [200] * PARALLEL
    assert users.started == PARALLEL
