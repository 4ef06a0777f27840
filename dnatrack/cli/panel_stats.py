"""`dnatrack panel-stats` (placeholder until its issue step lands)."""


def register(subparsers) -> None:
    return None
