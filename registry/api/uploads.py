"""Blob uploads: open (plain, monolithic, mount), append chunks, status, finish, cancel."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from registry.api.errors import upload_progress_headers
from registry.api.requests import int_header, may_pull, name_of, registry_of
from registry.api.responses import empty
from registry.digest import Digest, InvalidDigest
from registry.errors import ErrorCode, RegistryError, UploadOutOfOrder
from registry.service import UploadProgress

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


def _progress(progress: UploadProgress) -> dict[str, str]:
    return upload_progress_headers(progress.repository, progress.upload_id, progress.offset)


async def _chunk_range(request: Request) -> tuple[int, int] | None:
    """The chunk's `Content-Range: <first>-<last>`; a malformed one is refused with 416 and
    where the upload stands, like a chunk out of order."""
    value = request.headers.get("content-range")
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        name, upload_id = name_of(request), request.path_params["uuid"]
        progress = await registry_of(request).upload_status(name, upload_id)
        message = f"invalid Content-Range {value!r}"
        raise UploadOutOfOrder(message, name, upload_id, progress.offset)
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
    headers = _progress(await registry.start_upload(name))
    if registry.chunk_min_length:
        headers["OCI-Chunk-Min-Length"] = str(registry.chunk_min_length)
    return empty(202, headers)


async def upload_status(request: Request) -> Response:
    progress = await registry_of(request).upload_status(
        name_of(request), request.path_params["uuid"]
    )
    return empty(204, _progress(progress))


async def append_chunk(request: Request) -> Response:
    progress = await registry_of(request).append_to_upload(
        name_of(request),
        request.path_params["uuid"],
        request.stream(),
        await _chunk_range(request),
        int_header(request, "content-length"),
    )
    return empty(202, _progress(progress))


async def finish_upload(request: Request) -> Response:
    name, digest = name_of(request), _upload_digest(request)
    upload_id = request.path_params["uuid"]
    if _has_body(request):
        await registry_of(request).finish_upload(
            name,
            upload_id,
            digest,
            request.stream(),
            await _chunk_range(request),
            int_header(request, "content-length"),
        )
    else:
        await registry_of(request).finish_upload(name, upload_id, digest)
    return _blob_created(name, digest)


async def cancel_upload(request: Request) -> Response:
    await registry_of(request).cancel_upload(name_of(request), request.path_params["uuid"])
    return empty(204)
