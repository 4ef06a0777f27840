"""Subcommands of `dnatrack` for lims commands (placeholder until its issue lands)."""


def register(subparsers) -> None:
    return None
