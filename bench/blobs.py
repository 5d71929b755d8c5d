"""Random blob files, unique per call, with their sha256 digest computed while writing.

Also the plain-write baseline: how fast this process writes a new file on the same disk.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

BLOCK_SIZE = 4 << 20
PLAIN_WRITE_BLOCK_SIZE = 1 << 20
UNIQUE_PREFIX_SIZE = 32


@dataclass(frozen=True)
class Blob:
    path: Path
    size: int
    digest: str


@functools.cache
def _random_pool() -> bytes:
    return os.urandom(BLOCK_SIZE)


def _random_block(rng: random.Random) -> bytes:
    """The random pool rotated by a random offset: fresh-looking data at memcpy speed."""
    pool = _random_pool()
    offset = rng.randrange(BLOCK_SIZE)
    return pool[offset:] + pool[:offset]


def make_blob(directory: Path, size: int) -> Blob:
    """Write `size` bytes that no other call produces (a random prefix, rotated random blocks)."""
    rng = random.Random(os.urandom(16))
    path = directory / f"blob-{uuid.uuid4().hex}"
    hasher = hashlib.sha256()
    block_count = -(-size // BLOCK_SIZE)
    with open(path, "wb") as f:
        for index in range(block_count):
            block = _random_block(rng)
            if index == 0:
                block = os.urandom(UNIQUE_PREFIX_SIZE) + block[UNIQUE_PREFIX_SIZE:]
            block = block[: min(BLOCK_SIZE, size - index * BLOCK_SIZE)]
            hasher.update(block)
            f.write(block)
    return Blob(path, size, f"sha256:{hasher.hexdigest()}")


def plain_write_seconds(directory: Path, size: int) -> float:
    """Seconds to write `size` bytes to a new file with 1 MiB os.write calls (file removed)."""
    path = directory / f"plain-{uuid.uuid4().hex}"
    block = memoryview(_random_pool())[:PLAIN_WRITE_BLOCK_SIZE]
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for offset in range(0, size, PLAIN_WRITE_BLOCK_SIZE):
            os.write(fd, block[: min(PLAIN_WRITE_BLOCK_SIZE, size - offset)])
    finally:
        os.close(fd)
        elapsed = time.perf_counter() - started
        path.unlink()
    return elapsed
