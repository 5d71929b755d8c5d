"""Namespaces: the `namespaces` section compiled, and which one governs a repository.

The list is evaluated first-match-wins by repository pattern (registry/patterns.py). A
namespace may make its repositories public (anonymous pull), keep their tags by retention
rules, make tags immutable and cap their bytes with a quota (docs/namespaces.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from registry.config import NamespaceConfig, RetentionConfig
from registry.digest import SUPPORTED_ALGORITHMS
from registry.patterns import repository_pattern, tag_pattern

# Tags clients derive from a digest: the referrers-API fallback tag (`sha256-<hex>`) and
# cosign's signature, attestation and SBOM tags (`sha256-<hex>.sig`, `.att`, `.sbom`).
_ALGORITHMS = "|".join(re.escape(a) for a in SUPPORTED_ALGORITHMS)
_DIGEST_TAG = re.compile(rf"(?:{_ALGORITHMS})-[0-9a-f]{{64,128}}(?:\.(?:sig|att|sbom))?")


def is_digest_tag(tag: str) -> bool:
    """Whether the tag is one clients derive from a digest (referrers fallback, cosign):
    they are re-pushed to add signatures, so immutability and retention leave them alone."""
    return _DIGEST_TAG.fullmatch(tag) is not None


@dataclass(frozen=True)
class Namespace:
    config: NamespaceConfig
    key: str  # where its storage objects live (layout.namespace_*): stable per pattern
    _repositories: re.Pattern[str]
    _immutable: tuple[re.Pattern[str], ...]
    _kept: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, config: NamespaceConfig) -> Namespace:
        retention = config.retention or RetentionConfig()
        return cls(
            config,
            hashlib.sha256(config.pattern.encode()).hexdigest()[:16],
            repository_pattern(config.pattern),
            tuple(tag_pattern(p) for p in config.immutable_tags),
            tuple(tag_pattern(p) for p in retention.keep_patterns),
        )

    @property
    def pattern(self) -> str:
        return self.config.pattern

    def governs(self, repository: str) -> bool:
        return self._repositories.fullmatch(repository) is not None

    def immutable_rule(self, tag: str) -> str | None:
        """The `immutable_tags` pattern that makes the tag immutable, if any (never one of
        the digest tags: see is_digest_tag)."""
        if is_digest_tag(tag):
            return None
        for glob, compiled in zip(self.config.immutable_tags, self._immutable, strict=True):
            if compiled.fullmatch(tag):
                return glob
        return None

    def kept_by_pattern(self, tag: str) -> str | None:
        """The `retention.keep_patterns` pattern that keeps the tag, if any."""
        patterns = self.config.retention.keep_patterns if self.config.retention else ()
        for glob, compiled in zip(patterns, self._kept, strict=True):
            if compiled.fullmatch(tag):
                return glob
        return None


class Namespaces:
    """The configured namespaces, in order; a repository belongs to the first that matches."""

    def __init__(self, configs: tuple[NamespaceConfig, ...] = ()) -> None:
        self._namespaces = tuple(Namespace.of(config) for config in configs)

    def __iter__(self) -> Iterator[Namespace]:
        return iter(self._namespaces)

    def __len__(self) -> int:
        return len(self._namespaces)

    def of(self, repository: str) -> Namespace | None:
        for namespace in self._namespaces:
            if namespace.governs(repository):
                return namespace
        return None

    def is_public(self, repository: str) -> bool:
        namespace = self.of(repository)
        return namespace is not None and namespace.config.public
