"""Errors that name where bad input came from."""

from __future__ import annotations

import os


class GenotypeFormatError(ValueError):
    """A genotype file could not be read: says which file, line and field.

    Parameters
    ----------
    message
        What is wrong, e.g. ``"non-numeric allele 'x9'"``.
    path
        The file being read (``None`` for in-memory input).
    line
        1-based line number in that file, if known.
    field
        Column or locus name, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.field = field
        where = []
        if self.path is not None:
            where.append(os.path.basename(self.path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class UnwritableValueError(ValueError):
    """A value of a genotype table that a file format cannot hold (a space in a STRUCTURE
    field, a comma in a GENEPOP name, an allele too wide for GENEPOP's digits).

    Parameters
    ----------
    message
        What is wrong, naming the value.
    format
        The format being written, e.g. ``"structure"``.
    field
        Which part of the table: ``"profile id"``, ``"population"``, ``"locus"``, ``"allele"``.
    value
        The value that does not fit.
    profile_id
        The first profile carrying it, when it belongs to profiles (``None`` for a locus).
    """

    def __init__(
        self,
        message: str,
        *,
        format: str,
        field: str,
        value: str,
        profile_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.format = format
        self.field = field
        self.value = value
        self.profile_id = profile_id
