"""The built-in Docker token service over HTTP: `GET /token` (token.md), `POST /token`
(oauth.md) and our verification key at `/token/jwks.json`.

Malformed requests are answered as RFC 6749 (section 5.2) says, `400` with
`{"error": "invalid_request" | "unsupported_grant_type" | "invalid_scope", ...}`; wrong
credentials get `401` with the OCI `UNAUTHORIZED` body, as on every other endpoint.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.api.errors import HttpError
from registry.api.requests import read_bounded
from registry.auth.authorizer import Scope
from registry.auth.basic import client_address
from registry.auth.credentials import (
    MAX_AUTHORIZATION_CHARS,
    MalformedCredentials,
    check_password,
    check_user,
    loggable,
)
from registry.auth.scopes import parse_scopes
from registry.auth.token_service import (
    BasicCredentials,
    Grant,
    PasswordGrant,
    RefreshGrant,
    TokenRequest,
    TokenRequestInvalid,
    TokenService,
)
from registry.errors import ErrorCode

MAX_FORM_BYTES = 64 * 1024  # also the longest query string of GET /token
MAX_REFRESH_TOKEN_CHARS = MAX_AUTHORIZATION_CHARS


def _service(request: Request) -> TokenService:
    service: TokenService | None = request.app.state.token_service
    if service is None:
        message = "no token service here (auth.mode is not token)"
        raise HttpError(404, ErrorCode.UNSUPPORTED, message)
    return service


def _invalid(error: TokenRequestInvalid) -> Response:
    document = {"error": error.error, "error_description": error.description}
    return JSONResponse(document, 400, {"Cache-Control": "no-store"})


async def _respond(service: TokenService, token_request: TokenRequest) -> Response:
    document = await service.respond(token_request)
    return JSONResponse(document, headers={"Cache-Control": "no-store"})


def _scopes(values: list[str]) -> list[Scope]:
    try:
        return parse_scopes(values)
    except ValueError as exc:
        raise TokenRequestInvalid("invalid_scope", str(exc)) from None


async def get_token(request: Request) -> Response:
    service = _service(request)
    try:
        if len(request.scope["query_string"]) > MAX_FORM_BYTES:
            message = f"query string longer than {MAX_FORM_BYTES} bytes"
            raise TokenRequestInvalid("invalid_request", message)
        scopes = _scopes(request.query_params.getlist("scope"))
    except TokenRequestInvalid as invalid:
        return _invalid(invalid)
    token_request = TokenRequest(
        BasicCredentials(request.headers.get("authorization", "")),
        scopes,
        offline=request.query_params.get("offline_token", "").lower() == "true",
        oauth=False,
        source=client_address(request),
    )
    return await _respond(service, token_request)


async def _form(request: Request) -> dict[str, str]:
    """The form's fields (the first value of each); TokenRequestInvalid if unreadable."""
    too_large = TokenRequestInvalid("invalid_request", f"form larger than {MAX_FORM_BYTES} bytes")
    body = await read_bounded(request, MAX_FORM_BYTES, too_large)
    try:
        fields = parse_qs(body.decode("ascii"), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise TokenRequestInvalid(
            "invalid_request", "the body is not an application/x-www-form-urlencoded form"
        ) from None
    return {key: values[0] for key, values in fields.items()}


def _grant(form: dict[str, str]) -> Grant:
    def required(field: str) -> str:
        value = form.get(field)
        if not value:
            raise TokenRequestInvalid("invalid_request", f"{field} is required")
        return value

    grant_type = required("grant_type")
    if grant_type == "password":
        username, password = required("username"), required("password")
        try:
            check_user(username)
            check_password(password)
        except MalformedCredentials as problem:
            raise TokenRequestInvalid("invalid_request", str(problem)) from None
        return PasswordGrant(username, password)
    if grant_type == "refresh_token":
        refresh_token = required("refresh_token")
        if len(refresh_token) > MAX_REFRESH_TOKEN_CHARS:
            message = f"refresh_token longer than {MAX_REFRESH_TOKEN_CHARS} characters"
            raise TokenRequestInvalid("invalid_request", message)
        return RefreshGrant(refresh_token)
    message = f"unsupported grant_type {loggable(grant_type)}"
    raise TokenRequestInvalid("unsupported_grant_type", message)


async def post_token(request: Request) -> Response:
    service = _service(request)
    try:
        form = await _form(request)
        token_request = TokenRequest(
            _grant(form),
            _scopes([form.get("scope", "")]),
            offline=form.get("access_type") == "offline",
            oauth=True,
            source=client_address(request),
        )
    except TokenRequestInvalid as invalid:
        return _invalid(invalid)
    return await _respond(service, token_request)


async def jwks(request: Request) -> Response:
    return JSONResponse(await _service(request).jwks())
