"""Every reader on a fixture holding the same four tusks (tests/data/formats/example*).

The fixtures spell the same genotypes in each format's own way (missing codes, layouts,
homozygotes as one GeneMapper call, loci split over lines in GENEPOP), so each reader is
checked against one table written out by hand here.
"""

from pathlib import Path

import numpy as np
import pytest

from dnatrack.formats import detect_format, read_genotypes

DATA = Path(__file__).parent / "data" / "formats"

IDS = ["tusk-1", "tusk-2", "tusk-3", "tusk-4"]
LOCI = ("FH67", "FH71", "FH19")
M = -1
# tusk-2 lacks FH19; tusk-3 lacks FH67; tusk-4 has only one allele at FH71 (so it is untyped).
ALLELES = [
    [[152, 156], [200, 204], [110, 114]],
    [[148, 148], [196, 204], [M, M]],
    [[M, M], [200, 200], [106, 118]],
    [[152, 160], [M, M], [110, 110]],
]
POPULATIONS = ["Kenya", "Kenya", "pop2", "pop2"]
SEIZURES = ["HK-2013", "HK-2013", "SG-2014", "SG-2014"]


@pytest.mark.parametrize(
    ("name", "format", "population", "group"),
    [
        ("example.gen", "genepop", POPULATIONS, None),
        ("example.str", "structure", POPULATIONS, None),
        ("example_onerow.str", "structure", POPULATIONS, None),
        ("example_long.csv", "long", POPULATIONS, None),
        ("example_genemapper.txt", "genemapper", None, None),
        ("example_wasser.csv", "wasser", None, SEIZURES),
    ],
)
def test_each_reader_gives_the_same_tusks(name, format, population, group):
    path = DATA / name
    assert detect_format(path) == format
    table = read_genotypes(path)
    assert table.profile_ids.tolist() == IDS
    assert table.loci == LOCI
    assert table.alleles.tolist() == ALLELES
    assert (None if table.population is None else table.population.tolist()) == population
    assert (None if table.group is None else table.group.tolist()) == group


def test_vcf_codes_are_gt_index_plus_one():
    table = read_genotypes(DATA / "example.vcf")
    assert table.profile_ids.tolist() == ["horn-1", "horn-2", "horn-3"]
    # The second variant has no ID, so it is named CHROM:POS.
    assert table.loci == ("rs101", "1:2210", "snp3")
    # 0/1 -> (1, 2); 0|2 -> (1, 3); ./. and 1/. -> untyped.
    expected = np.array(
        [
            [[1, 2], [1, 3], [1, 2]],
            [[2, 2], [1, 1], [1, 1]],
            [[M, M], [M, M], [2, 2]],
        ]
    )
    assert np.array_equal(table.alleles, expected)
    assert table.population is None
