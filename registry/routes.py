"""The route table: every endpoint, its methods, its handler, and the access it needs.

Repository names contain slashes, so `{name:path}` is greedy and each route is anchored by
its fixed tail (`/blobs/uploads/`, `/manifests/<ref>`, ...). Every handler that takes a name
gets it validated here first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from registry import auth
from registry.api import blobs, listing, manifests, token, uploads
from registry.api.base import registry_of
from registry.service import check_name
from registry.storage.base import StorageError

Handler = Callable[[Request], Awaitable[Response]]
Access = Literal["none", "login", "pull", "push", "delete", "catalog"]


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: tuple[str, ...]
    handler: Handler
    access: Access


async def api_version(request: Request) -> Response:
    return JSONResponse({})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await registry_of(request).storage.ping()
    except StorageError as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})


_REPO = "/v2/{name:path}"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/healthz", ("GET",), healthz, "none"),
    Endpoint("/readyz", ("GET",), readyz, "none"),
    Endpoint("/token", ("GET",), token.get_token, "none"),
    Endpoint("/token", ("POST",), token.post_token, "none"),
    Endpoint("/token/jwks.json", ("GET",), token.jwks, "none"),
    Endpoint("/v2/", ("GET",), api_version, "login"),
    Endpoint("/v2/_catalog", ("GET",), listing.catalog, "catalog"),
    Endpoint(_REPO + "/tags/list", ("GET",), listing.list_tags, "pull"),
    Endpoint(_REPO + "/referrers/{digest}", ("GET",), listing.referrers, "pull"),
    Endpoint(_REPO + "/manifests/{reference}", ("GET",), manifests.get_manifest, "pull"),
    Endpoint(_REPO + "/manifests/{reference}", ("PUT",), manifests.put_manifest, "push"),
    Endpoint(_REPO + "/manifests/{reference}", ("DELETE",), manifests.delete_manifest, "delete"),
    Endpoint(_REPO + "/blobs/uploads/", ("POST",), uploads.start_upload, "push"),
    Endpoint(_REPO + "/blobs/uploads/{uuid}", ("GET",), uploads.upload_status, "pull"),
    Endpoint(_REPO + "/blobs/uploads/{uuid}", ("PATCH",), uploads.append_chunk, "push"),
    Endpoint(_REPO + "/blobs/uploads/{uuid}", ("PUT",), uploads.finish_upload, "push"),
    Endpoint(_REPO + "/blobs/uploads/{uuid}", ("DELETE",), uploads.cancel_upload, "push"),
    Endpoint(_REPO + "/blobs/{digest}", ("GET",), blobs.get_blob, "pull"),
    Endpoint(_REPO + "/blobs/{digest}", ("DELETE",), blobs.delete_blob, "delete"),
)


def needed_access(access: Access, name: str | None) -> list[auth.Access]:
    """The grants a request needs, in Docker scope terms."""
    if access == "catalog":
        return [auth.Access("registry", "catalog", ("*",))]
    if name is None or access in ("none", "login"):
        return []
    actions = {"pull": ("pull",), "push": ("pull", "push"), "delete": ("delete",)}[access]
    return [auth.Access("repository", name, actions)]


def _guarded(endpoint: Endpoint) -> Handler:
    """The handler behind name validation and the authorizer (which every route but the
    health probes passes)."""
    handler, access, named = endpoint.handler, endpoint.access, "{name:path}" in endpoint.path

    async def guarded(request: Request) -> Response:
        name: str | None = request.path_params["name"] if named else None
        if name is not None:
            check_name(name)
        if access != "none":
            authorizer: auth.Authorizer = request.app.state.authorizer
            request.state.identity = await authorizer.authorize(
                request, needed_access(access, name), login=access == "login"
            )
        return await handler(request)

    return guarded


def build_routes() -> list[Route]:
    """Starlette routes; methods of one path are merged so others answer 405."""
    by_path: dict[str, dict[str, Handler]] = {}
    for endpoint in ENDPOINTS:
        for method in endpoint.methods:
            by_path.setdefault(endpoint.path, {})[method] = _guarded(endpoint)
    return [
        Route(path, _dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    if len(handlers) == 1:
        return next(iter(handlers.values()))
    get = handlers.get("GET")

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" and get is not None else request.method
        return await handlers[method](request)

    return dispatch
