"""The ``dnatrack`` command: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dnatrack import __version__
from dnatrack.cli import (
    aitr,
    analyze,
    assign,
    convert,
    demo,
    exchange,
    lims_commands,
    match,
    panel_stats,
    simulate,
    species,
    warmup,
    worker,
)

SUBCOMMANDS = (
    convert, simulate, panel_stats, match, assign, analyze, species, lims_commands, demo,
    worker, warmup, exchange, aitr,
)


class CommandError(Exception):
    """A failure to report to the user as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnatrack",
        description="Forensic DNA sample tracking and genotype matching for ivory and rhino horn.",
    )
    parser.add_argument("--version", action="version", version=f"dnatrack {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    parser = build_parser()
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
