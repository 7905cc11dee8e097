"""The `voxcast` command. Each service contributes its subcommands through a `register` function
in its own `cli` module, so this file only wires them together."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Modules with `register(commands, serve_commands)`; a module missing from an install is skipped.
COMMAND_MODULES = [
    "voxcast.demo",
    "voxcast.catalog.cli",
    "voxcast.render.cli",
    "voxcast.gateway.cli",
    "voxcast.ops",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxcast", description="voxcast: server-side DICOM rendering")
    parser.add_argument("--log-level", default=None, help="logging level (default: VOXCAST_LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="run one service")
    serve_commands = serve.add_subparsers(dest="service", metavar="SERVICE", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(commands, serve_commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from voxcast.config import get_settings

    logging.basicConfig(
        level=(args.log_level or get_settings().log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `voxcast ls | head`: the reader left; say nothing more (stdout is gone).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VoxcastCliError as exc:
        print(f"voxcast: error: {exc}", file=sys.stderr)
        return 2


class VoxcastCliError(Exception):
    """An error to show the user as one line, without a traceback."""


if __name__ == "__main__":
    sys.exit(main())
