"""The ``dnatrack`` command: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dnatrack import __version__

#: The subcommand modules (``dnatrack.cli.<name>``), in the order of the usage.
SUBCOMMANDS = (
    "convert", "simulate", "panel_stats", "match", "assign", "analyze", "species",
    "lims_commands", "demo", "worker", "warmup", "exchange", "aitr",
)

#: The module that registers each command. A command line naming one imports and builds only
#: that module's parsers: the modules and the registering import what their options show
#: (numba kernels among them), which a command that does not use them should not wait for.
COMMAND_MODULES = {
    "convert": "convert", "simulate": "simulate", "panel-stats": "panel_stats",
    "match": "match", "calibrate": "match",
    "assign": "assign", "self-assign": "assign", "assess-reference": "assign",
    "analyze": "analyze", "species": "species",
    "db": "lims_commands", "serve": "lims_commands", "verify": "lims_commands",
    "custody": "lims_commands", "admin": "lims_commands",
    "demo": "demo", "worker": "worker", "warmup": "warmup", "exchange": "exchange",
    "aitr": "aitr",
}


def subcommand_module(name: str):
    """The module ``dnatrack.cli.<name>``."""
    return importlib.import_module(f"dnatrack.cli.{name}")


class CommandError(Exception):
    """A failure to report to the user as one line, without a traceback."""


def _command_of(argv: Sequence[str] | None) -> str | None:
    """The command an argument list names (its first argument), when it is one."""
    if argv:
        first = argv[0]
        if first in COMMAND_MODULES:
            return first
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser: every command's, or, when ``argv`` names a command, that
    command's module's only (the usage and help of that command are the same)."""
    parser = argparse.ArgumentParser(
        prog="dnatrack",
        description="Forensic DNA sample tracking and genotype matching for ivory and rhino horn.",
    )
    parser.add_argument("--version", action="version", version=f"dnatrack {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _command_of(argv)
    for name in SUBCOMMANDS if command is None else (COMMAND_MODULES[command],):
        subcommand_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, KeyError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"dnatrack {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dnatrack: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
