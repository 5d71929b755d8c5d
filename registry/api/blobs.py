"""Blob download (with byte ranges or a redirect), existence check and unlinking."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from registry.api.errors import HttpError
from registry.api.requests import name_of, parse_digest_or, registry_of
from registry.api.responses import empty
from registry.errors import ErrorCode

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range [start, end] asked for, None for the whole blob.

    Raises HttpError(416) when the range cannot be satisfied.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None  # multi-range or malformed: serve the whole blob
    if not match[1]:
        length = int(match[2])
        if length == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> HttpError:
    return HttpError(
        416,
        ErrorCode.BLOB_UNKNOWN,
        "requested range not satisfiable",
        {"size": size},
        headers={"Content-Range": f"bytes */{size}"},
    )


async def get_blob(request: Request) -> Response:
    """HEAD: the size; GET: the blob opened before the status line goes out, so one that
    cannot be read is an error status rather than a 200 and a dropped connection."""
    digest = parse_digest_or(request.path_params["digest"], ErrorCode.BLOB_UNKNOWN)
    registry, name = registry_of(request), name_of(request)
    headers = {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": str(digest),
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    if request.method == "HEAD":
        size = await registry.blob_size(name, digest, refresh=True)
        return empty(200, headers | {"Content-Length": str(size)})
    blob = await registry.open_blob(name, digest, redirect=True)
    if blob.redirect_url is not None:
        return empty(307, {"Location": blob.redirect_url, "Docker-Content-Digest": str(digest)})
    try:
        byte_range = parse_range(request.headers.get("range"), blob.size)
    except HttpError:
        await blob.aclose()
        raise
    if byte_range is None:
        headers["Content-Length"] = str(blob.size)
        return StreamingResponse(blob.read(), 200, headers)
    start, end = byte_range
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    return StreamingResponse(blob.read(start, end + 1), 206, headers)


async def delete_blob(request: Request) -> Response:
    digest = parse_digest_or(request.path_params["digest"], ErrorCode.BLOB_UNKNOWN)
    await registry_of(request).delete_blob(name_of(request), digest)
    return empty(202)
