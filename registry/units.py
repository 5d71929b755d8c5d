"""Durations and byte sizes as operators write them, in configuration files and on the
command line: Go-style durations (`90s`, `10m`, `1h30m`, `250ms`) or a number of seconds, and
sizes with IEC units (`512KiB`, `16MiB`, `50GiB`) or a number of bytes."""

from __future__ import annotations

import re
from typing import NewType

Duration = NewType("Duration", float)  # seconds
ByteSize = NewType("ByteSize", int)  # bytes

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_SIZE_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB|TiB)?")


def parse_duration(value: str | float) -> Duration:
    """Seconds from `1h30m`-style text or a number of seconds; ValueError otherwise.

    Negative durations are refused: no setting of ours can use one."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                raise ValueError(f"expected a duration like 90s, 10m or 1h30m, got {value!r}")
            seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"expected a duration of 0 or more, got {value!r}")
    return Duration(seconds)


def parse_size(value: str | int) -> ByteSize:
    """Bytes from `512KiB`-style text or a number of bytes; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"expected a size like 512KiB, 16MiB or 1048576, got {value!r}")
        exact = float(match[1]) * _SIZE_UNITS[match[2] or ""]
        if exact != int(exact):
            raise ValueError(f"{value!r} is not a whole number of bytes")
        size = int(exact)
    if size < 0:
        raise ValueError(f"expected a size of 0 or more, got {value!r}")
    return ByteSize(size)


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of whole seconds (`7d` is `168h`); else `1.5s`."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    whole, text = int(seconds), ""
    for unit, length in (("h", 3600), ("m", 60)):
        if whole >= length:
            text += f"{whole // length}{unit}"
            whole %= length
    return text + (f"{whole}s" if whole or not text else "")


def format_size(size: int) -> str:
    """The largest IEC unit that spells size exactly: `16MiB`, `1536KiB`, `100`."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size and size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return str(size)
