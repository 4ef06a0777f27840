"""Subcommands of `dnatrack` for assign (placeholder until its issue lands)."""


def register(subparsers) -> None:
    return None
