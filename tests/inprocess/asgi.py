"""Requests straight into the ASGI app, in this process: each costs milliseconds, and the
path reaches the app exactly as written (no client normalises `..` or percent-escapes).

For the many small status and header cases; streaming, HEAD lengths, body draining and
shutdown only show on the wire and are tested over real sockets elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import anyio
from starlette.types import ASGIApp, Message


@dataclass(frozen=True)
class AsgiResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def codes(self) -> list[str]:
        return [error["code"] for error in self.json()["errors"]]


async def call(
    app: ASGIApp,
    method: str,
    target: str,
    headers: Mapping[str, str | bytes] | None = None,
    body: bytes = b"",
    client: tuple[str, int] = ("127.0.0.1", 40000),
) -> AsgiResponse:
    """`method target` (a raw path with an optional query) with headers and a body, from
    the TCP peer `client`."""
    raw_path, _, query = target.partition("?")
    header_list = [
        (k.lower().encode(), v if isinstance(v, bytes) else v.encode("latin-1"))
        for k, v in (headers or {}).items()
    ]
    if not any(name == b"host" for name, _ in header_list):
        header_list.insert(0, (b"host", b"registry.test"))
    if body and "content-length" not in {k.lower() for k in (headers or {})}:
        header_list.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "root_path": "",
        "query_string": query.encode("latin-1"),
        "headers": header_list,
        "client": client,
        "server": ("127.0.0.1", 5000),
        "state": {},
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []
    responded = anyio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await responded.wait()  # the client stays connected until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            responded.set()

    await app(scope, receive, send)
    responded.set()
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    names = {k.decode().lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return AsgiResponse(start["status"], names, content)
