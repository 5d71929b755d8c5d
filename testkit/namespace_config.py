"""Configuration files with a `namespaces` section (a list, which environment variables
cannot express), for servers (`run_registry(config_file=...)`) and operator commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from testkit.commands import storage_section
from testkit.registry import RunningRegistry


def namespaces_file(
    path: Path,
    namespaces: list[dict[str, Any]],
    storage_of: RunningRegistry | None = None,
    **sections: Any,
) -> Path:
    """Write a configuration with these namespaces (and other sections) to path; with
    `storage_of`, its `storage` section reaches that server's storage (for commands)."""
    document: dict[str, Any] = {"namespaces": namespaces, **sections}
    if storage_of is not None:
        document["storage"] = storage_section(storage_of)
    path.write_text(yaml.safe_dump(document))
    return path
