"""What one client connection may cost: uvicorn's httptools protocol with limits and timeouts.

Before the app sees a request, its head (request line and headers) is bounded in bytes,
header count and request-line length (431/414), and must arrive within a deadline (408).
A connection with no request in flight is closed after an idle time; a request body that
stops arriving, or a response the client stops taking, aborts the request. Connections over
the per-process cap are answered 503 and closed at once, so file descriptors never run out.
Refusals and aborts are summed and logged every few seconds, not once per connection (an
idle connection closed is ordinary keep-alive expiry and is not logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from registry.config import HttpConfig

log = logging.getLogger("registry.connections")

REFUSAL_LOG_INTERVAL = 10.0
FILES_RESERVED = 256  # descriptors kept for storage files, S3 sockets, logs


@dataclass(frozen=True)
class ConnectionRules:
    header_bytes: int
    headers: int
    request_line: int
    connections: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def of(cls, http: HttpConfig, connections: int | None = None) -> ConnectionRules:
        limits, timeouts = http.limits, http.timeouts
        return cls(
            header_bytes=limits.header_bytes,
            headers=limits.headers,
            request_line=limits.request_line,
            connections=limits.connections if connections is None else connections,
            header_timeout=timeouts.header,
            body_timeout=timeouts.body,
        )


def raise_open_files_limit(wanted_connections: int) -> int:
    """Raise RLIMIT_NOFILE to its hard limit; return how many connections it can hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    room = max(soft - FILES_RESERVED, 8)
    if wanted_connections > room:
        log.warning(
            "http.limits.connections lowered from %d to %d: the open-files limit is %d",
            wanted_connections,
            room,
            soft,
        )
        return room
    return wanted_connections


class _RefusalTally:
    """Counts refusals by reason; logs the sums at most once per interval."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.logged_at = 0.0

    def add(self, reason: str) -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self.logged_at >= REFUSAL_LOG_INTERVAL:
            summary = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
            log.warning("connections refused or closed: %s", summary)
            self.counts.clear()
            self.logged_at = now


REFUSALS = _RefusalTally()


class _HeadRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, code: str, message: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 error response with an OCI error body, closing the connection."""
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    phrase = _PHRASES.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


_PHRASES = {
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class GuardedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that enforces ConnectionRules; made by uvicorn per connection."""

    def __init__(self, *args: Any, rules: ConnectionRules, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rules = rules  # the idle timeout is uvicorn's timeout_keep_alive
        self._refused = False
        self._reading_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_moved_at = 0.0
        self._write_timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.rules.connections:
            self._refused = True
            self.transport = transport
            REFUSALS.add("over the connection cap")
            message = "too many connections; retry shortly"
            transport.write(error_response(503, "UNAVAILABLE", message, b"retry-after: 1\r\n"))
            transport.close()
            return
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        for timer in (self._head_timer, self._body_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    # -- the request head ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if not self._reading_head:
            self._feed(data)
            return
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.rules.header_timeout, self._head_late)
        room = self.rules.header_bytes - self._head_bytes
        head, rest = (data, b"") if len(data) <= room else (data[:room], data[room:])
        self._head_bytes += len(head)
        self._feed(head)
        if rest and not self.transport.is_closing():
            if self._reading_head:
                limit = self.rules.header_bytes
                self._refuse_head(_HeadRefused(431, f"request headers exceed {limit} bytes"))
            else:
                self._feed(rest)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # a callback's error too (a subclass)
            if isinstance(exc.__context__, _HeadRefused):
                self._refuse_head(exc.__context__)
            else:
                REFUSALS.add("malformed")
                self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            self.send_400_response("Protocol upgrades are not supported.")

    def _refuse_head(self, refusal: _HeadRefused) -> None:
        REFUSALS.add(f"{refusal.status}")
        self.transport.write(error_response(refusal.status, "UNSUPPORTED", refusal.message))
        self.transport.close()

    def _head_late(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            REFUSALS.add("header timeout")
            if self.cycle is None or self.cycle.response_complete:  # not amid a response
                seconds = self.rules.header_timeout
                message = f"request headers not received within {seconds:g} s"
                self.transport.write(error_response(408, "UNKNOWN", message))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.rules.request_line:
            raise _HeadRefused(414, f"request target exceeds {self.rules.request_line} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.rules.headers:
            raise _HeadRefused(431, f"more than {self.rules.headers} request headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        self._body_moved_at = self.loop.time()
        self._body_timer = self.loop.call_later(self.rules.body_timeout, self._body_check)

    # -- the request body ----------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self._body_moved_at = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._reading_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def _body_check(self) -> None:
        """Abort a request whose client stopped sending its body; time the server spends not
        reading (flow control, waiting to send 100-continue) does not count."""
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete:
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            self._body_moved_at = now
        waited = now - self._body_moved_at
        if waited < self.rules.body_timeout:
            delay = self.rules.body_timeout - waited
            self._body_timer = self.loop.call_later(delay, self._body_check)
            return
        REFUSALS.add("body timeout")
        self.transport.abort()

    # -- the response --------------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.rules.body_timeout, self._write_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_late(self) -> None:
        self._write_timer = None
        REFUSALS.add("response not taken")
        self.transport.abort()
