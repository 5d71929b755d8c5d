"""Successful responses of the handlers: empty ones with headers, and compact JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

JSON = "application/json"


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers={"Content-Length": "0", **(headers or {})})


def json_response(
    document: Any, headers: dict[str, str] | None = None, media_type: str = JSON
) -> Response:
    body = json.dumps(document, separators=(",", ":")).encode()
    return Response(body, 200, headers, media_type=media_type)
