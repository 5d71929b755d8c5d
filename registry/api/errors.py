"""How every error reaches the client: the status of each OCI code, the headers of typed
errors, and the exception handlers of the app.

The domain raises `RegistryError` and its typed subclasses without any HTTP in them; this
module alone turns them into statuses, headers and OCI error bodies. Errors that only exist
at the HTTP edge (an unknown route, an unsatisfiable byte range) are `HttpError`s. Storage
failures (`StorageError` and its kinds) reach clients with a fixed message per kind; what the
storage said (paths, system errors) goes to the log only.

An error answered before the request body was read: the rest of the body is read and
dropped (up to a limit) so the connection can serve the next request; otherwise the answer
says `Connection: close` and the connection is closed after it.
"""

from __future__ import annotations

import logging
import traceback

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.auth.credentials import clip
from registry.errors import (
    AuthenticationRequired,
    ErrorCode,
    ManifestTooLarge,
    RegistryError,
    TooManyRequests,
    UploadOutOfOrder,
)
from registry.service import (
    KeyTooLong,
    StorageDenied,
    StorageError,
    StorageFull,
    StorageReadOnly,
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
# What an error may write to the log: a request's path, an exception's message, a line of a
# traceback are cut at this many characters (they may carry anything a client sent).
MAX_LOGGED_CHARS = 300
MAX_TRACEBACK_LINES = 120


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


def storage_failure(exc: StorageError) -> HttpError:
    """What a client learns of a storage failure: its kind, never the storage's own words."""
    match exc:
        case StorageFull():
            # 507 Insufficient Storage: docker shows 5xx answers by their status line.
            message = "the registry's storage is full; nothing was stored"
            return HttpError(507, ErrorCode.UNAVAILABLE, message)
        case StorageReadOnly():
            return HttpError(503, ErrorCode.UNAVAILABLE, "the registry's storage is read-only")
        case StorageDenied():
            return HttpError(503, ErrorCode.UNAVAILABLE, "the registry's storage refused access")
        case KeyTooLong():
            message = "a name or digest in the request is too long for the registry's storage"
            return HttpError(400, ErrorCode.DIGEST_INVALID, message)
    return HttpError(503, ErrorCode.UNAVAILABLE, "storage is unavailable")


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


async def _answer(request: Request, error: RegistryError) -> Response:
    response = error_response(error)
    if response.headers.get("connection") != "close" and not await _drained(request):
        response.headers["Connection"] = "close"
    return response


async def on_registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return await _answer(request, exc)


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


def _request_line(scope: Scope) -> str:
    return f"{scope.get('method', '?')} {clip(scope.get('path', '?'), MAX_LOGGED_CHARS)}"


def bounded_traceback(exc: BaseException) -> str:
    """The traceback of exc with every line cut at MAX_LOGGED_CHARS and at most
    MAX_TRACEBACK_LINES lines (the innermost kept): exception messages can hold a whole
    request header."""
    lines = "".join(traceback.format_exception(exc)).splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        left_out = len(lines) - MAX_TRACEBACK_LINES
        lines = [lines[0], f"  ... ({left_out} lines left out)", *lines[-MAX_TRACEBACK_LINES:]]
    return "\n".join(clip(line, MAX_LOGGED_CHARS) for line in lines)


async def on_storage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageError)
    kind = type(exc).__name__
    message = clip(str(exc), MAX_LOGGED_CHARS)
    log.error("storage failure on %s: %s: %s", _request_line(request.scope), kind, message)
    return await _answer(request, storage_failure(exc))


async def on_disconnect(request: Request, exc: Exception) -> Response:
    log.info("client disconnected during %s", _request_line(request.scope))
    return Response(status_code=400)


class ResponseAborted(Exception):
    """An unexpected error after the response had started (logged already): the server
    can only drop the connection."""


class UnexpectedErrors:
    """The last resort: any exception no handler turned into a response is logged once,
    bounded (never the request's headers, whatever the exception says), and answered with
    `500 UNKNOWN`; nothing reaches the server's own traceback logging."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unexpected error on %s\n%s", _request_line(scope), bounded_traceback(exc))
            if started:
                raise ResponseAborted("response aborted (the error is logged above)") from None
            response = error_response(RegistryError(ErrorCode.UNKNOWN, "internal server error"))
            await response(scope, receive, send)
