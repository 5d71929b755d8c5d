"""Command line: `registry serve [--config FILE]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from registry import __version__
from registry.config import CONFIG_FILE_ENV, ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description="OCI Distribution v1.1 registry")
    parser.add_argument("--version", action="version", version=f"registry {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the registry API over HTTP")
    serve.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get(CONFIG_FILE_ENV) or None,
        help=f"YAML configuration file (default: ${CONFIG_FILE_ENV}, else built-in defaults)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as exc:
        print(f"registry: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from registry.server import serve

    return serve(config, args.config)
