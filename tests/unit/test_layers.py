"""The import rules that keep the layers apart: HTTP -> service -> layout/Storage protocol ->
drivers, data flowing one way. `app`, `wiring`, `server` and `cli` are the composition root
and may import anything (`connections` is the server's per-connection protocol)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "registry"
# Modules that only speak HTTP and authorization, and go through the service for data.
HTTP = ("registry.routes", "registry.api", "registry.auth")
# The domain: no HTTP, no configuration, no composition.
SERVICE = (
    "registry.service",
    "registry.uploads",
    "registry.concurrency",
    "registry.streams",
    "registry.manifest",
    "registry.manifest_cache",
    "registry.manifest_store",
    "registry.referrers",
    "registry.gc",
    "registry.maintenance",
    "registry.repository_delete",
    "registry.quota",
    "registry.retention.planner",
    "registry.retention.pulls",
)
STORAGE = ("registry.storage",)
COMPOSITION = (
    "registry.app",
    "registry.wiring",
    "registry.server",
    "registry.connections",
    "registry.cli",
    "registry.operator_commands",
    "registry.inventory_commands",
    "registry.periodic",
    "registry.reload",
    "registry.retention.command",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def offending(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        module: sorted(name for name in imported if within(name, forbidden))
        for module, imported in MODULES.items()
        if within(module, layer)
    }
    return {module: names for module, names in found.items() if names}


def test_the_layers_cover_every_module() -> None:
    shared_leaves = {
        "registry",
        "registry.__main__",
        "registry.errors",
        "registry.digest",
        "registry.reference",
        "registry.units",
        "registry.config",
        "registry.patterns",
        "registry.namespaces",  # the namespaces section compiled: configuration, like config
        "registry.retention",  # a docstring
        "registry.retention.decision",  # the retention rules applied: pure, like namespaces
        "registry.libc",
        "registry.memory",
    }
    layers = HTTP + SERVICE + STORAGE + COMPOSITION
    assert {m for m in MODULES if not within(m, layers)} == shared_leaves


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (HTTP, ("registry.storage", "registry.uploads", "registry.wiring")),
        (SERVICE, (*HTTP, *COMPOSITION, "registry.config", "starlette")),
        (
            STORAGE,
            (*HTTP, *SERVICE, *COMPOSITION, "registry.config", "registry.errors", "starlette"),
        ),
    ],
    ids=["http", "service", "storage"],
)
def test_each_layer_imports_only_downward(
    layer: tuple[str, ...], forbidden: tuple[str, ...]
) -> None:
    assert offending(layer, forbidden) == {}


def test_only_the_composition_root_builds_storage_drivers() -> None:
    drivers = ("registry.storage.filesystem", "registry.storage.s3")
    users = {m for m, imported in MODULES.items() if any(within(n, drivers) for n in imported)}
    assert users <= {"registry.wiring", *drivers}
