"""Spreadsheet-safe writing: formula cells neutralised on request, plain round trips kept."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dnatrack.formats import UnwritableValueError, read_genotypes, write_genotypes
from dnatrack.genotypes import GenotypeTable


def _table() -> GenotypeTable:
    return GenotypeTable(
        [[[148, 152]], [[150, 150]]],
        ["=1+1", "KE-1"],
        ["FH67"],
        population=["@pop", "Tsavo"],
        group=["-SZ", "SZ"],
        lat=[-2.5, 1.0],
        lon=[-38.25, 2.0],
    )


def test_spreadsheet_safe_quotes_text_cells_only(tmp_path):
    path = tmp_path / "out.csv"
    write_genotypes(_table(), path, format="wide", spreadsheet_safe=True)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["indiv"], r["collection"], r["group"]) for r in rows] == [
        ("'=1+1", "'@pop", "'-SZ"),
        ("KE-1", "Tsavo", "SZ"),
    ]
    assert (rows[0]["lat"], rows[0]["lon"], rows[0]["FH67"]) == ("-2.5", "-38.25", "148")


@pytest.mark.parametrize(("file_format", "suffix"), [("wide", ".csv"), ("genepop", ".gen")])
def test_plain_writing_reads_back_unchanged(tmp_path, file_format, suffix):
    path = tmp_path / f"out{suffix}"
    write_genotypes(_table(), path, format=file_format)
    table = read_genotypes(path, format=file_format)
    assert table.profile_ids.tolist() == ["=1+1", "KE-1"]
    np.testing.assert_array_equal(table.alleles, _table().alleles)


def test_an_unwritable_id_is_reported_as_the_caller_knows_it(tmp_path):
    table = _table().replace(profile_ids=["=a b", "KE-1"])
    with pytest.raises(UnwritableValueError, match="STRUCTURE fields") as caught:
        write_genotypes(table, tmp_path / "out.str", format="structure", spreadsheet_safe=True)
    assert (caught.value.field, caught.value.profile_id) == ("profile id", "=a b")
