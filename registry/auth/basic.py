"""auth.mode: htpasswd — HTTP Basic credentials checked against an htpasswd file.

A caller without credentials gets `401` with a `Basic` challenge (so clients log in); an
authenticated caller the policy refuses gets `403 DENIED`.
"""

from __future__ import annotations

import base64
import binascii
import logging

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


class BasicAuthorizer:
    def __init__(self, users: HtpasswdUsers, policy: Policy, realm: str) -> None:
        self.users = users
        self.policy = policy
        self.realm = realm

    def _challenge(self, message: str) -> RegistryError:
        return RegistryError(
            ErrorCode.UNAUTHORIZED,
            message,
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'},
        )

    async def authorize(
        self, request: Request, needed: list[Access], *, login: bool = False
    ) -> Identity:
        credentials = basic_credentials(request)
        identity = ANONYMOUS
        if credentials is not None:
            user, password = credentials
            if not await anyio.to_thread.run_sync(self.users.check, user, password):
                source = request.client.host if request.client else "?"
                log.warning("failed login for user %r from %s", user, source)
                raise self._challenge("invalid username or password")
            identity = Identity(user)
        if identity.anonymous and (login or not self.policy.allows(identity, needed)):
            raise self._challenge("authentication required")
        if not self.policy.allows(identity, needed):
            raise RegistryError(
                ErrorCode.DENIED, detail=[str(access) for access in needed], status=403
            )
        return identity
