"""Policy rules: repository patterns, principals, actions, the catalog grant."""

from __future__ import annotations

from registry.auth.authorizer import ANONYMOUS, Identity, Scope
from registry.auth.policy import Policy
from registry.config import GroupConfig, NamespaceConfig, PolicyConfig, PolicyRule
from registry.namespaces import Namespaces

RULES = PolicyConfig(
    groups=(GroupConfig("team-a", ("alice",)),),
    rules=(
        PolicyRule(("public/**",), ("anonymous", "authenticated"), ("pull",)),
        PolicyRule(("team-a/*",), ("group:team-a",), ("*",)),
        PolicyRule(("shared/*",), ("bob",), ("pull", "push")),
    ),
)
ALICE, BOB = Identity("alice"), Identity("bob")


def repo(name: str, *actions: str) -> Scope:
    return Scope("repository", name, actions)


def test_without_rules_authenticated_users_may_do_everything_and_anonymous_nothing() -> None:
    policy = Policy()
    assert policy.allows(ALICE, [repo("any/where", "pull", "push", "delete")])
    assert not policy.allows(ANONYMOUS, [repo("any/where", "pull")])
    assert policy.allows(ALICE, [Scope("registry", "catalog", ("*",))])
    assert not policy.allows(ANONYMOUS, [Scope("registry", "catalog", ("*",))])


def test_patterns_principals_and_actions() -> None:
    policy = Policy(RULES)
    assert policy.allows(ANONYMOUS, [repo("public/tools/app", "pull")])
    assert not policy.allows(ANONYMOUS, [repo("public/tools/app", "pull", "push")])
    assert policy.allows(ALICE, [repo("team-a/app", "pull", "push", "delete")])
    assert not policy.allows(ALICE, [repo("team-a/app/nested", "pull")])  # * stays in one part
    assert not policy.allows(BOB, [repo("team-a/app", "pull")])
    assert policy.allows(BOB, [repo("shared/x", "pull", "push")])
    assert not policy.allows(BOB, [repo("shared/x", "delete")])


def test_tokens_carry_the_intersection_of_what_was_asked_and_what_is_allowed() -> None:
    policy = Policy(RULES)
    asked = [repo("public/app", "pull", "push"), repo("team-a/app", "pull"), repo("x", "pull")]
    assert policy.grant(BOB, asked) == [repo("public/app", "pull")]
    assert policy.grant(ALICE, asked) == [repo("public/app", "pull"), repo("team-a/app", "pull")]
    assert policy.grant(ANONYMOUS, asked) == [repo("public/app", "pull")]


# First match wins: `open/private/**` is declared before the public `open/**`.
NAMESPACES = Namespaces(
    (
        NamespaceConfig(pattern="open/private/**"),
        NamespaceConfig(pattern="open/**", public=True),
    )
)


def test_a_public_namespace_adds_anonymous_pull_and_nothing_else_without_rules() -> None:
    policy = Policy(namespaces=NAMESPACES)
    assert policy.allows(ANONYMOUS, [repo("open/app", "pull")])
    assert policy.grant(ANONYMOUS, [repo("open/app", "pull", "push", "delete")]) == [
        repo("open/app", "pull")
    ]
    assert not policy.allows(ANONYMOUS, [repo("open/private/app", "pull")])
    assert not policy.allows(ANONYMOUS, [repo("elsewhere/app", "pull")])
    # The defaults stay: authenticated users may still do everything, everywhere.
    for name in ("open/app", "open/private/app", "elsewhere/app"):
        assert policy.allows(ALICE, [repo(name, "pull", "push", "delete")])
    assert not policy.allows(ANONYMOUS, [Scope("registry", "catalog", ("*",))])


def test_a_public_namespace_adds_pull_for_everyone_to_the_rules() -> None:
    policy = Policy(RULES, NAMESPACES)
    assert policy.allows(ANONYMOUS, [repo("open/app", "pull")])
    assert policy.allows(BOB, [repo("open/app", "pull")])  # no rule names bob there
    assert not policy.allows(BOB, [repo("open/app", "push")])
    assert policy.allows(ALICE, [repo("team-a/app", "pull", "push", "delete")])
    assert not policy.allows(ANONYMOUS, [repo("open/private/app", "pull")])
    assert policy.allows(ANONYMOUS, [repo("public/tools/app", "pull")])
