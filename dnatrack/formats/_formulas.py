"""Spreadsheet formula injection: text cells a spreadsheet would run as a formula.

A CSV, TSV, GENEPOP or STRUCTURE file opened in a spreadsheet turns a cell starting with
``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) into a formula, which
may run commands (``=cmd|' /C calc'!A0``). The OWASP rule for files that may be opened so is
to prefix such a cell with a single quote, which makes it text. Only the text fields of a
table (ids, populations, reporting units, groups) are touched: alleles and coordinates are
numbers, and a negative longitude must stay a number.
"""

from __future__ import annotations

from dnatrack.genotypes import GenotypeTable

#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")

_TEXT_FIELDS = ("profile_ids", "population", "repunit", "group")


def neutralise_formula(text: str) -> str:
    """``text`` with a leading single quote when a spreadsheet would read it as a formula.

    Examples
    --------
    >>> neutralise_formula("=SUM(A1:A2)"), neutralise_formula("KE-001")
    ("'=SUM(A1:A2)", 'KE-001')
    """
    return f"'{text}" if text.startswith(FORMULA_LEADS) else text


def formula_safe(table: GenotypeTable) -> GenotypeTable:
    """A copy of ``table`` whose text fields are neutralised (:func:`neutralise_formula`)."""
    changes = {
        name: [neutralise_formula(str(value)) for value in getattr(table, name)]
        for name in _TEXT_FIELDS
        if getattr(table, name) is not None
    }
    return table.replace(**changes)
