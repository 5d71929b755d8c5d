"""Handing freed memory back to the system while the server runs (glibc).

glibc keeps freed heap memory for reuse, and after a large allocation is freed it serves
later ones of that size from the heap too; after pushes to S3 (parts of tens of MiB) an idle
server stayed 35 MiB bigger than it needs (119 instead of 83 MiB). malloc_trim returns what
is free. A no-op where glibc is missing.
"""

from __future__ import annotations

import ctypes

import anyio.to_thread

from registry import libc

TRIM_INTERVAL_SECONDS = 1.0  # a trim with nothing to give back costs microseconds

_malloc_trim = libc.function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


def trim() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


async def trim_in_thread() -> None:
    await anyio.to_thread.run_sync(trim)
