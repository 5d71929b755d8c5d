"""`registry retention plan|run [--json]`: the tags the namespaces' retention rules let go,
listed (plan) or deleted (run), on the configured storage, beside running replicas.

Both print one line per tag (or, with --json, one JSON document on stdout) and a summary on
stderr; `run` prints the tags it deleted, in the format `plan` lists them, so the two agree
line for line when nothing changed in between.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from registry.config import Config
from registry.errors import ErrorCode, RegistryError
from registry.maintenance import READ_ONLY_MESSAGE
from registry.operator_commands import run_on_registry
from registry.retention import planner
from registry.retention.planner import Plan, PlannedRemoval
from registry.service import Registry


def retention(config: Config, action: str, as_json: bool) -> int:
    """`plan` or `run`; the exit status (1: storage or registry error)."""

    async def command(registry: Registry) -> int:
        if action == "plan":
            return await _plan(registry, as_json)
        return await _run(registry, as_json)

    return run_on_registry(config, command)


async def _plan(registry: Registry, as_json: bool) -> int:
    plan = await planner.plan(registry.storage, registry.namespaces, time.time())
    if as_json:
        print(json.dumps({"tags": _entries(plan.removals), **_counts(plan)}, indent=2))
    else:
        _print_lines(plan.removals)
    _print_skipped(plan)
    print(
        f"retention plan: {len(plan.removals)} of {plan.tags_examined} tags in "
        f"{plan.repositories} repositories would be deleted; nothing was changed",
        file=sys.stderr,
    )
    return 0


async def _run(registry: Registry, as_json: bool) -> int:
    await registry.maintenance.read_flag()  # now, not as last polled
    if registry.read_only:
        raise RegistryError(ErrorCode.UNSUPPORTED, READ_ONLY_MESSAGE)
    plan = await planner.plan(registry.storage, registry.namespaces, time.time())
    deleted = await planner.apply(registry.storage, plan.removals)
    done = {(r.repository, r.tag) for r in deleted}
    changed = [r for r in plan.removals if (r.repository, r.tag) not in done]
    if as_json:
        document = {
            "deleted": _entries(deleted),
            "changed_meanwhile": _entries(changed),
            **_counts(plan),
        }
        print(json.dumps(document, indent=2))
    else:
        _print_lines(deleted)
    _print_skipped(plan)
    print(
        f"retention: deleted {len(deleted)} of {plan.tags_examined} tags in "
        f"{plan.repositories} repositories; their manifests go with garbage collection",
        file=sys.stderr,
    )
    if changed:
        print(
            f"registry: {len(changed)} planned tags were pushed again meanwhile and stay",
            file=sys.stderr,
        )
    return 0


def _time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entries(removals: list[PlannedRemoval]) -> list[dict[str, Any]]:
    return [
        {
            "repository": r.repository,
            "tag": r.tag,
            "digest": str(r.digest),
            "pushed": _time(r.pushed),
            "pulled": _time(r.pulled),
            "reason": r.reason,
        }
        for r in removals
    ]


def _counts(plan: Plan) -> dict[str, Any]:
    return {
        "repositories": plan.repositories,
        "tags_examined": plan.tags_examined,
        "skipped_repositories": plan.skipped,
    }


def _print_lines(removals: list[PlannedRemoval]) -> None:
    for r in removals:
        print(f"{r.repository}:{r.tag} {r.digest} pushed {_time(r.pushed)}: {r.reason}")


def _print_skipped(plan: Plan) -> None:
    for skipped in plan.skipped:
        print(f"registry: repository left alone: {skipped}", file=sys.stderr)
