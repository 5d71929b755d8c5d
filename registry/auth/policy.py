"""Which identity may do what, from `auth.policy` rules.

Without rules, authenticated users may pull, push and delete everywhere and anonymous
callers nothing. With rules, a repository action is allowed when some rule names the
repository (`*` matches within one path component, `**` across components), the caller
(a user name, `group:NAME`, `authenticated` or `anonymous`) and the action (`*`: all).
Listing the catalog (`registry:catalog:*`) is for the principals in `auth.policy.catalog`.

A repository of a public namespace (`namespaces[].public`, the first namespace matching
decides) may be pulled by anyone, anonymous callers included: that adds to the rules (or to
the defaults without rules), never grants push or delete and never takes anything away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.auth.authorizer import Identity, Scope
from registry.config import PolicyConfig
from registry.namespaces import Namespaces
from registry.patterns import repository_pattern

ALL_ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True)
class _Rule:
    repositories: tuple[re.Pattern[str], ...]
    principals: frozenset[str]
    actions: frozenset[str]


class Policy:
    def __init__(
        self, config: PolicyConfig | None = None, namespaces: Namespaces | None = None
    ) -> None:
        config = config or PolicyConfig()
        self._namespaces = namespaces or Namespaces()
        self._rules = [
            _Rule(
                tuple(repository_pattern(p) for p in rule.repositories),
                frozenset(rule.principals),
                frozenset(ALL_ACTIONS if "*" in rule.actions else rule.actions),
            )
            for rule in config.rules
        ]
        self._groups: dict[str, set[str]] = {}
        for group in config.groups:
            for member in group.members:
                self._groups.setdefault(member, set()).add(f"group:{group.name}")
        self._catalog = frozenset(config.catalog)

    def _principals(self, identity: Identity) -> set[str]:
        if identity.anonymous:
            return {"anonymous"}
        user = identity.user or ""
        return {"authenticated", user, *self._groups.get(user, ())}

    def permitted(self, identity: Identity, access: Scope) -> set[str]:
        """The actions of `access` the identity may do."""
        principals = self._principals(identity)
        if access.type == "registry" and access.name == "catalog":
            return set(access.actions) if principals & self._catalog else set()
        if access.type != "repository":
            return set()
        public = {"pull"} if self._namespaces.is_public(access.name) else set()
        if not self._rules:
            return public if identity.anonymous else set(ALL_ACTIONS) | {"*"}
        actions: set[str] = set(public)
        for rule in self._rules:
            if rule.principals & principals and any(
                p.fullmatch(access.name) for p in rule.repositories
            ):
                actions |= rule.actions
        return actions

    def allows(self, identity: Identity, needed: list[Scope]) -> bool:
        for access in needed:
            wanted = set(access.actions)
            if access.type == "repository" and "*" in wanted:
                wanted = set(ALL_ACTIONS)
            if not wanted <= self.permitted(identity, access):
                return False
        return True

    def grant(self, identity: Identity, asked: list[Scope]) -> list[Scope]:
        """What a token may carry: the asked actions the identity is allowed, never more."""
        granted = []
        for access in asked:
            permitted = self.permitted(identity, access)
            actions = tuple(a for a in access.actions if a in permitted)
            if actions:
                granted.append(Scope(access.type, access.name, actions))
        return granted
