"""Docker token-auth scopes: `repository:team/app:pull,push registry:catalog:*`."""

from __future__ import annotations

import re

from registry.auth.authorizer import Scope
from registry.auth.credentials import loggable

MAX_SCOPES = 256
# type[(class)]:name:action[,action...]; a name is printable ASCII (it may hold `:`, as in
# `host:5000/app`), never quotes, backslashes or spaces (scopes are echoed in challenges).
_SCOPE = re.compile(
    r"(?P<type>[a-z0-9]+)(?:\([a-z0-9]+\))?:(?P<name>[!#-\[\]-~]{1,512}):"
    r"(?P<actions>(?:\*|[a-z]+)(?:,(?:\*|[a-z]+))*,?)"
)


def parse_scopes(values: list[str]) -> list[Scope]:
    """The scopes in the (repeated, space-separated) `scope` values; ValueError names the
    first item that is not `type:name:action[,action...]`, or says there are too many."""
    scopes: list[Scope] = []
    for value in values:
        for item in value.split():
            match = _SCOPE.fullmatch(item)
            if match is None:
                raise ValueError(f"malformed scope {loggable(item)}: expected type:name:actions")
            if len(scopes) == MAX_SCOPES:
                raise ValueError(f"more than {MAX_SCOPES} scopes")
            wanted = tuple(sorted({a for a in match["actions"].split(",") if a}))
            scopes.append(Scope(match["type"], match["name"], wanted))
    return scopes


def covers(granted: list[Scope], needed: Scope) -> bool:
    """True when the grants include every action of `needed` (`*` grants them all)."""
    actions: set[str] = set()
    for grant in granted:
        if grant.type == needed.type and grant.name == needed.name:
            actions.update(grant.actions)
    return "*" in actions or set(needed.actions) <= actions


def to_claim(access: list[Scope]) -> list[dict[str, object]]:
    return [{"type": a.type, "name": a.name, "actions": list(a.actions)} for a in access]


def from_claim(claim: object) -> list[Scope]:
    if not isinstance(claim, list):
        return []
    access = []
    for item in claim:
        if isinstance(item, dict) and isinstance(item.get("actions"), list):
            actions = tuple(str(a) for a in item["actions"])
            access.append(Scope(str(item.get("type", "")), str(item.get("name", "")), actions))
    return access
