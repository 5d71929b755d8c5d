"""The operator commands that list what the storage holds: `registry namespaces` (each
configured namespace with its repositories, tags, usage and rules) and `registry repo list`.

Both stream the catalog a page at a time and count tags a page at a time, so memory stays
bounded however many repositories there are; `cli.py` parses the arguments.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from registry.config import Config, RetentionConfig
from registry.errors import ErrorCode, RegistryError
from registry.namespaces import Namespace
from registry.operator_commands import run_on_registry
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import NotFound

PAGE = 1000
UNGOVERNED = "(no namespace)"


async def repositories(registry: Registry) -> AsyncIterator[tuple[str, int]]:
    """Every repository of the catalog in byte order, with its number of tags (a repository
    deleted meanwhile is left out)."""
    last: str | None = None
    while True:
        page = await registry.catalog(PAGE, last)
        for name in page.items:
            try:
                yield name, await tag_count(registry, name)
            except RegistryError as exc:
                if exc.code is not ErrorCode.NAME_UNKNOWN:
                    raise
        if not page.more or not page.items:
            return
        last = page.items[-1]


async def tag_count(registry: Registry, name: str) -> int:
    count, last = 0, None
    while True:
        page = await registry.list_tags(name, PAGE, last)
        count += len(page.items)
        if not page.more or not page.items:
            return count
        last = page.items[-1]


# -- registry repo list -----------------------------------------------------------------------


def list_repositories(config: Config, as_json: bool) -> int:
    """One line per repository (`NAME  N tags`), or one JSON array of {name, tags} printed
    as it is streamed."""

    async def command(registry: Registry) -> int:
        count = 0
        if as_json:
            sys.stdout.write("[")
        async for name, tags in repositories(registry):
            if as_json:
                item = json.dumps({"name": name, "tags": tags})
                sys.stdout.write(f"{',' if count else ''}\n  {item}")
            else:
                print(f"{name}\t{tags} tag{'' if tags == 1 else 's'}")
            count += 1
        if as_json:
            sys.stdout.write("\n]\n" if count else "]\n")
        print(f"registry: {count} repositor{'y' if count == 1 else 'ies'}", file=sys.stderr)
        return 0

    return run_on_registry(config, command)


# -- registry namespaces ----------------------------------------------------------------------


@dataclass
class Tally:
    repositories: int = 0
    tags: int = 0


def retention_summary(retention: RetentionConfig | None) -> str:
    """`keep last 3, pushed within 7d, patterns latest|stable; untagged after 1d`."""
    if retention is None:
        return "off (every tag kept)"
    rules = []
    if retention.keep_last is not None:
        rules.append(f"keep last {retention.keep_last}")
    if retention.keep_days is not None:
        rules.append(f"pushed within {retention.keep_days:g}d")
    if retention.keep_pulled_days:  # 0: off
        rules.append(f"pulled within {retention.keep_pulled_days:g}d")
    if retention.keep_patterns:
        rules.append(f"patterns {'|'.join(retention.keep_patterns)}")
    summary = ", ".join(rules) or "no keep rule"
    if retention.untagged_days is not None:
        summary += f"; untagged after {retention.untagged_days:g}d"
    return summary


async def usage(registry: Registry, namespace: Namespace) -> int | None:
    """The bytes the quota accounting holds for the namespace: 0 before anything was counted
    when a quota is set, None (not tracked) without one."""
    try:
        data, _ = await registry.storage.get_bytes(layout.namespace_usage(namespace.key))
    except NotFound:
        return 0 if namespace.config.quota is not None else None
    try:
        used = json.loads(data)["used"]
    except (ValueError, KeyError, TypeError):
        return None
    return used if isinstance(used, int) else None


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def namespaces(config: Config, as_json: bool, recount: bool = False) -> int:
    """Each configured namespace (in order, first match wins) with what it governs, then the
    repositories no namespace governs; with `recount`, after reconciling every quota's usage
    with what its repositories hold (registry/quota.py)."""

    async def command(registry: Registry) -> int:
        if recount:
            for done in await registry.quotas.reconcile_all(registry.namespaces, config.gc.settle):
                corrected = f", corrected usage by {-done.corrected}" if done.corrected else ""
                print(
                    f"registry: {done.namespace}: counted {done.added} bytes, gave back "
                    f"{done.returned} bytes{corrected}; {done.used} bytes in use",
                    file=sys.stderr,
                )
        configured = list(registry.namespaces)
        tallies = {namespace.key: Tally() for namespace in configured}
        ungoverned = Tally()
        async for name, tags in repositories(registry):
            namespace = registry.namespaces.of(name)
            tally = ungoverned if namespace is None else tallies[namespace.key]
            tally.repositories += 1
            tally.tags += tags
        rows = [
            _row(namespace, tallies[namespace.key], await usage(registry, namespace))
            for namespace in configured
        ]
        if as_json:
            document = {"namespaces": rows, "ungoverned": vars(ungoverned)}
            print(json.dumps(document, indent=2))
        else:
            _print_table(rows, ungoverned)
        return 0

    return run_on_registry(config, command)


def _row(namespace: Namespace, tally: Tally, used: int | None) -> dict[str, Any]:
    config = namespace.config
    retention = config.retention
    return {
        "pattern": config.pattern,
        "description": config.description,
        "repositories": tally.repositories,
        "tags": tally.tags,
        "used": used,
        "quota": config.quota,
        "public": config.public,
        "retention": None
        if retention is None
        else vars(retention) | {"keep_patterns": list(retention.keep_patterns)},
        "retention_summary": retention_summary(retention),
        "immutable_tags": list(config.immutable_tags),
    }


def _usage_cell(used: int | None, quota: int | None) -> str:
    shown = "-" if used is None else human_size(used)
    return shown if quota is None else f"{shown} / {human_size(quota)}"


def _print_table(rows: list[dict[str, Any]], ungoverned: Tally) -> None:
    header = (
        "PATTERN",
        "REPOS",
        "TAGS",
        "USAGE/QUOTA",
        "PUBLIC",
        "RETENTION",
        "IMMUTABLE",
        "DESCRIPTION",
    )
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["pattern"],
                str(row["repositories"]),
                str(row["tags"]),
                _usage_cell(row["used"], row["quota"]),
                "yes" if row["public"] else "no",
                row["retention_summary"],
                ", ".join(row["immutable_tags"]) or "-",
                row["description"] or "-",
            )
        )
    lines.append(
        (UNGOVERNED, str(ungoverned.repositories), str(ungoverned.tags), "-", "-", "-", "-", "-")
    )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        print("  ".join(cells).rstrip())
