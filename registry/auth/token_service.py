"""What the token endpoint (`GET`/`POST /token`) does: who asks, what they may have, and the
token document they get.

The HTTP handler reads the request into a `TokenRequest` and calls `TokenService.respond`;
a malformed request is a `TokenRequestInvalid` carrying its RFC 6749 (section 5.2) error code.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import jwt

from registry.auth.authorizer import Identity, Scope
from registry.auth.basic import BasicAuthorizer
from registry.auth.credentials import clip
from registry.auth.token import CREDENTIAL_CLAIM, TokenAuthority


class TokenRequestInvalid(ValueError):
    """A token request we cannot read; `error` is its OAuth 2 code (`invalid_request`, ...)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class BasicCredentials:
    """`GET /token`: the `Authorization` header as sent (anonymous without credentials)."""

    authorization: str


@dataclass(frozen=True)
class PasswordGrant:
    username: str
    password: str


@dataclass(frozen=True)
class RefreshGrant:
    refresh_token: str


Grant = BasicCredentials | PasswordGrant | RefreshGrant


@dataclass(frozen=True)
class TokenRequest:
    grant: Grant
    scopes: list[Scope]
    offline: bool  # a refresh token is wanted too
    oauth: bool  # answer the OAuth 2 fields (`POST /token`)
    source: str  # the caller's address, for the failed-login limit


class TokenService:
    def __init__(self, authority: TokenAuthority, basic: BasicAuthorizer) -> None:
        self._authority = authority
        self._basic = basic

    async def respond(self, request: TokenRequest) -> dict[str, Any]:
        """The token document: an access token granting what was asked that the policy
        allows (a partial grant is no error), and a refresh token when one was asked for."""
        identity = await self._identify(request)
        granted = self._basic.policy.grant(identity, request.scopes)
        subject = identity.user or ""
        token, issued = await self._authority.issue(subject, granted)
        document: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self._authority.settings.expires_in,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued)),
        }
        if request.oauth:
            document["scope"] = " ".join(str(scope) for scope in granted)
        if request.offline and identity.credential is not None:
            document["refresh_token"] = await self._authority.issue_refresh_token(
                subject, identity.credential
            )
        return document

    async def _identify(self, request: TokenRequest) -> Identity:
        match request.grant:
            case BasicCredentials(authorization):
                return await self._basic.authenticate(authorization, request.source)
            case PasswordGrant(username, password):
                return await self._basic.check(request.source, username, password)
            case RefreshGrant(refresh_token):
                return await self._refreshed(refresh_token)

    async def _refreshed(self, refresh_token: str) -> Identity:
        """The user of a valid refresh token whose htpasswd entry is still the one it was
        issued for: removing the user or changing the password revokes their refresh tokens."""
        try:
            claims = await self._authority.verify(refresh_token, refresh=True)
        except jwt.InvalidTokenError as exc:
            message = f"invalid refresh token: {clip(str(exc), 200)}"
            raise self._basic.challenge(message) from None
        subject, bound = claims.get("sub"), claims.get(CREDENTIAL_CLAIM)
        if not isinstance(subject, str) or not subject or not isinstance(bound, str):
            raise self._basic.challenge("invalid refresh token: no user or credential claim")
        current = await anyio.to_thread.run_sync(self._basic.users.fingerprint, subject)
        if current is None or not hmac.compare_digest(current.encode(), bound.encode()):
            raise self._basic.challenge(
                "refresh token revoked: the user was removed or the password changed"
            )
        return Identity(subject, current)

    async def jwks(self) -> dict[str, Any]:
        """Our verification key as a JWK Set, for other verifiers."""
        return await self._authority.jwks()
