"""create_app(config): the ASGI application — routes, middleware and error handlers over the
services `wiring` builds from the config."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry import reload, wiring
from registry.api import errors
from registry.api.forwarded import ForwardedHeaders, TrustedProxies
from registry.config import Config
from registry.errors import RegistryError
from registry.routes import RawPathRouting, build_routes
from registry.service import StorageError

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")


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


def create_app(
    config: Config, *, sighup: Literal["reload", "reload-quietly"] | None = None
) -> Starlette:
    """`sighup`: "reload" to reload `auth.policy` and `namespaces` on SIGHUP (registry/reload.py),
    "reload-quietly" in a worker whose supervisor notes the sections that need a restart."""
    services = wiring.build(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(wiring.running(services))
            if sighup is not None:
                quiet = sighup == "reload-quietly"
                await stack.enter_async_context(reload.on_sighup(services, quiet=quiet))
            yield

    app = Starlette(
        routes=build_routes(),
        lifespan=lifespan,
        exception_handlers={
            RegistryError: errors.on_registry_error,
            HTTPException: errors.on_unrouted,
            StorageError: errors.on_storage_error,
            ClientDisconnect: errors.on_disconnect,
        },
    )
    app.state.registry = services.registry
    app.state.authorizer = services.authorizer
    app.state.token_service = services.token_service
    router = app.router
    assert isinstance(router, Router)
    router.redirect_slashes = False
    app.add_middleware(errors.UnexpectedErrors)
    app.add_middleware(RawPathRouting)
    app.add_middleware(ApiVersionHeader)
    if config.http.trusted_proxies:
        proxies = TrustedProxies(config.http.trusted_proxies)
        app.add_middleware(ForwardedHeaders, proxies=proxies)
    return app
