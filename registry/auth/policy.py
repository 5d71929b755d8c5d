"""Which identity may do what. The default: authenticated users may do everything,
anonymous callers nothing."""

from __future__ import annotations

from registry.auth.base import Access, Identity


class Policy:
    def allows(self, identity: Identity, needed: list[Access]) -> bool:
        return not identity.anonymous

    def grant(self, identity: Identity, asked: list[Access]) -> list[Access]:
        """What a token may carry: the asked access the identity is allowed, never more."""
        return [access for access in asked if self.allows(identity, [access])]
