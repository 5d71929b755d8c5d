"""auth.mode: token — Docker token authentication with our own token service.

The service (`GET`/`POST /token`) checks htpasswd credentials and issues JWTs granting the
asked scopes that the policy allows; the registry verifies them on every request and
challenges with `Bearer realm=..,service=..,scope=..` when a token is missing or too small.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import anyio
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request

from registry.api.forwarded import origin
from registry.auth.authorizer import ANONYMOUS, Identity, Scope
from registry.auth.basic import BasicAuthorizer, client_address, log_malformed
from registry.auth.credentials import MalformedCredentials, clip, loggable, parse_authorization
from registry.auth.keys import SharedKey, SigningKey, load_or_create
from registry.auth.scopes import covers, from_claim, to_claim
from registry.auth.trust import IssuerKeys
from registry.config import TrustedIssuer
from registry.errors import AuthenticationRequired

LEEWAY_SECONDS = 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
# The claim of a refresh token binding it to the htpasswd entry its user logged in with.
CREDENTIAL_CLAIM = "htpasswd_entry"


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    service: str
    realm: str  # absolute URL; empty: built from the external URL or the request
    expires_in: int
    key_file: str
    certificate: str = ""  # PEM chain for the key: sent as x5c so x509 verifiers accept us
    external_url: str = ""
    trusted: tuple[TrustedIssuer, ...] = ()


def x5c_chain(pem: bytes) -> list[str]:
    """The certificates of a PEM chain as a JWS `x5c` header (base64 DER, leaf first)."""
    return [
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
        for c in x509.load_pem_x509_certificates(pem)
    ]


class TokenAuthority:
    """Issues and verifies tokens with the shared signing key (loaded on first use)."""

    def __init__(self, settings: TokenSettings, shared_key: SharedKey) -> None:
        self.settings = settings
        self._shared_key = shared_key
        self._trusted = {t.issuer: IssuerKeys(t) for t in settings.trusted}
        self._key: SigningKey | None = None
        self._headers: dict[str, Any] = {}
        self._lock = anyio.Lock()

    async def key(self) -> SigningKey:
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    key = await load_or_create(self.settings.key_file, self._shared_key)
                    self._headers = {"kid": key.kid}
                    if self.settings.certificate:
                        chain = await anyio.Path(self.settings.certificate).read_bytes()
                        self._headers["x5c"] = x5c_chain(chain)
                    self._key = key
        return self._key

    async def issue(self, subject: str, access: list[Scope]) -> tuple[str, int]:
        key = await self.key()
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": self.settings.service,
            "iat": now,
            "nbf": now - 1,
            "exp": now + self.settings.expires_in,
            "jti": secrets.token_hex(16),
            "access": to_claim(access),
        }
        token = jwt.encode(claims, key.private, key.algorithm, headers=self._headers)
        return token, now

    async def issue_refresh_token(self, subject: str, credential: str) -> str:
        """A refresh token for `subject`, valid while its htpasswd entry keeps the
        fingerprint `credential` (see `htpasswd.entry_fingerprint`)."""
        key = await self.key()
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": f"{self.settings.service}#refresh",
            "iat": now,
            "exp": now + REFRESH_TOKEN_SECONDS,
            "jti": secrets.token_hex(16),
            CREDENTIAL_CLAIM: credential,
        }
        return jwt.encode(claims, key.private, key.algorithm, headers=self._headers)

    async def verify(self, token: str, *, refresh: bool = False) -> dict[str, Any]:
        """The claims of a valid token, ours or a trusted issuer's (never a refresh token of
        another issuer); raises jwt.InvalidTokenError otherwise."""
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        if not isinstance(issuer, str):
            raise jwt.InvalidIssuerError("the token names no issuer")
        if issuer == self.settings.issuer:
            key = await self.key()
            public: Any = key.public
            algorithm = key.algorithm
        elif issuer in self._trusted and not refresh:
            kid = jwt.get_unverified_header(token).get("kid")
            if kid is not None and not isinstance(kid, str):
                raise jwt.InvalidTokenError("the token's kid is not a string")
            try:
                public, algorithm = await self._trusted[issuer].key(kid)
            except (OSError, ValueError, jwt.PyJWKClientError) as exc:
                message = f"no usable key of issuer {loggable(issuer)}: {exc}"
                raise jwt.InvalidTokenError(message) from None
        else:
            raise jwt.InvalidIssuerError(f"untrusted issuer {loggable(issuer)}")
        audience = self.settings.service + ("#refresh" if refresh else "")
        claims: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud"]},
        )
        return claims

    async def jwks(self) -> dict[str, Any]:
        """Our verification key as a JWK Set, for other verifiers."""
        key = await self.key()
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.get_default_algorithms()[key.algorithm].to_jwk(key.public)
        )
        jwk.update({"kid": key.kid, "alg": key.algorithm, "use": "sig"})
        return {"keys": [jwk]}


class BearerAuthorizer:
    """Admits requests carrying a token that grants what the route needs."""

    def __init__(self, authority: TokenAuthority, basic: BasicAuthorizer) -> None:
        self.authority = authority
        self.basic = basic  # Basic credentials are accepted too (curl and CI scripts)

    def may(self, identity: Identity, access: Scope) -> bool:
        return self.basic.may(identity, access)

    def realm(self, request: Request) -> str:
        settings = self.authority.settings
        return settings.realm or (settings.external_url or origin(request)).rstrip("/") + "/token"

    def _challenge(
        self, request: Request, needed: list[Scope], error: str | None, message: str
    ) -> AuthenticationRequired:
        parts = [
            f'realm="{self.realm(request)}"',
            f'service="{self.authority.settings.service}"',
        ]
        if needed:
            parts.append(f'scope="{" ".join(str(a) for a in needed)}"')
        if error:
            parts.append(f'error="{error}"')
        return AuthenticationRequired(
            message, "Bearer " + ",".join(parts), detail=[str(a) for a in needed] or None
        )

    async def authorize(
        self, request: Request, needed: list[Scope], *, login: bool = False
    ) -> Identity:
        try:
            header = parse_authorization(request.headers.get("authorization", ""))
        except MalformedCredentials as problem:
            log_malformed(problem, client_address(request))
            message = f"malformed credentials: {problem}"
            raise self._challenge(request, needed, "invalid_request", message) from None
        if header is not None and header.scheme == "basic":
            return await self.basic.authorize(request, needed, login=login)
        if header is None or header.scheme != "bearer":
            raise self._challenge(request, needed, None, "authentication required")
        try:
            claims = await self.authority.verify(header.value)
        except jwt.InvalidTokenError as exc:
            message = f"invalid token: {clip(str(exc), 200)}"
            raise self._challenge(request, needed, "invalid_token", message) from None
        granted = from_claim(claims.get("access"))
        if not all(covers(granted, access) for access in needed):
            raise self._challenge(
                request, needed, "insufficient_scope", "the token does not grant this access"
            )
        subject = claims.get("sub") or None
        return Identity(str(subject)) if subject else ANONYMOUS
