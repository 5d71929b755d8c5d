"""Reading requests in the handlers: the services, path parameters, headers, query, bodies.

Path parameters arrive decoded and the repository name validated (`routes.py`)."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.requests import Request

from registry.api.errors import HttpError
from registry.auth.authorizer import Authorizer, Scope
from registry.digest import Digest, InvalidDigest
from registry.errors import ErrorCode, RegistryError
from registry.service import Registry

MAX_PAGE_SIZE = 10_000
_DECIMAL = re.compile(r"[0-9]{1,18}")


def registry_of(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def name_of(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


def parse_digest_or(text: str, code: ErrorCode) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidDigest as exc:
        raise RegistryError(code, str(exc), {"digest": text}) from None


def int_header(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value.strip()):
        raise RegistryError(ErrorCode.SIZE_INVALID, f"invalid {name} header {value!r}")
    return int(value)


def page_params(request: Request) -> tuple[int, str | None]:
    """`n` (clamped to MAX_PAGE_SIZE) and `last` of a paginated list."""
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        n = MAX_PAGE_SIZE
    elif _DECIMAL.fullmatch(raw):
        n = min(int(raw), MAX_PAGE_SIZE)
    else:
        message = f"n must be a non-negative integer, got {raw!r}"
        raise HttpError(400, ErrorCode.UNSUPPORTED, message)
    last = request.query_params.get("last") or None
    return n, last


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


def may_pull(request: Request, name: str) -> bool:
    """Whether the admitted caller may pull `name` (for catalogs and mount sources)."""
    authorizer: Authorizer = request.app.state.authorizer
    return authorizer.may(request.state.identity, Scope("repository", name, ("pull",)))


async def read_bounded(request: Request, limit: int, too_large: Exception) -> bytes:
    """The whole request body, refusing with `too_large` as soon as it exceeds `limit`."""
    declared = int_header(request, "content-length")
    if declared is not None and declared > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
