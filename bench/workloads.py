"""Request-rate workloads, the same against every server.

- manifest GET by tag and by digest at several concurrencies: `wrk` (C, another process);
- small-blob pushes (POST + PUT ?digest= of 4 KiB) from concurrent keep-alive connections:
  a minimal asyncio HTTP/1.1 client, a few tens of microseconds per request;
- concurrent GETs of one 4 MiB blob: one `curl --parallel` process.

(`skopeo copy`, the real client, is in `bench.skopeo`.)

Every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.blobs import Blob
from bench.manifests import MANIFEST_REPOSITORY
from bench.servers import BenchError
from bench.transfer import blob_url
from testkit.oci import OCI_MANIFEST, digest_of
from testkit.process_tree import MiB

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
SMALL_BLOB_REPOSITORY = "bench/small"
WRK_TIMEOUT_MARGIN_SECONDS = 30
SMALL_PUSH_TIMEOUT_SECONDS = 120.0
PARALLEL_GET_TIMEOUT_SECONDS = 300
SKOPEO_TIMEOUT_SECONDS = 600


# -- manifest GETs ------------------------------------------------------------------------------


_REQUESTS_PER_SECOND = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_FAILURES = re.compile(r"^\s*(Non-2xx or 3xx responses|Socket errors):.*$", re.MULTILINE)


def wrk_command(
    url: str, connections: int, seconds: int, headers: list[str], script: Path | None = None
) -> list[str]:
    """wrk for `seconds` on url (a Lua `script` may choose each request's path)."""
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s"]
    command += ["--timeout", "10s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    return [*command, url]


def wrk_rate(url: str, returncode: int, stdout: str, stderr: str) -> float:
    """wrk's requests/s from its output; a BenchError if any request failed or got a
    non-2xx answer."""
    rate = _REQUESTS_PER_SECOND.search(stdout)
    if returncode != 0 or rate is None:
        raise BenchError(f"wrk on {url} failed: {stderr.strip() or stdout[-300:]}")
    failures = _FAILURES.search(stdout)
    if failures is not None:
        raise BenchError(f"wrk on {url}: {failures.group(0).strip()}")
    return float(rate.group(1))


def wrk_requests_per_second(url: str, connections: int, seconds: int, headers: list[str]) -> float:
    """wrk's requests/s for url; a BenchError if any request failed or got a non-2xx answer."""
    try:
        result = subprocess.run(
            wrk_command(url, connections, seconds, headers),
            capture_output=True,
            text=True,
            timeout=seconds + WRK_TIMEOUT_MARGIN_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {url} did not finish") from None
    return wrk_rate(url, result.returncode, result.stdout, result.stderr)


def manifest_rate(base_url: str, reference: str, connections: int, seconds: int) -> float:
    url = f"{base_url}/v2/{MANIFEST_REPOSITORY}/manifests/{reference}"
    return wrk_requests_per_second(url, connections, seconds, [f"Accept: {OCI_MANIFEST}"])


# -- small blobs -------------------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection; answers must carry a Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    async def request(
        self, method: str, target: str, body: bytes, content_type: str = ""
    ) -> tuple[int, dict[str, str]]:
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise BenchError(f"{method} {target}: answer without Content-Length")
        await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers


def _target(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _push_small_blobs(
    base_url: str, blobs: list[tuple[str, bytes]], concurrency: int
) -> None:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pending = iter(blobs)

    async def pusher() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        connection = _Connection(reader, writer, f"{host}:{port}")
        try:
            for digest, body in pending:
                status, headers = await connection.request(
                    "POST", f"/v2/{SMALL_BLOB_REPOSITORY}/blobs/uploads/", b""
                )
                if status != 202 or "location" not in headers:
                    raise BenchError(f"POST upload: status {status}")
                target = _target(headers["location"])
                target += ("&" if "?" in target else "?") + f"digest={digest}"
                status, _ = await connection.request(
                    "PUT", target, body, "application/octet-stream"
                )
                if status != 201:
                    raise BenchError(f"PUT of a small blob: status {status}")
        finally:
            writer.close()

    await asyncio.wait_for(
        asyncio.gather(*(pusher() for _ in range(concurrency))), SMALL_PUSH_TIMEOUT_SECONDS
    )


def small_blob_pushes_per_second(base_url: str, count: int, size: int, concurrency: int) -> float:
    """Push count new blobs of size bytes from concurrency connections; pushes per second."""
    blobs = []
    for _ in range(count):
        body = os.urandom(size)
        blobs.append((digest_of(body), body))
    started = time.perf_counter()
    asyncio.run(_push_small_blobs(base_url, blobs, concurrency))
    return count / (time.perf_counter() - started)


# -- concurrent blob GETs ----------------------------------------------------------------------


def parallel_get_mib_per_second(base_url: str, blob: Blob, parallel: int, total: int) -> float:
    """total GETs of blob, parallel at a time, from one curl process; aggregate MiB/s."""
    url = blob_url(base_url, blob.digest)
    command = ["curl", "-q", "-sS", "--noproxy", "*", "--parallel", "--parallel-immediate"]
    command += ["--parallel-max", str(parallel), "-w", "%{http_code} %{size_download}\\n"]
    for _ in range(total):
        command += ["-o", "/dev/null", url]
    started = time.perf_counter()
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PARALLEL_GET_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise BenchError("parallel GETs did not finish") from None
    seconds = time.perf_counter() - started
    answers = result.stdout.split("\n")[:-1]
    expected = f"200 {blob.size}"
    if result.returncode != 0 or len(answers) != total or any(a != expected for a in answers):
        raise BenchError(f"parallel GETs: {result.stderr.strip() or set(answers)}")
    return total * blob.size / MiB / seconds
