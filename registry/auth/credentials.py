"""Credentials as clients send them, read defensively: the `Authorization` header, the user
name and the password are bounded and checked here, before any of them reaches passlib, a
log line, an error message or the failed-login table.

Whatever is wrong with them is a `MalformedCredentials` whose message is short and never
contains the credentials (the authorizers answer it with `401` and their challenge).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Checked before anything else is done with the header; real values are far shorter
# (a Basic value of a 255-byte user and a long password, or a JWT with a certificate chain).
MAX_AUTHORIZATION_CHARS = 8192
MAX_USER_BYTES = 255  # htpasswd's (and passlib's) limit
MAX_PASSWORD_BYTES = 4096  # passlib refuses longer ones; bcrypt reads only the first 72
MAX_LOGGED_CHARS = 64
# Control characters (C0 but tab, and DEL): never part of a header value, a user name or a
# password an htpasswd file can hold (NUL, CR, LF end or break its lines).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*")


class MalformedCredentials(ValueError):
    """Credentials we cannot read; the message says why without repeating them."""


@dataclass(frozen=True)
class Authorization:
    scheme: str  # lower case (schemes are case-insensitive): "basic", "bearer", ...
    value: str  # what follows the scheme, stripped


def parse_authorization(header: str) -> Authorization | None:
    """The `Authorization` header as scheme and value; None when absent or blank."""
    if len(header) > MAX_AUTHORIZATION_CHARS:
        raise MalformedCredentials(
            f"the Authorization header is longer than {MAX_AUTHORIZATION_CHARS} characters"
        )
    if not header.isascii() or _CONTROL.search(header):
        raise MalformedCredentials("the Authorization header holds non-ASCII or control characters")
    if not header.strip():
        return None
    scheme, _, value = header.strip().partition(" ")
    if not _SCHEME.fullmatch(scheme):
        raise MalformedCredentials("the Authorization header does not start with a scheme")
    value = value.strip()
    if not value:
        raise MalformedCredentials(f"the Authorization header has no {scheme} credentials")
    return Authorization(scheme.lower(), value)


def basic_credentials(value: str) -> tuple[str, str] | None:
    """(user, password) of a Basic value (RFC 7617: base64 of UTF-8 `user:password`); None
    for empty credentials (`Og==`, which some clients send when they have none)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise MalformedCredentials("the Basic credentials are not base64 of UTF-8 text") from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise MalformedCredentials("the Basic credentials have no ':' between user and password")
    if not user and not password:
        return None
    check_user(user)
    check_password(password)
    return user, password


def check_user(user: str) -> None:
    if not user:
        raise MalformedCredentials("the user name is empty")
    if len(user.encode("utf-8", "surrogatepass")) > MAX_USER_BYTES:
        raise MalformedCredentials(f"the user name is longer than {MAX_USER_BYTES} bytes")
    if ":" in user or _CONTROL.search(user):
        raise MalformedCredentials("the user name holds ':' or control characters")


def check_password(password: str) -> None:
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise MalformedCredentials(f"the password is longer than {MAX_PASSWORD_BYTES} bytes")
    if "\x00" in password:
        raise MalformedCredentials("the password holds a NUL character")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, saying so when it was cut."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def loggable(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """A value from a request as it may appear in a log line or an error message: quoted
    and escaped (repr), at most `limit` characters of it."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
