"""The Authorizer protocol: given a request and the access its route needs, admit or refuse.

Routes declare what they need (`routes.py`); handlers never look at users themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class Scope:
    """One grant in Docker scope terms: `repository:team/app:pull,push`, `registry:catalog:*`."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True, slots=True)
class Identity:
    user: str | None  # None: anonymous
    # The fingerprint of the htpasswd entry a password was checked against, which refresh
    # tokens are bound to; None for anonymous callers and identities taken from a token.
    credential: str | None = field(default=None, compare=False)

    @property
    def anonymous(self) -> bool:
        return self.user is None


ANONYMOUS = Identity(None)


class Authorizer(Protocol):
    async def authorize(
        self, request: Request, needed: list[Scope], *, login: bool = False
    ) -> Identity:
        """The caller's identity if it may do all of `needed`; raises RegistryError otherwise.

        `login` marks the API probe `GET /v2/`, which must challenge callers without
        credentials whenever authentication is on (so `docker login` checks passwords).
        """
        ...

    def may(self, identity: Identity, access: Scope) -> bool:
        """Whether policy lets an admitted identity do something beyond the route's own
        needs (list a repository in the catalog, mount from another repository)."""
        ...


class OpenAuthorizer:
    """auth.mode: none — everyone may do everything."""

    def may(self, identity: Identity, access: Scope) -> bool:
        return True

    async def authorize(
        self, request: Request, needed: list[Scope], *, login: bool = False
    ) -> Identity:
        return ANONYMOUS
