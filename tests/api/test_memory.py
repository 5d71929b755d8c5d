"""Blobs are streamed: the server's memory stays bounded while a 2 GiB blob is pushed."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.harness import RunningRegistry

BLOB_SIZE = 2 << 30
BLOCK = 4 << 20
RSS_BUDGET = 200 << 20


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        pending += [int(child) for child in children]
    return total


class PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, tree_rss(self.pid))


def test_pushing_a_2_gib_blob_keeps_server_memory_under_200_mib(
    fresh_registry: RunningRegistry,
) -> None:
    block = os.urandom(BLOCK)
    hasher = hashlib.sha256()
    for _ in range(BLOB_SIZE // BLOCK):
        hasher.update(block)
    digest = f"sha256:{hasher.hexdigest()}"

    def body() -> Iterator[bytes]:
        for _ in range(BLOB_SIZE // BLOCK):
            yield block

    sampler = PeakSampler(fresh_registry.process.pid)
    sampler.start()
    try:
        with httpx.Client(base_url=fresh_registry.url, timeout=300) as client:
            location = client.post("/v2/big/blobs/uploads/").headers["location"]
            assert client.patch(location, content=body()).status_code == 202
            r = client.put(location, params={"digest": digest})
            assert r.status_code == 201, r.text
            head = client.head(f"/v2/big/blobs/{digest}")
    finally:
        sampler.done.set()
        sampler.join()
    assert head.headers["content-length"] == str(BLOB_SIZE)
    assert 0 < sampler.peak < RSS_BUDGET, f"peak RSS {sampler.peak / 2**20:.0f} MiB"
