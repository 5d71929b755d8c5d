"""The route table: every endpoint, its methods, its handler, and the access it needs.

Routes match the path as the client sent it, percent-escapes intact: an escaped `/`, control
character or `..` inside a component can then never change which endpoint answers, only
make that component invalid, which the endpoint reports with its own error (`NAME_INVALID`,
`MANIFEST_UNKNOWN`, `BLOB_UPLOAD_UNKNOWN`, ...). Repository names contain slashes, so
`{name:path}` is greedy and each route is anchored by its fixed tail (`/blobs/uploads/`,
`/manifests/<ref>`, ...). Every parameter is decoded, and the name validated, before the
authorizer and the handler see them. In read-only mode every route that needs push or delete
access is refused once the caller is admitted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from registry import auth
from registry.api import blobs, listing, manifests, token, uploads
from registry.api.requests import registry_of
from registry.errors import ErrorCode, RegistryError
from registry.maintenance import READ_ONLY_MESSAGE
from registry.reference import is_valid_name

log = logging.getLogger("registry")
Handler = Callable[[Request], Awaitable[Response]]
Requirement = Literal["none", "login", "pull", "push", "delete", "catalog"]


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: tuple[str, ...]
    handler: Handler
    access: Requirement

    @property
    def changes_content(self) -> bool:
        """Whether the endpoint may change what is stored (refused in read-only mode)."""
        return self.access in ("push", "delete")


async def api_version(request: Request) -> Response:
    return JSONResponse({})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready or not, nothing more: anyone may ask, and why is for the operator's log."""
    problem = await registry_of(request).storage_problem()
    if problem is not None:
        log.warning("not ready: %s", problem)
        return JSONResponse({"status": "unavailable"}, status_code=503)
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


def needed_access(access: Requirement, name: str | None) -> list[auth.Scope]:
    """The grants a request needs, in Docker scope terms."""
    if access == "catalog":
        return [auth.Scope("registry", "catalog", ("*",))]
    if name is None or access in ("none", "login"):
        return []
    actions = {"pull": ("pull",), "push": ("pull", "push"), "delete": ("delete",)}[access]
    return [auth.Scope("repository", name, actions)]


def repository_name(raw: str) -> str:
    """The name a raw (still percent-escaped) path gives; NAME_INVALID unless every component
    follows the grammar once decoded (an escaped `/` never joins two components)."""
    components = [unquote(component) for component in raw.split("/")]
    name = "/".join(components)
    if any("/" in component for component in components) or not is_valid_name(name):
        raise RegistryError(ErrorCode.NAME_INVALID, f"invalid repository name {name!r}")
    return name


def _decoded(params: dict[str, Any]) -> dict[str, Any]:
    return {
        key: repository_name(raw) if key == "name" else unquote(raw) for key, raw in params.items()
    }


def _guarded(endpoint: Endpoint) -> Handler:
    """The handler behind parameter decoding, the authorizer (which every route but the
    health probes and the token service passes) and, for changes, read-only mode."""
    handler, access, changes = endpoint.handler, endpoint.access, endpoint.changes_content

    async def guarded(request: Request) -> Response:
        request.scope["path_params"] = params = _decoded(request.path_params)
        if access != "none":
            authorizer: auth.Authorizer = request.app.state.authorizer
            request.state.identity = await authorizer.authorize(
                request, needed_access(access, params.get("name")), login=access == "login"
            )
        if changes and registry_of(request).read_only:
            raise RegistryError(ErrorCode.UNSUPPORTED, READ_ONLY_MESSAGE)
        return await handler(request)

    return guarded


class RawPathRouting:
    """Hands the router the path as the client sent it (`raw_path`), not the decoded one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            scope = {**scope, "path": raw.split(b"?", 1)[0].decode("latin-1"), "root_path": ""}
        await self.app(scope, receive, send)


def build_routes() -> list[Route]:
    """Routes (to be served behind RawPathRouting); methods of one path are merged so others
    answer 405."""
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
