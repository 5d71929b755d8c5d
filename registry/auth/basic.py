"""auth.mode: htpasswd — HTTP Basic credentials checked against an htpasswd file.

A caller without credentials gets `401` with a `Basic` challenge (so clients log in); an
authenticated caller the policy refuses gets `403 DENIED`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections import deque

import anyio.to_thread
from starlette.requests import Request

from registry.auth.base import ANONYMOUS, Access, Identity
from registry.auth.htpasswd import HtpasswdUsers
from registry.auth.policy import Policy
from registry.errors import ErrorCode, RegistryError

log = logging.getLogger("registry.auth")


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic` header; None when absent or empty."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if user or password else None


FAILED_LOGIN_LIMIT = 10
FAILED_LOGIN_WINDOW_SECONDS = 60.0
MAX_TRACKED_SOURCES = 10_000


class FailedLogins:
    """Failed logins per source address within a sliding window (kept per process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(source, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, source: str) -> int:
        """Seconds the source must wait, or 0 if it may try now."""
        now = time.monotonic()
        failures = self._recent(source, now)
        if len(failures) < self.limit:
            if not failures:
                self._failures.pop(source, None)
            return 0
        return max(1, int(failures[0] + self.window - now) + 1)

    def record(self, source: str) -> None:
        now = time.monotonic()
        if len(self._failures) > MAX_TRACKED_SOURCES:  # bound memory under a spray of sources
            for other in list(self._failures):
                if not self._recent(other, now):
                    del self._failures[other]
        self._recent(source, now).append(now)


class BasicAuthorizer:
    def __init__(self, users: HtpasswdUsers, policy: Policy, realm: str) -> None:
        self.users = users
        self.policy = policy
        self.realm = realm
        self.failed_logins = FailedLogins(FAILED_LOGIN_LIMIT, FAILED_LOGIN_WINDOW_SECONDS)

    def _challenge(self, message: str) -> RegistryError:
        return RegistryError(
            ErrorCode.UNAUTHORIZED,
            message,
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'},
        )

    def may(self, identity: Identity, access: Access) -> bool:
        return self.policy.allows(identity, [access])

    async def authenticate(self, request: Request) -> Identity:
        """Who the Basic credentials name: anonymous without any; 401 when they are wrong,
        429 while the caller's address has failed too often."""
        credentials = basic_credentials(request)
        if credentials is None:
            return ANONYMOUS
        return await self.check(request, *credentials)

    async def check(self, request: Request, user: str, password: str) -> Identity:
        """The identity of a user whose password is right (401/429 otherwise)."""
        source = request.client.host if request.client else "?"
        wait = self.failed_logins.retry_after(source)
        if wait:
            raise RegistryError(
                ErrorCode.TOOMANYREQUESTS,
                f"too many failed logins from {source}; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        if not await anyio.to_thread.run_sync(self.users.check, user, password):
            self.failed_logins.record(source)
            log.warning("failed login for user %r from %s", user, source)
            raise self._challenge("invalid username or password")
        return Identity(user)

    async def authorize(
        self, request: Request, needed: list[Access], *, login: bool = False
    ) -> Identity:
        identity = await self.authenticate(request)
        allowed = self.policy.allows(identity, needed)
        if identity.anonymous and (login or not allowed):
            raise self._challenge("authentication required")
        if not allowed:
            raise RegistryError(
                ErrorCode.DENIED, detail=[str(access) for access in needed], status=403
            )
        return identity
