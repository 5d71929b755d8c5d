"""Optional Linux/glibc functions that Python's os module does not offer, via ctypes."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any


def function(name: str, argtypes: list[Any], restype: Any) -> Any | None:
    """The C library's function `name` with its signature set, or None where it is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        found = getattr(ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True), name)
    except (OSError, AttributeError):
        return None
    found.argtypes = argtypes
    found.restype = restype
    return found
