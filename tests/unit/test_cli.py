"""The command-line convention: every leaf command takes --config; data commands take --json
and then print exactly one JSON document on stdout."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry import cli

Parser = argparse.ArgumentParser


def leaves(parser: Parser, path: tuple[str, ...] = ()) -> dict[str, Parser]:
    found: dict[str, Parser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= leaves(child, (*path, name))
    return found or {" ".join(path): parser}


def options(parser: Parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_every_leaf_command_takes_a_config_file() -> None:
    commands = leaves(cli._parser())
    assert set(commands) == {
        "serve",
        "gc",
        "namespaces",
        "user add",
        "user remove",
        "user list",
        "config show",
        "config check",
        "maintenance on",
        "maintenance off",
        "maintenance status",
        "repo delete",
        "repo list",
        "retention plan",
        "retention run",
    }
    assert all("--config" in options(parser) for parser in commands.values())


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_config_show_json_is_one_document_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "storage:\n  s3:\n    bucket: b\n    secret_key: hunter2\n    part_size: 8MiB\n"
    )
    shown = run("config", "show", "--json", env={"REGISTRY_CONFIG": str(config)})
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)  # the whole of stdout, one document
    s3 = document["storage"]["s3"]
    assert s3["secret_key"] == "(set)" and "hunter2" not in shown.stdout
    assert s3["part_size"] == 8 << 20 and document["storage"]["filesystem"] is None


def test_config_show_prints_units_as_written(tmp_path: Path) -> None:
    shown = run("config", "show", "--config", str(tmp_path / "absent.yaml"))
    assert shown.returncode == 2 and "cannot read config file" in shown.stderr
    shown = run("config", "show", env={"REGISTRY_STORAGE_UPLOADS_MAX_AGE_SECONDS": "90m"})
    assert shown.returncode == 0 and "max_age_seconds: 1h30m\n" in shown.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["config", "show"],
        ["user", "add", "x"],
        ["maintenance", "status"],
        ["repo", "delete", "x"],
        ["retention", "plan"],
    ],
)
def test_a_configuration_error_is_one_line_and_exit_status_2(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("log:\n  levle: debug\n")
    result = run(*command, "--config", str(config))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "registry: configuration error: log.levle: unknown configuration key"
        " (did you mean log.level?)"
    ]
