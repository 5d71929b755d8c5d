"""Paginated lists: tags of a repository, the catalog, and the referrers of a manifest."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

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
    subject = parse_digest_or(request.path_params["digest"], ErrorCode.DIGEST_INVALID)
    artifact_type = request.query_params.get("artifactType") or None
    descriptors = await registry_of(request).list_referrers(
        name_of(request), subject, artifact_type
    )
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return json_response(index, headers, media_type=OCI_INDEX)
