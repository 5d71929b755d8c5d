"""auth.mode: htpasswd — HTTP Basic credentials checked against an htpasswd file.

A caller without credentials gets `401` with a `Basic` challenge (so clients log in); so does
one whose credentials are wrong or unreadable; an authenticated caller the policy refuses
gets `403 DENIED`. Wrong passwords are limited per (address, user) (`login_limits.py`).
"""

from __future__ import annotations

import logging

import anyio.to_thread
from starlette.requests import Request

from registry.auth.authorizer import ANONYMOUS, Identity, Scope
from registry.auth.credentials import (
    MalformedCredentials,
    basic_credentials,
    loggable,
    parse_authorization,
)
from registry.auth.htpasswd import HtpasswdUsers
from registry.auth.login_limits import FailedLogins
from registry.auth.policy import Policy
from registry.errors import AuthenticationRequired, ErrorCode, RegistryError, TooManyRequests

log = logging.getLogger("registry.auth")


def client_address(request: Request) -> str:
    """The caller's address: the TCP peer, or the client a trusted proxy forwarded for
    (`api/forwarded.py` puts it in the request's scope)."""
    return request.client.host if request.client else "?"


def log_malformed(problem: MalformedCredentials, source: str) -> None:
    log.info("malformed credentials from %s: %s", source, problem)


class BasicAuthorizer:
    def __init__(
        self,
        users: HtpasswdUsers,
        policy: Policy,
        realm: str,
        failed_logins: FailedLogins | None = None,
    ) -> None:
        self.users = users
        self.policy = policy
        self.realm = realm
        self.failed_logins = failed_logins or FailedLogins()

    def challenge(self, message: str) -> AuthenticationRequired:
        return AuthenticationRequired(message, f'Basic realm="{self.realm}", charset="UTF-8"')

    def may(self, identity: Identity, access: Scope) -> bool:
        return self.policy.allows(identity, [access])

    def malformed(self, problem: MalformedCredentials, source: str) -> AuthenticationRequired:
        log_malformed(problem, source)
        return self.challenge(f"malformed credentials: {problem}")

    async def authenticate(self, authorization: str, source: str) -> Identity:
        """Who the `Authorization: Basic` header names: anonymous without credentials; 401
        when they are wrong, unreadable or of another scheme, 429 while this user is locked
        out from this address."""
        try:
            header = parse_authorization(authorization)
            if header is None:
                return ANONYMOUS
            if header.scheme != "basic":
                raise MalformedCredentials(f"expected Basic credentials, not {header.scheme}")
            credentials = basic_credentials(header.value)
        except MalformedCredentials as problem:
            raise self.malformed(problem, source) from None
        if credentials is None:
            return ANONYMOUS
        return await self.check(source, *credentials)

    async def check(self, source: str, user: str, password: str) -> Identity:
        """The identity of a user whose password is right (401/429 otherwise); `user` and
        `password` have passed `credentials.check_user`/`check_password`."""
        async with self.failed_logins.turn(source, user):
            wait = self.failed_logins.retry_after(source, user)
            if wait:
                message = f"too many failed logins for this user from {source}; retry in {wait} s"
                raise TooManyRequests(message, wait)
            credential = await anyio.to_thread.run_sync(self.users.verify, user, password)
            if credential is None:
                lockout = self.failed_logins.record_failure(source, user)
                log.warning(
                    "failed login for user %s from %s%s",
                    loggable(user),
                    source,
                    f"; locked out for {lockout:g} s" if lockout else "",
                )
                raise self.challenge("invalid username or password")
            self.failed_logins.record_success(source, user)
        return Identity(user, credential)

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
