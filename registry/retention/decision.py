"""Which tags of one repository retention removes, and why: a pure function of the tags
(push time, pull time), the namespace's rules, the time now and the index children of the
repository's manifests.

A tag is kept if any rule keeps it: `keep_last` (the N most recently pushed), `keep_days`
(pushed within D days), `keep_pulled_days` (pulled within D days), `keep_patterns` (a full
match). An absent rule (or 0) is off; a namespace without retention, or whose retention sets
none of these rules, keeps every tag. Never removed, whatever the rules: immutable tags, the
tags clients derive from digests (referrers fallback, cosign: namespaces.is_digest_tag) and
tags naming a manifest that a kept index names (recursively). `keep_last` counts only the tags
retention may remove, so digest tags, immutable tags and tags a keep pattern keeps do not use
up its slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from registry.config import RetentionConfig
from registry.digest import Digest
from registry.namespaces import Namespace, is_digest_tag

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class TagInfo:
    name: str
    digest: Digest
    pushed: float  # when the tag was last set (its object's modification time)
    pulled: float | None = None  # when its manifest was last pulled (None: no record)


@dataclass(frozen=True, slots=True)
class Removal:
    tag: TagInfo
    reason: str  # why no rule keeps it, for people


def has_tag_rules(retention: RetentionConfig | None) -> bool:
    """Whether the rules decide about tags at all (a retention section may set only
    `untagged_days`, which is garbage collection's business)."""
    if retention is None:
        return False
    return bool(retention.keep_last or retention.keep_days or retention.keep_pulled_days) or bool(
        retention.keep_patterns
    )


def decide(
    tags: Sequence[TagInfo],
    namespace: Namespace | None,
    now: float,
    children: Mapping[Digest, Sequence[Digest]] | None = None,
) -> list[Removal]:
    """The tags retention removes, sorted by name. `children`: the manifests each index
    names, as far as known (an index missing from it protects nothing yet: the caller reads
    it and asks again, see planner.py)."""
    retention = namespace.config.retention if namespace is not None else None
    if namespace is None or retention is None or not has_tag_rules(retention):
        return []
    decided = [
        t for t in tags if not is_digest_tag(t.name) and namespace.immutable_rule(t.name) is None
    ]
    # keep_last ranks only the tags retention may remove: a tag a pattern keeps takes no slot.
    removable = [t for t in decided if namespace.kept_by_pattern(t.name) is None]
    newest = sorted(removable, key=lambda t: (-t.pushed, t.name))
    last = retention.keep_last or 0
    recent = {t.name for t in newest[:last]}
    candidates = [
        t for t in decided if t.name not in recent and not _kept(t, namespace, retention, now)
    ]
    removed = {t.name for t in candidates}
    protected = _reachable((t.digest for t in tags if t.name not in removed), children or {})
    return [
        Removal(t, _reason(t, namespace, retention, now))
        for t in sorted(candidates, key=lambda t: t.name)
        if t.digest not in protected
    ]


def _kept(tag: TagInfo, namespace: Namespace, retention: RetentionConfig, now: float) -> bool:
    """Whether a rule other than keep_last keeps the tag."""
    if retention.keep_days and now - tag.pushed < retention.keep_days * DAY:
        return True
    pulled_days = retention.keep_pulled_days
    if pulled_days and tag.pulled is not None and now - tag.pulled < pulled_days * DAY:
        return True
    return namespace.kept_by_pattern(tag.name) is not None


def _reachable(roots: Iterable[Digest], children: Mapping[Digest, Sequence[Digest]]) -> set[Digest]:
    """The manifests the kept tags' indexes name, recursively (not the roots themselves)."""
    found: set[Digest] = set()
    work = [child for root in set(roots) for child in children.get(root, ())]
    while work:
        digest = work.pop()
        if digest not in found:
            found.add(digest)
            work += children.get(digest, ())
    return found


def reachable_unknown(
    tags: Sequence[TagInfo],
    removals: Sequence[Removal],
    children: Mapping[Digest, Sequence[Digest]],
) -> set[Digest]:
    """The manifests the kept tags name (directly or through known indexes) whose children
    are not known yet: what the caller must read before the decision is final."""
    removed = {r.tag.name for r in removals}
    kept = {t.digest for t in tags if t.name not in removed}
    return {d for d in kept | _reachable(kept, children) if d not in children}


def _reason(tag: TagInfo, namespace: Namespace, retention: RetentionConfig, now: float) -> str:
    why = []
    if retention.keep_last:
        why.append(f"not among the {retention.keep_last} most recently pushed")
    if retention.keep_days:
        why.append(f"pushed {_ago(now - tag.pushed)} (keep_days {retention.keep_days:g})")
    if retention.keep_pulled_days:
        pulled = "never pulled" if tag.pulled is None else f"pulled {_ago(now - tag.pulled)}"
        why.append(f"{pulled} (keep_pulled_days {retention.keep_pulled_days:g})")
    if retention.keep_patterns:
        why.append("matches no keep pattern")
    return "; ".join(why)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for unit, size, limit in (("second", 1, 120), ("minute", 60, 7200), ("hour", 3600, 2 * DAY)):
        if seconds < limit:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    days = seconds / DAY
    return f"{int(days)} days ago" if days >= 10 else f"{days:.1f} days ago"
