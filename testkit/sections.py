"""Configuration files with sections beyond what the environment can say (lists, such as
`namespaces`), for servers and operator commands alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from testkit.commands import config_file
from testkit.registry import RunningRegistry


def write_config(path: Path, sections: dict[str, Any]) -> Path:
    """A configuration file holding `sections` (a server takes its storage from the
    environment run_registry sets)."""
    path.write_text(yaml.safe_dump(sections))
    return path


def operator_config_with(server: RunningRegistry, sections: dict[str, Any]) -> Path:
    """config_file(server) (its storage, a short gc.settle) with `sections` added."""
    path = config_file(server)
    document = yaml.safe_load(path.read_text())
    document.update(sections)
    path.write_text(yaml.safe_dump(document))
    return path
