"""Starting the writeback of a file's dirty pages early, without waiting for it (Linux).

A blob is fsynced before it is renamed into place. Left alone, the kernel writes most of a
large blob back only then, and the fsync waits for all of it; asking for writeback of each
stretch as soon as it is written overlaps the disk with receiving and hashing the next ones,
so the final fsync has little left to do. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes

from registry import libc

_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = libc.function(
    "sync_file_range",
    [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint],
    ctypes.c_int,
)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing [offset, offset + length) of fd to disk; best effort."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
