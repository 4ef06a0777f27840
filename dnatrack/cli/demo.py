"""`dnatrack demo` (placeholder until issue 6 lands)."""


def register(subparsers) -> None:
    return None
