"""Grammars for repository names, tags and manifest references (OCI distribution-spec)."""

from __future__ import annotations

import re

from registry.digest import Digest, InvalidDigest

NAME_MAX_LENGTH = 255
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")


def is_valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and _NAME.fullmatch(name) is not None


def is_valid_tag(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


def parse_reference(reference: str) -> str | Digest:
    """A manifest reference is a digest if it contains ':', otherwise a tag.

    Raises ValueError when it is neither.
    """
    if ":" in reference:
        try:
            return Digest.parse(reference)
        except InvalidDigest as exc:
            raise ValueError(str(exc)) from exc
    if is_valid_tag(reference):
        return reference
    raise ValueError(f"invalid tag {reference!r}")
