"""Request load for the garbage-collection rows, loopback only, bounded in count and time.

- GETs of many manifests (by tag) and many blobs: `wrk` with a Lua script that walks a list
  of paths, two wrk processes side by side for one window of seconds;
- blob HEADs, blob mounts and manifest PUTs: a minimal asyncio HTTP/1.1 client on
  keep-alive connections, each request given in advance (so the count is bounded), stopping
  at a deadline too. (wrk waits for a body after a HEAD answer with a Content-Length, so it
  cannot time HEADs.)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.servers import BenchError
from bench.workloads import WRK_TIMEOUT_MARGIN_SECONDS, wrk_command, wrk_rate
from testkit.oci import OCI_MANIFEST

REQUEST_TIMEOUT_SECONDS = 30.0
ACCEPT_MANIFEST = f"Accept: {OCI_MANIFEST}"


# -- wrk over many paths ------------------------------------------------------------------------


def write_wrk_script(path: Path, targets: Sequence[str]) -> Path:
    """A Lua script making wrk GET each target in turn (JSON strings are valid Lua strings
    for these ASCII paths)."""
    if not targets:
        raise BenchError("a wrk script needs at least one path")
    quoted = ",\n  ".join(json.dumps(target) for target in targets)
    path.write_text(
        f"local paths = {{\n  {quoted}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\n"
        "end\n"
    )
    return path


@dataclass(frozen=True)
class WrkLoad:
    script: Path
    connections: int
    headers: tuple[str, ...] = ()


def wrk_side_by_side(base_url: str, loads: Sequence[WrkLoad], seconds: int) -> list[float]:
    """Run every load at once for `seconds`; each one's requests/s (any failure fails)."""
    processes = []
    try:
        for load in loads:
            command = wrk_command(
                base_url, load.connections, seconds, list(load.headers), load.script
            )
            processes.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        rates = []
        for process in processes:
            try:
                stdout, stderr = process.communicate(timeout=seconds + WRK_TIMEOUT_MARGIN_SECONDS)
            except subprocess.TimeoutExpired:
                raise BenchError(f"wrk on {base_url} did not finish") from None
            rates.append(wrk_rate(base_url, process.returncode, stdout, stderr))
        return rates
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# -- the asyncio client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    expect: int
    body: bytes = b""
    content_type: str = ""


@dataclass(frozen=True)
class Rate:
    done: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    async def send(self, request: Request) -> int:
        """The answer's status; its body (by Content-Length; none after HEAD) is read and
        dropped."""
        head = f"{request.method} {request.target} HTTP/1.1\r\nHost: {self.host}\r\n"
        if request.content_type:
            head += f"Content-Type: {request.content_type}\r\n"
        head += f"Content-Length: {len(request.body)}\r\n\r\n"
        self.writer.write(head.encode() + request.body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        length = None
        for line in lines:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value.strip())
            elif key.strip().lower() == "transfer-encoding":
                raise BenchError(f"{request.method} {request.target}: a chunked answer")
        if request.method != "HEAD" and length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def _run(base_url: str, requests: Sequence[Request], connections: int, seconds: float) -> int:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pending: Iterator[Request] = iter(requests)
    deadline = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        connection = _Connection(reader, writer, f"{host}:{port}")
        try:
            for request in pending:
                status = await connection.send(request)
                if status != request.expect:
                    raise BenchError(
                        f"{request.method} {request.target}: status {status},"
                        f" {request.expect} expected"
                    )
                done += 1
                if time.monotonic() > deadline:
                    break
        finally:
            writer.close()

    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(connections))),
        seconds + REQUEST_TIMEOUT_SECONDS,
    )
    return done


def request_rate(
    base_url: str, requests: Sequence[Request], connections: int, seconds: float
) -> Rate:
    """Send the requests from `connections` keep-alive connections until all are answered or
    `seconds` have passed; how many were answered in how long."""
    started = time.perf_counter()
    done = asyncio.run(_run(base_url, requests, connections, seconds))
    return Rate(done, time.perf_counter() - started)
