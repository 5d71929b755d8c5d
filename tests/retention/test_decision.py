"""The retention decision, table by table: which tags go, under which rules, and why."""

from __future__ import annotations

import hashlib

import pytest

from registry.config import NamespaceConfig, RetentionConfig
from registry.digest import Digest
from registry.namespaces import Namespaces
from registry.retention.decision import DAY, TagInfo, decide

NOW = 1_700_000_000.0


def digest(seed: str) -> Digest:
    return Digest("sha256", hashlib.sha256(seed.encode()).hexdigest())


def tag(name: str, pushed_days: float, pulled_days: float | None = None, to: str = "") -> TagInfo:
    pulled = None if pulled_days is None else NOW - pulled_days * DAY
    return TagInfo(name, digest(to or name), NOW - pushed_days * DAY, pulled)


def removed(
    retention: RetentionConfig | None,
    tags: list[TagInfo],
    immutable: tuple[str, ...] = (),
    children: dict[Digest, tuple[Digest, ...]] | None = None,
) -> list[str]:
    namespaces = Namespaces(
        (NamespaceConfig(pattern="team/**", retention=retention, immutable_tags=immutable),)
    )
    removals = decide(tags, namespaces.of("team/app"), NOW, children)
    return [r.tag.name for r in removals]


# Five tags pushed 1, 3, 10, 20 and 40 days ago; some pulled lately.
TAGS = [
    tag("a", 1),
    tag("b", 3, pulled_days=30),
    tag("c", 10, pulled_days=2),
    tag("d", 20),
    tag("latest", 40, pulled_days=0.5),
]


@pytest.mark.parametrize(
    ("rules", "gone"),
    [
        # each rule alone
        (RetentionConfig(keep_last=2), ["c", "d", "latest"]),
        (RetentionConfig(keep_days=7), ["c", "d", "latest"]),
        (RetentionConfig(keep_pulled_days=7), ["a", "b", "d"]),
        (RetentionConfig(keep_patterns=("lat*",)), ["a", "b", "c", "d"]),
        # OR of rules: a tag any rule keeps stays
        (RetentionConfig(keep_last=1, keep_pulled_days=7), ["b", "d"]),
        (RetentionConfig(keep_days=5, keep_patterns=("latest", "d")), ["c"]),
        (RetentionConfig(keep_last=2, keep_days=15, keep_pulled_days=1), ["d"]),
        # rules that are off: 0 is off, absent is off; no tag rule at all keeps every tag
        (RetentionConfig(keep_last=0, keep_days=7, keep_pulled_days=0), ["c", "d", "latest"]),
        (RetentionConfig(untagged_days=1), []),
        (RetentionConfig(), []),
        (None, []),
        # keeping more than there are
        (RetentionConfig(keep_last=10), []),
    ],
    ids=lambda value: repr(value) if not isinstance(value, list) else "",
)
def test_a_tag_is_kept_if_any_rule_keeps_it(rules: RetentionConfig | None, gone: list[str]) -> None:
    assert removed(rules, TAGS) == gone


def test_without_pull_statistics_keep_pulled_days_keeps_nothing() -> None:
    never_pulled = [tag("a", 0.1), tag("b", 50)]
    assert removed(RetentionConfig(keep_pulled_days=30), never_pulled) == ["a", "b"]


def test_the_first_matching_namespace_decides() -> None:
    namespaces = Namespaces(
        (
            NamespaceConfig(pattern="team/special", retention=RetentionConfig(keep_last=4)),
            NamespaceConfig(pattern="team/**", retention=RetentionConfig(keep_last=1)),
            NamespaceConfig(pattern="**", retention=None),
        )
    )
    assert [r.tag.name for r in decide(TAGS, namespaces.of("team/app"), NOW)] == [
        "b",
        "c",
        "d",
        "latest",
    ]
    assert [r.tag.name for r in decide(TAGS, namespaces.of("team/special"), NOW)] == ["latest"]
    assert decide(TAGS, namespaces.of("other/app"), NOW) == []
    assert decide(TAGS, Namespaces().of("team/app"), NOW) == []  # no namespace: keep all


def test_immutable_tags_are_never_removed_and_do_not_use_up_keep_last() -> None:
    tags = [tag("v1", 100), tag("v2", 90), tag("dev-1", 50), tag("dev-2", 40), tag("dev-3", 30)]
    # keep_last 1 among dev-*: dev-3; v* stay whatever their age
    assert removed(RetentionConfig(keep_last=1), tags, immutable=("v*",)) == ["dev-1", "dev-2"]


def test_digest_tags_are_untouchable_and_do_not_use_up_keep_last() -> None:
    subject = digest("app").encoded
    tags = [
        tag("old", 30),
        tag("new", 20),
        tag(f"sha256-{subject}", 1),
        tag(f"sha256-{subject}.sig", 1),
        tag(f"sha256-{subject}.att", 1),
        tag(f"sha256-{subject}.sbom", 2),
    ]
    assert removed(RetentionConfig(keep_last=1), tags) == ["old"]
    assert removed(RetentionConfig(keep_days=1), tags) == ["new", "old"]


def test_manifests_named_by_a_kept_index_keep_their_tags() -> None:
    index, amd64, arm64, nested = digest("index"), digest("amd64"), digest("arm64"), digest("n")
    tags = [
        tag("multi", 1, to="index"),  # kept by keep_last
        tag("multi-amd64", 30, to="amd64"),  # named by the kept index
        tag("deep", 31, to="n"),  # named by an index the kept index names
        tag("other", 32),
    ]
    children = {index: (amd64, arm64, digest("inner"))}
    children[digest("inner")] = (nested,)
    assert removed(RetentionConfig(keep_last=1), tags, children=children) == ["other"]
    # Without the index kept, its children protect nothing.
    old_index = [tag("multi", 40, to="index"), *tags[1:]]
    assert removed(RetentionConfig(keep_days=7), old_index, children=children) == [
        "deep",
        "multi",
        "multi-amd64",
        "other",
    ]


def test_the_reason_names_every_rule_that_did_not_keep_the_tag() -> None:
    namespaces = Namespaces(
        (
            NamespaceConfig(
                pattern="team/**",
                retention=RetentionConfig(
                    keep_last=3, keep_days=7, keep_pulled_days=30, keep_patterns=("latest",)
                ),
            ),
        )
    )
    tags = [tag("n1", 0), tag("n2", 0), tag("n3", 0), tag("old", 12), tag("pulled", 12, 45)]
    reasons = {r.tag.name: r.reason for r in decide(tags, namespaces.of("team/app"), NOW)}
    assert reasons == {
        "old": "not among the 3 most recently pushed; pushed 12 days ago (keep_days 7); "
        "never pulled (keep_pulled_days 30); matches no keep pattern",
        "pulled": "not among the 3 most recently pushed; pushed 12 days ago (keep_days 7); "
        "pulled 45 days ago (keep_pulled_days 30); matches no keep pattern",
    }


def test_tags_a_pattern_keeps_do_not_use_up_keep_last() -> None:
    tags = [tag("latest", 0), tag("new", 1), tag("older", 2), tag("oldest", 3)]
    # latest is the newest, but the pattern keeps it: keep_last 2 keeps new and older
    assert removed(RetentionConfig(keep_last=2, keep_patterns=("latest",)), tags) == ["oldest"]


def test_keep_last_breaks_ties_in_push_time_by_name() -> None:
    tags = [tag("b", 5), tag("a", 5), tag("c", 5)]
    assert removed(RetentionConfig(keep_last=2), tags) == ["c"]
