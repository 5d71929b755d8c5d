"""Docker token-auth scopes: `repository:team/app:pull,push registry:catalog:*`."""

from __future__ import annotations

from registry.auth.base import Access


def parse_scopes(values: list[str]) -> list[Access]:
    """Every well-formed scope in the (repeated, space-separated) `scope` values."""
    scopes: list[Access] = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            kind = kind.split("(", 1)[0]  # a resource class, `repository(plugin)`, is ignored
            if kind and name and actions:
                scopes.append(Access(kind, name, tuple(sorted(set(actions.split(","))))))
    return scopes


def covers(granted: list[Access], needed: Access) -> bool:
    """True when the grants include every action of `needed` (`*` grants them all)."""
    actions: set[str] = set()
    for grant in granted:
        if grant.type == needed.type and grant.name == needed.name:
            actions.update(grant.actions)
    return "*" in actions or set(needed.actions) <= actions


def to_claim(access: list[Access]) -> list[dict[str, object]]:
    return [{"type": a.type, "name": a.name, "actions": list(a.actions)} for a in access]


def from_claim(claim: object) -> list[Access]:
    if not isinstance(claim, list):
        return []
    access = []
    for item in claim:
        if isinstance(item, dict) and isinstance(item.get("actions"), list):
            actions = tuple(str(a) for a in item["actions"])
            access.append(Access(str(item.get("type", "")), str(item.get("name", "")), actions))
    return access
