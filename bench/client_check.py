"""The client's ceiling: curl, and the chunked-push client, against a trivial loopback HTTP
server that does no work.

The server discards PUT bodies (recv_into one reused buffer) and answers GET by sending one
random 4 MiB buffer over and over, so what is measured is curl plus the loopback socket.
(sendfile(2) from the page cache was tried as the source and is slower on the benchmark VM,
about 2 GB/s, than curl itself.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bench.blobs import make_blob
from bench.chunked import chunk_ceiling
from bench.common import MiB, median, settle
from bench.transfer import get_file, put_file
from testkit.ports import LOOPBACK

RECEIVE_BUFFER_SIZE = 1 << 20
MAX_HEADER_BYTES = 64 << 10
SOCKET_TIMEOUT_SECONDS = 60.0
ACCEPT_POLL_SECONDS = 0.2
MAX_CONNECTIONS = 100
SOURCE_BLOCK_SIZE = 4 << 20
CLIENT_CEILING_MIB_PER_SECOND = 1.5e9 / MiB  # 1.5 GB/s


@functools.cache
def _source_block() -> bytes:
    return os.urandom(SOURCE_BLOCK_SIZE)


def _read_head(conn: socket.socket) -> tuple[str, int, bytes]:
    """Method, Content-Length and any body bytes that arrived with the header."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > MAX_HEADER_BYTES:
            raise ConnectionError("incomplete request header")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return lines[0].split(" ", 1)[0], length, rest


def _discard_body(conn: socket.socket, remaining: int) -> None:
    buffer = bytearray(RECEIVE_BUFFER_SIZE)
    while remaining > 0:
        received = conn.recv_into(buffer, min(remaining, RECEIVE_BUFFER_SIZE))
        if received == 0:
            raise ConnectionError("body cut short")
        remaining -= received


def _send_body(conn: socket.socket, size: int) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        + f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
    )
    block = memoryview(_source_block())
    remaining = size
    while remaining > 0:
        piece = block[: min(remaining, len(block))]
        conn.sendall(piece)
        remaining -= len(piece)


class TrivialServer:
    """Serves one connection at a time in a thread until closed (bounded in connections).

    GET answers with `body_size` bytes; PUT bodies are read and dropped.
    """

    def __init__(self, body_size: int) -> None:
        self.body_size = body_size
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="trivial-server", daemon=True)
        self.url = f"http://{LOOPBACK}:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        for _ in range(MAX_CONNECTIONS):
            conn = self._accept()
            if conn is None:
                return
            with conn, contextlib.suppress(OSError):
                self._handle(conn)

    def _accept(self) -> socket.socket | None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(SOCKET_TIMEOUT_SECONDS)
            return conn
        return None

    def _handle(self, conn: socket.socket) -> None:
        method, length, early_body = _read_head(conn)
        if method == "GET":
            _send_body(conn, self.body_size)
            return
        _discard_body(conn, length - len(early_body))
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def __enter__(self) -> TrivialServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@dataclass
class Ceilings:
    """What the clients manage against a trivial loopback server."""

    upload: list[float] = field(default_factory=list)  # MiB/s, curl
    download: list[float] = field(default_factory=list)  # MiB/s, curl
    chunked: list[float] = field(default_factory=list)  # MiB/s, the chunked-push client
    warnings: list[str] = field(default_factory=list)

    def note(self, tries: int) -> str:
        return (
            f"- Client ceiling (against a trivial loopback server, median of {tries}):"
            f" curl upload {median(self.upload):,.0f} MiB/s, download"
            f" {median(self.download):,.0f} MiB/s; the chunked-push client"
            f" {median(self.chunked):,.0f} MiB/s."
        )


def _ceiling_warnings(label: str, speeds: list[float]) -> list[str]:
    """A warning if a client itself stays under 1.5 GB/s."""
    slowest = statistics.median(speeds)
    if slowest >= CLIENT_CEILING_MIB_PER_SECOND:
        return []
    return [
        f"{label} reaches only {slowest:.0f} MiB/s against a trivial server (< 1.5 GB/s):"
        " it may be the bottleneck"
    ]


def measure_client_ceiling(blob_size: int, tries: int, blob_dir: Path) -> Ceilings:
    """curl uploads to a null sink and downloads from a memory source, and chunked pushes to
    the null sink, `tries` of each, with a blob of blob_size."""
    blob = make_blob(blob_dir, blob_size)
    ceilings = Ceilings()
    try:
        settle()
        with TrivialServer(blob.size) as server:
            for _ in range(tries):
                ceilings.upload.append(put_file(f"{server.url}/sink", blob).mib_per_second)
                download = get_file(f"{server.url}/source", blob.size)
                ceilings.download.append(download.mib_per_second)
        with TrivialServer(0) as sink:  # a connection per chunk: a server of its own
            for _ in range(tries):
                ceilings.chunked.append(chunk_ceiling(f"{sink.url}/sink", blob).mib_per_second)
    finally:
        blob.path.unlink()
    ceilings.warnings = [
        *_ceiling_warnings("curl upload", ceilings.upload),
        *_ceiling_warnings("curl download", ceilings.download),
        *_ceiling_warnings("the chunked-push client", ceilings.chunked),
    ]
    return ceilings
