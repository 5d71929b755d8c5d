"""The built-in Docker token service: `GET /token` (token.md) and `POST /token` (oauth.md)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.api.base import read_bounded
from registry.auth.base import ANONYMOUS, Access, Identity
from registry.auth.scopes import parse_scopes
from registry.auth.token import BearerAuthorizer
from registry.errors import ErrorCode, RegistryError

MAX_FORM_BYTES = 64 * 1024


def _service(request: Request) -> BearerAuthorizer:
    authorizer = request.app.state.authorizer
    if not isinstance(authorizer, BearerAuthorizer):
        raise RegistryError(ErrorCode.UNSUPPORTED, "no token service here", status=404)
    return authorizer


async def _answer(
    service: BearerAuthorizer,
    identity: Identity,
    asked: list[Access],
    *,
    refresh: bool,
    oauth: bool,
) -> Response:
    granted = service.basic.policy.grant(identity, asked)
    subject = identity.user or ""
    token, issued = await service.authority.issue(subject, granted)
    document: dict[str, object] = {
        "token": token,
        "access_token": token,
        "expires_in": service.authority.settings.expires_in,
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued)),
    }
    if oauth:
        document["scope"] = " ".join(str(a) for a in granted)
    if refresh and not identity.anonymous:
        document["refresh_token"] = await service.authority.issue_refresh_token(subject)
    return JSONResponse(document, headers={"Cache-Control": "no-store"})


async def get_token(request: Request) -> Response:
    service = _service(request)
    identity = await service.basic.authenticate(request)
    asked = parse_scopes(request.query_params.getlist("scope"))
    refresh = request.query_params.get("offline_token", "").lower() == "true"
    return await _answer(service, identity, asked, refresh=refresh, oauth=False)


async def post_token(request: Request) -> Response:
    service = _service(request)
    too_large = RegistryError(ErrorCode.UNSUPPORTED, "form too large", status=400)
    body = await read_bounded(request, MAX_FORM_BYTES, too_large)
    form = {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}
    asked = parse_scopes([form.get("scope", "")])
    grant_type = form.get("grant_type")
    if grant_type == "password":
        identity = await service.basic.check(
            request, form.get("username", ""), form.get("password", "")
        )
    elif grant_type == "refresh_token":
        try:
            claims = await service.authority.verify(form.get("refresh_token", ""), refresh=True)
        except jwt.InvalidTokenError as exc:
            raise RegistryError(ErrorCode.UNAUTHORIZED, f"invalid refresh token: {exc}") from None
        identity = Identity(str(claims.get("sub"))) if claims.get("sub") else ANONYMOUS
    else:
        raise RegistryError(
            ErrorCode.UNSUPPORTED, f"unsupported grant_type {grant_type!r}", status=400
        )
    refresh = form.get("access_type") == "offline"
    return await _answer(service, identity, asked, refresh=refresh, oauth=True)


async def jwks(request: Request) -> Response:
    return JSONResponse(await _service(request).authority.jwks())
