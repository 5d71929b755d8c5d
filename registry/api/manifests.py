"""Manifests by tag or digest: fetch, push, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from registry.api.requests import name_of, read_bounded, registry_of
from registry.api.responses import empty
from registry.digest import Digest
from registry.errors import ErrorCode, ManifestTooLarge, RegistryError
from registry.manifest import MAX_MANIFEST_BYTES
from registry.reference import parse_reference


def _reference(request: Request, code: ErrorCode) -> str | Digest:
    text: str = request.path_params["reference"]
    try:
        return parse_reference(text)
    except ValueError as exc:
        raise RegistryError(code, str(exc), {"reference": text}) from None


async def get_manifest(request: Request) -> Response:
    reference = _reference(request, ErrorCode.MANIFEST_UNKNOWN)
    registry, name = registry_of(request), name_of(request)
    stored = await registry.get_manifest(name, reference)
    headers = {
        "Content-Type": stored.media_type,
        "Docker-Content-Digest": str(stored.digest),
        "ETag": f'"{stored.digest}"',
        "Content-Length": str(len(stored.body)),
    }
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    registry.record_pull(name, stored.digest)
    return Response(stored.body, 200, headers)


async def put_manifest(request: Request) -> Response:
    name = name_of(request)
    reference = _reference(request, ErrorCode.MANIFEST_INVALID)
    body = await read_bounded(request, MAX_MANIFEST_BYTES, ManifestTooLarge(MAX_MANIFEST_BYTES))
    pushed = await registry_of(request).put_manifest(
        name, reference, body, request.headers.get("content-type")
    )
    headers = {
        "Location": f"/v2/{name}/manifests/{pushed.digest}",
        "Docker-Content-Digest": str(pushed.digest),
    }
    if pushed.subject is not None:
        headers["OCI-Subject"] = str(pushed.subject)
    return empty(201, headers)


async def delete_manifest(request: Request) -> Response:
    reference = _reference(request, ErrorCode.MANIFEST_UNKNOWN)
    await registry_of(request).delete_manifest(name_of(request), reference)
    return empty(202)
