"""The client's ceiling: curl against a trivial loopback HTTP server that does no work.

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
from types import TracebackType

from bench.blobs import Blob
from bench.transfer import Transfer, get_file, put_file
from testkit.ports import LOOPBACK

RECEIVE_BUFFER_SIZE = 1 << 20
MAX_HEADER_BYTES = 64 << 10
SOCKET_TIMEOUT_SECONDS = 60.0
ACCEPT_POLL_SECONDS = 0.2
MAX_CONNECTIONS = 100
SOURCE_BLOCK_SIZE = 4 << 20
CLIENT_CEILING_MIB_PER_SECOND = 1.5e9 / (1 << 20)  # 1.5 GB/s


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


def measure_client(blob: Blob, tries: int) -> tuple[list[Transfer], list[Transfer]]:
    """Uploads to a null sink and downloads from a memory source, `tries` of each."""
    uploads: list[Transfer] = []
    downloads: list[Transfer] = []
    with TrivialServer(blob.size) as server:
        for _ in range(tries):
            uploads.append(put_file(f"{server.url}/sink", blob))
            downloads.append(get_file(f"{server.url}/source", blob.size))
    return uploads, downloads


def ceiling_warnings(uploads: list[Transfer], downloads: list[Transfer]) -> list[str]:
    """A warning for each direction where curl itself stays under 1.5 GB/s."""
    warnings: list[str] = []
    for label, transfers in (("upload", uploads), ("download", downloads)):
        median = statistics.median(t.mib_per_second for t in transfers)
        if median < CLIENT_CEILING_MIB_PER_SECOND:
            warnings.append(
                f"curl {label} reaches only {median:.0f} MiB/s against a trivial server "
                "(< 1.5 GB/s): the client may be the bottleneck"
            )
    return warnings
