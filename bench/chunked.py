"""A chunked blob push: POST, PATCHes with Content-Range, then an empty PUT ?digest=.

The client is `http.client` on one keep-alive connection, sending each chunk straight from
an mmap of the blob file (a memoryview slice: no copy in Python), so it costs little more
than the kernel's socket copies. `client_check` measures it against a trivial server.
"""

from __future__ import annotations

import http.client
import mmap
import time
from urllib.parse import urljoin, urlsplit

from bench.blobs import Blob
from bench.servers import BenchError
from bench.transfer import Transfer, start_upload, with_digest

CHUNK_SIZE = 16 << 20
TIMEOUT_SECONDS = 300.0
MAX_CHUNKS = 100_000


class _Connection:
    """One HTTP/1.1 connection to one host (reopened by http.client if the server closes it)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None:
            raise BenchError(f"no host in {base_url}")
        self.base_url = base_url
        self.connection = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=TIMEOUT_SECONDS
        )

    def request(
        self, method: str, url: str, body: memoryview | bytes, headers: dict[str, str]
    ) -> tuple[int, str | None]:
        """Status and Location of the response (body read and dropped)."""
        parts = urlsplit(urljoin(self.base_url, url))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            self.connection.request(method, target, body=body, headers=headers)
            response = self.connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise BenchError(f"{method} {url}: {exc}") from exc
        return response.status, response.headers.get("Location")

    def close(self) -> None:
        self.connection.close()


def send_chunks(
    connection: _Connection, upload_url: str, blob: Blob, chunk_size: int, accepted: tuple[int, ...]
) -> str:
    """PATCH the blob in chunks to upload_url (following each Location); the last URL."""
    url = upload_url
    with (
        open(blob.path, "rb") as f,
        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data,
        memoryview(data) as view,
    ):
        for index, offset in enumerate(range(0, blob.size, chunk_size)):
            if index >= MAX_CHUNKS:
                raise BenchError(f"more than {MAX_CHUNKS} chunks")
            end = min(offset + chunk_size, blob.size)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{end - 1}",
            }
            with view[offset:end] as chunk:
                status, location = connection.request("PATCH", url, chunk, headers)
            if status not in accepted:
                raise BenchError(f"PATCH {url} ({offset}-{end - 1}): status {status}")
            url = urljoin(url, location) if location else url
    return url


def push_chunked(base_url: str, blob: Blob, chunk_size: int = CHUNK_SIZE) -> Transfer:
    """POST (not timed), then the PATCHes and the final empty PUT ?digest= (timed)."""
    upload_url = start_upload(base_url)
    connection = _Connection(base_url)
    try:
        started = time.perf_counter()
        last_url = send_chunks(connection, upload_url, blob, chunk_size, accepted=(202,))
        final_url = with_digest(last_url, blob.digest)
        status, _ = connection.request("PUT", final_url, b"", {"Content-Length": "0"})
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    if status != 201:
        raise BenchError(f"final PUT of the chunked upload: status {status}")
    return Transfer(blob.size, seconds)


def chunk_ceiling(url: str, blob: Blob, chunk_size: int = CHUNK_SIZE) -> Transfer:
    """The same PATCHes against a server that discards them: the client's own speed."""
    connection = _Connection(url)
    try:
        started = time.perf_counter()
        send_chunks(connection, url, blob, chunk_size, accepted=(200, 201, 202))
        return Transfer(blob.size, time.perf_counter() - started)
    finally:
        connection.close()
