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

from registry.auth.authorizer import ANONYMOUS, Identity, Scope
from registry.auth.htpasswd import HtpasswdUsers
from registry.auth.policy import Policy
from registry.errors import AuthenticationRequired, ErrorCode, RegistryError, TooManyRequests

log = logging.getLogger("registry.auth")


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic` header; None when absent or empty."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if user or password else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


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

    def challenge(self, message: str) -> AuthenticationRequired:
        return AuthenticationRequired(message, f'Basic realm="{self.realm}", charset="UTF-8"')

    def may(self, identity: Identity, access: Scope) -> bool:
        return self.policy.allows(identity, [access])

    async def authenticate(self, authorization: str, source: str) -> Identity:
        """Who the `Authorization: Basic` header names: anonymous without credentials; 401
        when they are wrong, 429 while the caller's address has failed too often."""
        credentials = basic_credentials(authorization)
        if credentials is None:
            return ANONYMOUS
        return await self.check(source, *credentials)

    async def check(self, source: str, user: str, password: str) -> Identity:
        """The identity of a user whose password is right (401/429 otherwise)."""
        wait = self.failed_logins.retry_after(source)
        if wait:
            raise TooManyRequests(f"too many failed logins from {source}; retry in {wait} s", wait)
        if not await anyio.to_thread.run_sync(self.users.check, user, password):
            self.failed_logins.record(source)
            log.warning("failed login for user %r from %s", user, source)
            raise self.challenge("invalid username or password")
        return Identity(user)

    async def authorize(
        self, request: Request, needed: list[Scope], *, login: bool = False
    ) -> Identity:
        identity = await self.authenticate(
            request.headers.get("authorization", ""), client_address(request)
        )
        allowed = self.policy.allows(identity, needed)
        if identity.anonymous and (login or not allowed):
            raise self.challenge("authentication required")
        if not allowed:
            raise RegistryError(ErrorCode.DENIED, detail=[str(access) for access in needed])
        return identity
