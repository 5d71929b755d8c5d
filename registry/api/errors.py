"""How every error reaches the client: the status of each OCI code, the headers of typed
errors, and the exception handlers of the app.

The domain raises `RegistryError` and its typed subclasses without any HTTP in them; this
module alone turns them into statuses, headers and OCI error bodies. Errors that only exist
at the HTTP edge (an unknown route, an unsatisfiable byte range) are `HttpError`s.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from registry.errors import (
    AuthenticationRequired,
    ErrorCode,
    ManifestTooLarge,
    RegistryError,
    TooManyRequests,
    UploadOutOfOrder,
)

log = logging.getLogger("registry")

STATUS: dict[ErrorCode, int] = {
    ErrorCode.BLOB_UNKNOWN: 404,
    ErrorCode.BLOB_UPLOAD_INVALID: 400,
    ErrorCode.BLOB_UPLOAD_UNKNOWN: 404,
    ErrorCode.DIGEST_INVALID: 400,
    ErrorCode.MANIFEST_BLOB_UNKNOWN: 400,
    ErrorCode.MANIFEST_INVALID: 400,
    ErrorCode.MANIFEST_UNKNOWN: 404,
    ErrorCode.NAME_INVALID: 400,
    ErrorCode.NAME_UNKNOWN: 404,
    ErrorCode.SIZE_INVALID: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.DENIED: 403,
    ErrorCode.UNSUPPORTED: 405,
    ErrorCode.TOOMANYREQUESTS: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.UNKNOWN: 500,
}
# A refused request body is read and dropped up to this size, so a client still sending can
# read our answer; a larger one gets its connection closed instead.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class HttpError(RegistryError):
    """A refusal with its own status and headers."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str | None = None,
        detail: object = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, detail)
        self.status = status
        self.headers = headers or {}


def upload_progress_headers(repository: str, upload_id: str, offset: int) -> dict[str, str]:
    """Where an upload stands: its URL, the bytes it holds (`0-<last>`), its id."""
    return {
        "Location": f"/v2/{repository}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(offset - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


def status_and_headers(error: RegistryError) -> tuple[int, dict[str, str]]:
    match error:
        case HttpError():
            return error.status, error.headers
        case UploadOutOfOrder():
            headers = upload_progress_headers(error.repository, error.upload_id, error.offset)
            return 416, headers
        case ManifestTooLarge():
            return 413, {"Connection": "close"}
        case AuthenticationRequired():
            return 401, {"WWW-Authenticate": error.challenge}
        case TooManyRequests():
            return 429, {"Retry-After": str(error.retry_after)}
    return STATUS[error.code], {}


def error_response(error: RegistryError) -> Response:
    status, headers = status_and_headers(error)
    return JSONResponse({"errors": error.entries()}, status, headers)


async def _drained(request: Request) -> bool:
    """Read and drop what is left of a refused request's body; False when it is larger than
    DRAIN_LIMIT_BYTES (then the connection is closed instead)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        return False
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > DRAIN_LIMIT_BYTES:
                return False
    except RuntimeError:  # the handler consumed the body already
        pass
    except ClientDisconnect:
        return False
    return True


async def on_registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    response = error_response(exc)
    if not await _drained(request):
        response.headers["Connection"] = "close"
    return response


async def on_unrouted(request: Request, exc: Exception) -> Response:
    """The router found no endpoint (404) or not this method (405)."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 405:
        message = f"method {request.method} is not allowed on {path}"
        error = HttpError(405, ErrorCode.UNSUPPORTED, message, headers=dict(exc.headers or {}))
    else:
        error = HttpError(exc.status_code, ErrorCode.UNSUPPORTED, f"no such endpoint: {path}")
    return error_response(error)


async def on_storage_error(request: Request, exc: Exception) -> Response:
    log.error("storage failure on %s %s: %s", request.method, request.url.path, exc)
    return error_response(RegistryError(ErrorCode.UNAVAILABLE, "storage is unavailable"))


async def on_disconnect(request: Request, exc: Exception) -> Response:
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(RegistryError(ErrorCode.UNKNOWN, "internal server error"))
