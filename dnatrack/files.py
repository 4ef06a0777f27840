"""Writing files so that a failure never leaves a half-written one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replace_atomically(path: str | os.PathLike, *, newline: str | None = None) -> Iterator:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` only when the
    block finishes without an exception, so a failed write never leaves a partial file."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(
        "w",
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        delete=False,
        newline=newline,
        encoding="utf-8",
    )
    try:
        with handle:
            yield handle
        # NamedTemporaryFile is private (0600); give the result the permissions a plain
        # open() would (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise
