"""create_app(config): the Starlette application, its storage lifecycle and error rendering.

Errors are rendered in one place: every RegistryError becomes an OCI error body, router
misses become OCI 404/405 bodies, storage outages become 503, anything else a logged 500.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry import memory
from registry.auth.base import Authorizer, OpenAuthorizer
from registry.auth.basic import BasicAuthorizer
from registry.auth.htpasswd import HtpasswdUsers
from registry.auth.policy import Policy
from registry.auth.token import BearerAuthorizer, TokenAuthority, TokenSettings
from registry.config import Config
from registry.errors import ErrorCode, RegistryError
from registry.routes import build_routes
from registry.service import Registry
from registry.storage import layout
from registry.storage.base import Storage, StorageError, SupportsIncompleteWritePurge
from registry.storage.filesystem import FilesystemStorage

log = logging.getLogger("registry")
API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")
PURGE_INTERVAL_SECONDS = 3600


def open_storage(config: Config) -> Storage:
    if config.storage.s3 is not None:
        from registry.storage.s3 import S3Storage

        return S3Storage(config.storage.s3)
    assert config.storage.filesystem is not None
    return FilesystemStorage(config.storage.filesystem.root, (layout.UPLOADS_PREFIX,))


def open_authorizer(config: Config, storage: Storage) -> Authorizer:
    if config.auth.mode == "none":
        return OpenAuthorizer()
    users = HtpasswdUsers(config.auth.htpasswd.path)
    basic = BasicAuthorizer(users, Policy(config.auth.policy), config.auth.realm)
    if config.auth.mode == "htpasswd":
        return basic
    settings = config.auth.token
    authority = TokenAuthority(
        TokenSettings(
            issuer=settings.issuer,
            service=settings.service,
            realm=settings.realm,
            expires_in=settings.expires_in_seconds,
            key_file=settings.key_file,
            certificate=settings.certificate,
            external_url=config.http.external_url,
            trusted=settings.trusted,
        ),
        storage,
    )
    return BearerAuthorizer(authority, basic)


def error_response(error: RegistryError) -> Response:
    return JSONResponse(error.body(), error.status, error.headers)


DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


async def _drained(request: Request) -> bool:
    """Read and drop what is left of a refused request's body, so the client, still
    sending, can read our answer on a connection that stays open. False when the body is
    larger than DRAIN_LIMIT_BYTES: then the connection is closed instead."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        return False
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > DRAIN_LIMIT_BYTES:
                return False
    except RuntimeError:  # the handler consumed the body already
        pass
    except ClientDisconnect:
        return False
    return True


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    response = error_response(exc)
    if not await _drained(request):
        response.headers["Connection"] = "close"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = RegistryError(
            ErrorCode.UNSUPPORTED,
            f"method {request.method} is not allowed on {request.url.path}",
            headers=dict(exc.headers or {}),
        )
    else:
        error = RegistryError(
            ErrorCode.UNSUPPORTED, f"no such endpoint: {request.url.path}", status=exc.status_code
        )
    return error_response(error)


async def _storage_error(request: Request, exc: Exception) -> Response:
    log.error("storage failure on %s %s: %s", request.method, request.url.path, exc)
    return error_response(RegistryError(ErrorCode.UNAVAILABLE, "storage is unavailable"))


async def _disconnected(request: Request, exc: Exception) -> Response:
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(RegistryError(ErrorCode.UNKNOWN, "internal server error"))


class ApiVersionHeader:
    """Adds `Docker-Distribution-API-Version` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), API_VERSION_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_header)


async def _purge_uploads_periodically(registry: Registry, max_age: float) -> None:
    while True:
        try:
            removed = await registry.uploads.purge(max_age)
            if isinstance(registry.storage, SupportsIncompleteWritePurge):
                removed += await registry.storage.purge_incomplete_writes(max_age)
            if removed:
                log.info("purged %d abandoned upload objects", removed)
        except StorageError as exc:
            log.warning("purging abandoned uploads failed: %s", exc)
        except Exception:  # housekeeping must never take the server down with it
            log.exception("purging abandoned uploads failed")
        await anyio.sleep(PURGE_INTERVAL_SECONDS)


def create_app(config: Config, storage: Storage | None = None) -> Starlette:
    backend = storage or open_storage(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        s3 = config.storage.s3
        registry = Registry(
            backend,
            delete_enabled=config.storage.delete.enabled,
            redirect_seconds=s3.redirect_expiry_seconds if s3 is not None and s3.redirect else 0,
        )
        app.state.registry = registry
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                _purge_uploads_periodically, registry, config.storage.uploads.max_age_seconds
            )
            tasks.start_soon(memory.trim_periodically)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                await backend.aclose()

    app = Starlette(
        routes=build_routes(),
        lifespan=lifespan,
        exception_handlers={
            RegistryError: _registry_error,
            HTTPException: _http_error,
            StorageError: _storage_error,
            ClientDisconnect: _disconnected,
            Exception: _unexpected,
        },
    )
    app.state.authorizer = open_authorizer(config, backend)
    router = app.router
    assert isinstance(router, Router)
    router.redirect_slashes = False
    app.add_middleware(ApiVersionHeader)
    return app
