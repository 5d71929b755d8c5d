"""Docker token-auth scopes: `repository:team/app:pull,push registry:catalog:*`."""

from __future__ import annotations

from registry.auth.authorizer import Scope


def parse_scopes(values: list[str]) -> list[Scope]:
    """The scopes in the (repeated, space-separated) `scope` values; ValueError names the
    first item that is not `type:name:action[,action...]`."""
    scopes: list[Scope] = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            kind = kind.split("(", 1)[0]  # a resource class, `repository(plugin)`, is ignored
            wanted = tuple(sorted({action for action in actions.split(",") if action}))
            if not (kind and name and wanted):
                raise ValueError(f"malformed scope {item!r}: expected type:name:actions")
            scopes.append(Scope(kind, name, wanted))
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
