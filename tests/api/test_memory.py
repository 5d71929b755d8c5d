"""Blobs are streamed: the server's memory stays bounded while a 2 GiB blob is pushed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx

from testkit.process_tree import PeakRssSampler
from testkit.registry import RunningRegistry

BLOB_SIZE = 2 << 30
BLOCK = 4 << 20
RSS_BUDGET = 200 << 20


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

    with (
        PeakRssSampler(fresh_registry.process.pid) as sampler,
        httpx.Client(base_url=fresh_registry.url, timeout=300) as client,
    ):
        location = client.post("/v2/big/blobs/uploads/").headers["location"]
        assert client.patch(location, content=body()).status_code == 202
        r = client.put(location, params={"digest": digest})
        assert r.status_code == 201, r.text
        head = client.head(f"/v2/big/blobs/{digest}")
    assert head.headers["content-length"] == str(BLOB_SIZE)
    assert 0 < sampler.peak < RSS_BUDGET, f"peak RSS {sampler.peak / 2**20:.0f} MiB"
