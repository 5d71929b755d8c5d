"""Free loopback ports, and whether an HTTP server answers yet."""

from __future__ import annotations

import socket
import ssl

import httpx

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick; it may be taken again later)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def http_answers(url: str, verify: ssl.SSLContext | bool = True, status: int | None = None) -> bool:
    """Whether url answers HTTP at all, or with `status` when one is given."""
    try:
        with httpx.Client(trust_env=False, timeout=2.0, verify=verify) as client:
            answered = client.get(url).status_code
    except httpx.TransportError:
        return False
    return status is None or answered == status
