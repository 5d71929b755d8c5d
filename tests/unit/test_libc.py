"""The C library functions the server relies on for speed and memory are found on Linux/glibc
(where they are missing the server still works, without early writeback or heap trimming)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from registry import libc, memory
from registry.storage import writeback


def test_sync_file_range_and_malloc_trim_are_available_here() -> None:
    assert writeback._sync_file_range is not None
    assert memory._malloc_trim is not None


def test_a_missing_function_is_none() -> None:
    assert libc.function("no_such_function_in_libc", [], ctypes.c_int) is None


def test_the_signatures_work(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"x" * 65536)
        assert writeback._sync_file_range is not None
        assert writeback._sync_file_range(fd, 0, 65536, 2) == 0
    finally:
        os.close(fd)
    assert memory._malloc_trim is not None
    assert memory._malloc_trim(0) in (0, 1)
