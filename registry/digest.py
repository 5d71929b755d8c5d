"""Content digests: parsing against the OCI grammar, and hashers for the algorithms we compute."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
SUPPORTED_ALGORITHMS = tuple(_ENCODED)  # the only ones content is ever stored under
# The grammar sets no length; storage keys (a file name, an S3 key segment) hold 255 bytes.
# Unregistered algorithms get the room of the longest registered digest (sha512: 128 hex).
SUPPORTED_ALGORITHMS = tuple(_ENCODED)  # what blobs and manifests can be stored under
MAX_ALGORITHM_LENGTH = 32
MAX_ENCODED_LENGTH = 128
MAX_LENGTH = MAX_ALGORITHM_LENGTH + 1 + MAX_ENCODED_LENGTH


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


class InvalidDigest(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse a grammar-valid digest; registered algorithms must also have valid hex, and
        others an algorithm and encoded part of at most 32 and 128 characters."""
        if len(text) > MAX_LENGTH:
            raise InvalidDigest(f"invalid digest {text[:80]!r}...: longer than {MAX_LENGTH}")
        if not _GRAMMAR.fullmatch(text):
            raise InvalidDigest(f"invalid digest {text!r}")
        algorithm, encoded = text.split(":", 1)
        if len(algorithm) > MAX_ALGORITHM_LENGTH or len(encoded) > MAX_ENCODED_LENGTH:
            raise InvalidDigest(f"invalid digest {text!r}: algorithm or encoded part too long")
        pattern = _ENCODED.get(algorithm)
        if pattern is not None and not pattern.fullmatch(encoded):
            raise InvalidDigest(f"invalid {algorithm} digest {text!r}")
        return cls(algorithm, encoded)

    @classmethod
    def parse_supported(cls, text: str) -> Digest:
        """Parse a digest whose algorithm we can compute (sha256, sha512)."""
        digest = cls.parse(text)
        if digest.algorithm not in _ENCODED:
            raise InvalidDigest(f"unsupported digest algorithm {digest.algorithm!r}")
        return digest

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        h = new_hasher(algorithm)
        h.update(data)
        return cls(algorithm, h.hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @property
    def is_supported(self) -> bool:
        return self.algorithm in _ENCODED


def new_hasher(algorithm: str) -> Hasher:
    if algorithm not in _ENCODED:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)
