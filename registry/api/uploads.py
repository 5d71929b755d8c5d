"""Blob uploads: open (plain, monolithic, mount), append chunks, status, finish, cancel."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from registry.api.base import empty, int_header, may_pull, name_of, registry_of
from registry.digest import Digest, InvalidDigest
from registry.errors import ErrorCode, RegistryError
from registry.uploads import RangeNotSatisfiable, Session, expected_length, progress_headers

_CONTENT_RANGE = re.compile(r"([0-9]{1,18})-([0-9]{1,18})")


def _upload_digest(request: Request) -> Digest:
    text = request.query_params.get("digest")
    if not text:
        raise RegistryError(ErrorCode.DIGEST_INVALID, "the digest query parameter is required")
    try:
        return Digest.parse_supported(text)
    except InvalidDigest as exc:
        raise RegistryError(ErrorCode.DIGEST_INVALID, str(exc), {"digest": text}) from None


def _blob_created(name: str, digest: Digest) -> Response:
    return empty(
        201, {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest)}
    )


def _content_range(request: Request, session: Session) -> tuple[int, int] | None:
    value = request.headers.get("content-range")
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        raise RangeNotSatisfiable(f"invalid Content-Range {value!r}", session)
    return int(match[1]), int(match[2])


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )


async def start_upload(request: Request) -> Response:
    registry, name = registry_of(request), name_of(request)
    mount, source = request.query_params.get("mount"), request.query_params.get("from")
    if mount and source and may_pull(request, source):
        try:
            digest = Digest.parse(mount)
        except InvalidDigest:
            digest = None
        if digest is not None and await registry.mount_blob(name, digest, source):
            return _blob_created(name, digest)
    elif "digest" in request.query_params:
        digest = _upload_digest(request)
        await registry.push_blob(
            name, digest, request.stream(), int_header(request, "content-length")
        )
        return _blob_created(name, digest)
    session = await registry.uploads.start(name)
    headers = progress_headers(session)
    if registry.chunk_min_length:
        headers["OCI-Chunk-Min-Length"] = str(registry.chunk_min_length)
    return empty(202, headers)


async def upload_status(request: Request) -> Response:
    session = await registry_of(request).uploads.get(name_of(request), request.path_params["uuid"])
    return empty(204, progress_headers(session))


async def append_chunk(request: Request) -> Response:
    uploads = registry_of(request).uploads
    session = await uploads.get(name_of(request), request.path_params["uuid"])
    session = await uploads.append(
        session,
        request.stream(),
        _content_range(request, session),
        int_header(request, "content-length"),
    )
    return empty(202, progress_headers(session))


async def finish_upload(request: Request) -> Response:
    registry, name = registry_of(request), name_of(request)
    session = await registry.uploads.get(name, request.path_params["uuid"])
    digest = _upload_digest(request)
    if not _has_body(request):
        await registry.finish_upload(session, digest)
        return _blob_created(name, digest)
    content_range = _content_range(request, session)
    content_length = int_header(request, "content-length")
    expected = expected_length(session, content_range, content_length)
    if session.size == 0:
        await registry.finish_empty_upload_with_body(session, digest, request.stream(), expected)
    else:
        session = await registry.uploads.append(
            session, request.stream(), content_range, content_length
        )
        await registry.finish_upload(session, digest)
    return _blob_created(name, digest)


async def cancel_upload(request: Request) -> Response:
    uploads = registry_of(request).uploads
    session = await uploads.get(name_of(request), request.path_params["uuid"])
    await uploads.cancel(session)
    return empty(204)
