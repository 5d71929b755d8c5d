"""Paginated lists: tags of a repository, the catalog, and the referrers of a manifest."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from registry.api.errors import HttpError
from registry.api.requests import (
    may_pull,
    name_of,
    next_link,
    page_params,
    parse_digest_or,
    registry_of,
)
from registry.api.responses import json_response
from registry.errors import ErrorCode
from registry.manifest import OCI_INDEX

# A page of referrers continues after a key segment like `sha256-<hex>`.
_REFERRERS_CURSOR = re.compile(r"[A-Za-z0-9+._=-]{1,300}")
_INDEX_HEAD = (
    json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}, separators=(",", ":"))[:-1]
    + ',"manifests":['
).encode()


async def list_tags(request: Request) -> Response:
    name = name_of(request)
    n, last = page_params(request)
    page = await registry_of(request).list_tags(name, n, last)
    headers = {}
    if page.more and page.items:
        headers["Link"] = next_link(f"/v2/{name}/tags/list", n, page.items[-1])
    return json_response({"name": name, "tags": page.items}, headers)


async def catalog(request: Request) -> Response:
    n, last = page_params(request)
    page = await registry_of(request).catalog(n, last, lambda name: may_pull(request, name))
    headers = {}
    if page.more and page.items:
        headers["Link"] = next_link("/v2/_catalog", n, page.items[-1])
    return json_response({"repositories": page.items}, headers)


async def referrers(request: Request) -> Response:
    """One page of the referrers index; `Link` names the next page (with the same filter)."""
    name = name_of(request)
    subject = parse_digest_or(request.path_params["digest"], ErrorCode.DIGEST_INVALID)
    artifact_type = request.query_params.get("artifactType") or None
    cursor = request.query_params.get("last") or None
    if cursor is not None and not _REFERRERS_CURSOR.fullmatch(cursor):
        raise HttpError(400, ErrorCode.UNSUPPORTED, f"invalid last {cursor!r}")
    page = await registry_of(request).list_referrers(name, subject, artifact_type, cursor)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    if page.cursor is not None:
        query = {"last": page.cursor, **({"artifactType": artifact_type} if artifact_type else {})}
        headers["Link"] = f'</v2/{name}/referrers/{subject}?{urlencode(query)}>; rel="next"'
    # The stored descriptors go out as they are (no decoding and encoding again), joined in
    # one copy.
    parts = [_INDEX_HEAD]
    for index, descriptor in enumerate(page.descriptors):
        parts += [b",", descriptor] if index else [descriptor]
    parts.append(b"]}")
    return Response(b"".join(parts), 200, headers, media_type=OCI_INDEX)
