"""Command line: `registry serve [--config FILE]`, `registry user add NAME`."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from registry import __version__
from registry.auth.htpasswd import HtpasswdError, add_user
from registry.config import CONFIG_FILE_ENV, Config, ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description="OCI Distribution v1.1 registry")
    parser.add_argument("--version", action="version", version=f"registry {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"YAML configuration file (default: ${CONFIG_FILE_ENV}, else built-in defaults)"
    default_config = os.environ.get(CONFIG_FILE_ENV) or None

    serve = commands.add_parser("serve", help="serve the registry API over HTTP")
    serve.add_argument("--config", metavar="FILE", default=default_config, help=config_help)

    user = commands.add_parser("user", help="manage the users of the htpasswd file")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add a user, or set a user's password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--file", metavar="HTPASSWD", help="default: auth.htpasswd.path")
    add.add_argument("--config", metavar="FILE", default=default_config, help=config_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, os.environ)
        if args.command == "user":
            return _add_user(config, args)
        from registry.auth.htpasswd import HtpasswdUsers

        if config.auth.mode != "none":  # an unusable htpasswd file stops us here, in one line
            HtpasswdUsers(config.auth.htpasswd.path)
    except (ConfigError, HtpasswdError) as exc:
        print(f"registry: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from registry.server import serve

    return serve(config, args.config)


def _add_user(config: Config, args: argparse.Namespace) -> int:
    path = args.file or config.auth.htpasswd.path
    if not path:
        raise ConfigError("auth.htpasswd.path: not set (or pass --file)")
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
    add_user(path, args.name, password)
    print(f"user {args.name} written to {path}")
    return 0
