"""OCI error codes and the typed errors the registry raises.

The domain and the authorizers raise these; only the HTTP layer (`registry/api/errors.py`)
decides the status code, the headers and the body a client gets for each.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    BLOB_UNKNOWN = "blob unknown to registry"
    BLOB_UPLOAD_INVALID = "blob upload invalid"
    BLOB_UPLOAD_UNKNOWN = "blob upload unknown to registry"
    DIGEST_INVALID = "provided digest did not match uploaded content"
    MANIFEST_BLOB_UNKNOWN = "manifest references a manifest or blob unknown to registry"
    MANIFEST_INVALID = "manifest invalid"
    MANIFEST_UNKNOWN = "manifest unknown to registry"
    NAME_INVALID = "invalid repository name"
    NAME_UNKNOWN = "repository name not known to registry"
    SIZE_INVALID = "provided length did not match content length"
    UNAUTHORIZED = "authentication required"
    DENIED = "requested access to the resource is denied"
    UNSUPPORTED = "the operation is unsupported"
    TOOMANYREQUESTS = "too many requests"
    # Distribution's extensions, used where no OCI code fits.
    UNAVAILABLE = "service unavailable"
    UNKNOWN = "unknown error"

    @property
    def default_message(self) -> str:
        return self.value


class RegistryError(Exception):
    """An error that reaches the client as an OCI error body; `extra` errors are listed after it."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        *,
        extra: list[RegistryError] | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.default_message
        self.detail = detail
        self.extra = extra or []
        super().__init__(f"{code.name}: {self.message}")

    def entries(self) -> list[dict[str, Any]]:
        return [error.entry() for error in (self, *self.extra)]

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry


class UploadOutOfOrder(RegistryError):
    """A chunk that does not start where the upload stands (or a malformed range for it).

    Carries where the upload stands, so the client can resume from there."""

    def __init__(self, message: str, repository: str, upload_id: str, offset: int) -> None:
        super().__init__(ErrorCode.BLOB_UPLOAD_INVALID, message, {"offset": offset})
        self.repository, self.upload_id, self.offset = repository, upload_id, offset


class ManifestTooLarge(RegistryError):
    def __init__(self, limit: int) -> None:
        super().__init__(ErrorCode.MANIFEST_INVALID, f"manifest is larger than {limit} bytes")
        self.limit = limit


class AuthenticationRequired(RegistryError):
    """No credentials, or wrong ones; `challenge` tells the client how to authenticate."""

    def __init__(self, message: str, challenge: str, detail: Any = None) -> None:
        super().__init__(ErrorCode.UNAUTHORIZED, message, detail)
        self.challenge = challenge


class TooManyRequests(RegistryError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(ErrorCode.TOOMANYREQUESTS, message)
        self.retry_after = retry_after
