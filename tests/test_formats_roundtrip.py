"""Every writer, read back: the same ids, loci, alleles and the metadata the format carries."""

import numpy as np
import pytest

from dnatrack.formats import read_genotypes, writable_formats, write_genotypes
from dnatrack.genotypes import GenotypeTable
from tests._formats_helpers import random_table

# (file name, format, write options, read options, metadata fields the format carries)
CASES = [
    ("t.gen", "genepop", {}, {}, ("population",)),
    ("t.str", "structure", {}, {}, ("population",)),
    ("t.str", "structure", {"two_row": False}, {}, ("population",)),
    ("t.csv", "long", {}, {}, ("population", "repunit", "group")),
    ("t.tsv", "long", {}, {}, ("population", "repunit", "group")),
    ("t.csv", "wide", {}, {}, ("population", "repunit", "group")),
    ("t.csv", "wasser", {}, {}, ("population", "repunit", "group")),
]


def test_every_writable_format_has_a_round_trip_case():
    assert {case[1] for case in CASES} == set(writable_formats())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("name", "format", "write_options", "read_options", "fields"), CASES)
def test_round_trip(tmp_path, seed, name, format, write_options, read_options, fields):
    table = random_table(seed, max_allele=999 if format == "genepop" else 32767)
    path = tmp_path / name
    write_genotypes(table, path, format, **write_options)
    back = read_genotypes(path, format, **read_options)
    assert back.profile_ids.tolist() == table.profile_ids.tolist()
    assert back.loci == table.loci
    assert np.array_equal(back.alleles, table.alleles)
    for field in fields:
        assert getattr(back, field).tolist() == getattr(table, field).tolist()


@pytest.mark.parametrize(("name", "format"), [("t.str", "structure"), ("t.csv", "long"),
                                              ("t.csv", "wasser"), ("t.csv", "wide")])
def test_round_trip_without_populations(tmp_path, name, format):
    table = random_table(7, metadata=False)
    path = tmp_path / name
    write_genotypes(table, path, format)
    back = read_genotypes(path, format)
    assert back.same_genotypes(table)
    if format != "wide":  # wide always writes a collection column
        assert back.population is None


def test_genepop_round_trip_of_small_codes_uses_two_digits(tmp_path):
    table = random_table(3, max_allele=99)
    path = tmp_path / "small.gen"
    write_genotypes(table, path)
    individuals = [line for line in path.read_text().splitlines() if " , " in line]
    assert {len(code) for line in individuals for code in line.split(" , ")[1].split()} == {4}
    assert read_genotypes(path).same_genotypes(table)


def test_structure_without_marker_names_round_trips_when_the_first_locus_varies(tmp_path):
    table = GenotypeTable(
        [[[150, 154], [200, 200]], [[150, 150], [-1, -1]]], ["a", "b"], ["locus1", "locus2"],
        population=["P", "Q"],
    )
    path = tmp_path / "bare.str"
    write_genotypes(table, path, marker_names=False)
    back = read_genotypes(path)
    assert back.same_genotypes(table)
    assert back.population.tolist() == ["P", "Q"]


def test_written_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from dnatrack.formats import write_genotypes
    from dnatrack.genotypes import GenotypeTable

    table = GenotypeTable([[[100, 102]]], ["x"], ["L"])
    path = tmp_path / "out.csv"
    write_genotypes(table, path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
