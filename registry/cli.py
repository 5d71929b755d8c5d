"""Command line: `registry serve`, `registry gc`, `registry namespaces`,
`registry user list|add|remove`, `registry config show|check`,
`registry maintenance on|off|status`, `registry repo list|delete`,
`registry retention plan|run`.

The convention every command follows (and every later one will): each leaf command takes
`--config FILE` (default `$REGISTRY_CONFIG`, else the built-in defaults) and reads it exactly
as the server does; a command that prints data takes `--json` and then prints exactly one
JSON document on stdout; logs and errors go to stderr. Exit status: 0 done, 1 failed,
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import sys
import typing
from typing import Any

import yaml

from registry import __version__
from registry.auth.htpasswd import HtpasswdError, add_user, list_users, remove_user
from registry.config import CONFIG_FILE_ENV, Config, ConfigError, load_config
from registry.reference import is_valid_name
from registry.units import ByteSize, Duration, format_duration, format_size, parse_duration

SECRET_KEYS = ("access_key", "secret_key")


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get(CONFIG_FILE_ENV) or None,
        help=f"YAML configuration file (default: ${CONFIG_FILE_ENV}, else built-in defaults)",
    )
    return parser


def _with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead"
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description="OCI Distribution v1.1 registry")
    parser.add_argument("--version", action="version", version=f"registry {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    _with_config(commands.add_parser("serve", help="serve the registry API over HTTP"))

    gc = _with_json(
        _with_config(
            commands.add_parser(
                "gc", help="collect garbage once, while servers keep serving (any replicas)"
            )
        )
    )
    gc.add_argument("--dry-run", action="store_true", help="delete nothing, count what would go")
    gc.add_argument(
        "--grace", metavar="DURATION", type=_duration, help="override gc.blob_grace, e.g. 0s"
    )
    gc.add_argument("--settle", metavar="DURATION", type=_duration, help="override gc.settle")
    gc.add_argument(
        "--retention",
        action="store_true",
        help="apply the namespaces' retention rules first (as scheduled collections do)",
    )

    _namespaces_parser(commands)
    _user_parser(commands)
    _config_parser(commands)

    maintenance = commands.add_parser("maintenance", help="read-only maintenance mode")
    maintenance_commands = maintenance.add_subparsers(dest="maintenance_command", required=True)
    for action, what in (
        ("on", "refuse every change, on every replica (within seconds)"),
        ("off", "accept changes again"),
        ("status", "whether the registry is read-only, and why"),
    ):
        _with_json(_with_config(maintenance_commands.add_parser(action, help=what)))

    repo = commands.add_parser("repo", help="manage repositories")
    repo_commands = repo.add_subparsers(dest="repo_command", required=True)
    delete = _with_json(
        _with_config(
            repo_commands.add_parser(
                "delete", help="delete a repository's tags, manifests and blob links"
            )
        )
    )
    delete.add_argument("name", type=_repository_name)
    delete.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    delete.add_argument(
        "--force", action="store_true", help="delete it even if it has immutable tags"
    )
    _repo_list_parser(repo_commands)
    _add_retention(commands)
    return parser


def _namespaces_parser(commands: Any) -> None:
    namespaces = _with_json(
        _with_config(
            commands.add_parser(
                "namespaces",
                help="the configured namespaces: repositories, tags, usage, access, retention",
            )
        )
    )
    namespaces.add_argument(
        "--recount",
        action="store_true",
        help="first count each quota's usage from what its repositories hold (as garbage "
        "collection does): for a quota set on a namespace that already has content",
    )


def _user_parser(commands: Any) -> None:
    user = commands.add_parser("user", help="manage the users of the htpasswd file")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = _with_config(user_commands.add_parser("add", help="add a user, or set a password"))
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = _with_config(user_commands.add_parser("remove", help="remove a user"))
    remove.add_argument("name")
    listed = _with_json(_with_config(user_commands.add_parser("list", help="the user names")))
    for parser in (add, remove, listed):
        parser.add_argument("--file", metavar="HTPASSWD", help="default: auth.htpasswd.path")


def _config_parser(commands: Any) -> None:
    config = commands.add_parser("config", help="look at the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    _with_json(
        _with_config(
            config_commands.add_parser(
                "show", help="the effective configuration (defaults, file, environment)"
            )
        )
    )
    _with_json(
        _with_config(
            config_commands.add_parser(
                "check",
                help="validate the configuration (and the htpasswd file it names), then show it",
            )
        )
    )


def _repo_list_parser(repo_commands: Any) -> None:
    _with_json(
        _with_config(
            repo_commands.add_parser("list", help="the repositories, with their tag counts")
        )
    )


def _add_retention(commands: Any) -> None:
    """`registry retention plan|run` (registry/retention/command.py)."""
    retention = commands.add_parser("retention", help="the namespaces' tag retention rules")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True)
    for action, what in (
        ("plan", "list every tag retention would delete now, and why; change nothing"),
        ("run", "delete those tags (their manifests go with garbage collection)"),
    ):
        _with_json(_with_config(retention_commands.add_parser(action, help=what)))


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _repository_name(text: str) -> str:
    if not is_valid_name(text):
        raise argparse.ArgumentTypeError(f"invalid repository name {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, os.environ)
        if args.command == "user":
            return _user(config, args)
        if args.command == "config" and args.config_command == "show":
            return _show_config(config, args.json)
        from registry.auth.htpasswd import HtpasswdUsers

        if config.auth.mode != "none":  # an unusable htpasswd file stops us here, in one line
            HtpasswdUsers(config.auth.htpasswd.path)
        if args.command == "config":
            return _check_config(config, args)
    except (ConfigError, HtpasswdError) as exc:
        print(f"registry: configuration error: {exc}", file=sys.stderr)
        return 2
    from registry.storage.protocol import StorageError
    from registry.wiring import check_storage

    try:  # so does an unusable storage root
        check_storage(config)
    except StorageError as exc:
        print(f"registry: storage error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "namespaces" or (args.command == "repo" and args.repo_command == "list"):
        from registry import inventory_commands

        if args.command == "namespaces":
            return inventory_commands.namespaces(config, args.json, args.recount)
        return inventory_commands.list_repositories(config, args.json)
    if args.command == "retention":
        from registry.retention import command

        return command.retention(config, args.retention_command, args.json)
    if args.command in ("gc", "maintenance", "repo"):
        from registry import operator_commands

        if args.command == "gc":
            return operator_commands.collect_garbage(
                config, args.dry_run, args.grace, args.settle, args.json, args.retention
            )
        if args.command == "maintenance":
            return operator_commands.maintenance(config, args.maintenance_command, args.json)
        return operator_commands.delete_repo(config, args.name, args.dry_run, args.json, args.force)
    from registry.server import serve

    return serve(config, args.config)


def _user(config: Config, args: argparse.Namespace) -> int:
    path = args.file or config.auth.htpasswd.path
    if not path:
        raise ConfigError("auth.htpasswd.path: not set (or pass --file)")
    if args.user_command == "add":
        return _add_user(path, args)
    if args.user_command == "remove":
        if not remove_user(path, args.name):
            print(f"registry: no user {args.name} in {path}", file=sys.stderr)
            return 1
        print(f"user {args.name} removed from {path}", file=sys.stderr)
        return 0
    users = list_users(path)
    if args.json:
        print(json.dumps(users))
    else:
        for user in users:
            print(user)
    return 0


def _add_user(path: str, args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("registry: the passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("registry: empty password refused", file=sys.stderr)
        return 1
    existed = args.name in list_users(path) if os.path.exists(path) else False
    add_user(path, args.name, password)
    what = "password changed in" if existed else "written to"
    print(f"user {args.name} {what} {path}", file=sys.stderr)
    return 0


def _check_config(config: Config, args: argparse.Namespace) -> int:
    """`config show` after the checks a start makes before it touches storage (the file,
    the environment, the htpasswd file); the verdict on stderr."""
    _show_config(config, args.json)
    source = args.config or "the built-in defaults"
    print(f"registry: configuration valid: {source}", file=sys.stderr)
    return 0


def _show_config(config: Config, as_json: bool) -> int:
    document = _document(config, readable_units=not as_json)
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        print(yaml.safe_dump(document, sort_keys=False), end="")
    return 0


def _document(section: Any, readable_units: bool) -> Any:
    """A config section as plain data, secrets masked; durations and sizes spelled with
    units when readable (`10m`, `16MiB`), as numbers of seconds and bytes otherwise."""
    if dataclasses.is_dataclass(section) and not isinstance(section, type):
        document = {}
        for name, hint in typing.get_type_hints(type(section)).items():
            value = getattr(section, name)
            if name in SECRET_KEYS and value:
                document[name] = "(set)"
            elif readable_units and value is not None and _is(hint, Duration):
                document[name] = format_duration(value)
            elif readable_units and value is not None and _is(hint, ByteSize):
                document[name] = format_size(value)
            else:
                document[name] = _document(value, readable_units)
        return document
    if isinstance(section, tuple):
        return [_document(item, readable_units) for item in section]
    return section


def _is(hint: Any, unit: Any) -> bool:
    """Whether a type hint is `unit` or `unit | None`."""
    return hint is unit or unit in typing.get_args(hint)
