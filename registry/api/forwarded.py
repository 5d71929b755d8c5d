"""Who is calling and how they reached us, when proxies stand in between.

Forwarded headers are believed only from a TCP peer inside `http.trusted_proxies`; from any
other peer they are ignored. From a trusted one:
- the client address is the right-most address of `X-Forwarded-For` that is not itself a
  trusted proxy (each proxy appends the address it saw; everything left of the first
  untrusted hop is whatever the client chose to write);
- the scheme and host the client used come from `Forwarded` (`proto=`, `host=`), else from
  `X-Forwarded-Proto` / `X-Forwarded-Host`, first value (what the outermost proxy saw).
`ForwardedHeaders` writes them into the ASGI scope (client, scheme, Host header), so the
failed-login limiter, the logs, the token realm and every absolute URL see the client's view.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_FORWARDED_HOPS = 32  # X-Forwarded-For entries looked at, from the right
_HOST = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def parse_networks(cidrs: Iterable[str]) -> tuple[IpNetwork, ...]:
    """The networks of `http.trusted_proxies` (a bare address is a network of one);
    ValueError names the first entry that is neither."""
    networks: list[IpNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {cidr!r}") from None
    return tuple(networks)


def _address(text: str) -> IpAddress | None:
    """An address as proxies write it (`192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:443`,
    `2001:db8::1`); None for anything else (`unknown`, obfuscated identifiers)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def valid_host(host: str) -> bool:
    """A `host[:port]` fit to be put in a URL (and in a quoted challenge parameter)."""
    return len(host) <= 255 and _HOST.fullmatch(host) is not None


class TrustedProxies:
    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = parse_networks(cidrs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IpAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: IpAddress, x_forwarded_for: list[str]) -> IpAddress:
        """The right-most untrusted address of the chain that ends at the trusted `peer`; an
        entry that is no address stops the walk at the hop that wrote it."""
        client = peer
        entries = ",".join(x_forwarded_for).rsplit(",", MAX_FORWARDED_HOPS)[-MAX_FORWARDED_HOPS:]
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                break
            client = address
            if not self.trusts(address):
                break
        return client


def _forwarded_pairs(header: str) -> dict[str, str]:
    """The parameters of the first element of a `Forwarded` header (RFC 7239)."""
    first = header.split(",", 1)[0]
    pairs = {}
    for pair in first.split(";"):
        key, _, value = pair.partition("=")
        pairs[key.strip().lower()] = value.strip().strip('"')
    return pairs


def _first_value(header: str | None) -> str | None:
    return header.split(",", 1)[0].strip() if header else None


def forwarded_origin(headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(scheme, host) the client used, as the proxies tell; None for what they do not tell
    or tell in a form we do not accept."""
    if "forwarded" in headers:
        pairs = _forwarded_pairs(headers["forwarded"])
        proto, host = pairs.get("proto"), pairs.get("host")
    else:
        proto = _first_value(headers.get("x-forwarded-proto"))
        host = _first_value(headers.get("x-forwarded-host"))
    scheme = proto.lower() if proto and proto.lower() in ("http", "https") else None
    return scheme, host if host and valid_host(host) else None


class ForwardedHeaders:
    """Rewrites the scope of requests from trusted proxies as the module doc says; others
    pass untouched."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client") if scope["type"] == "http" else None
        address = _address(peer[0]) if peer else None
        if address is None or not self.proxies.trusts(address):
            await self.app(scope, receive, send)
            return
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers: dict[str, str] = {}
        x_forwarded_for: list[str] = []
        for name, value in raw_headers:
            key = name.decode("latin-1").lower()
            if key == "x-forwarded-for":
                x_forwarded_for.append(value.decode("latin-1"))
            elif key in ("forwarded", "x-forwarded-proto", "x-forwarded-host"):
                headers.setdefault(key, value.decode("latin-1"))
        scheme, host = forwarded_origin(headers)
        client = self.proxies.client(address, x_forwarded_for)
        rewritten = {**scope, "client": (str(client), 0)}
        if scheme is not None:
            rewritten["scheme"] = scheme
        if host is not None:
            others = [(n, v) for n, v in raw_headers if n.lower() != b"host"]
            rewritten["headers"] = [(b"host", host.encode("latin-1")), *others]
        await self.app(rewritten, receive, send)


def origin(request: Request) -> str:
    """`scheme://host[:port]` the client reached us at: the Host header (as a trusted proxy
    forwarded it, see above), or our own socket address when Host is missing or unfit."""
    host = request.headers.get("host", "")
    if not valid_host(host):
        server = request.scope.get("server")
        if server is None:
            host = "localhost"
        else:
            name, port = server
            host = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    return f"{request.scope.get('scheme', 'http')}://{host}"
