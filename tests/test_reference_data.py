"""The bundled marker panels: they load, list the right loci, and reject bad alleles."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel, load_panel
from reference_data import list_panels, panel_path

ELEPHANT_LOCI = (
    "FH67", "FH71", "FH19", "FH129", "FH60", "FH127", "FH126", "FH153",
    "FH94", "FH48", "FH40", "FH39", "FH103", "FH102", "S03", "S04",
)

# Allele size ranges observed in South African savanna elephants (de Flamingh, Sole & van Aarde,
# supplementary table 1, loci of Comstock et al. 2000); the panel windows must contain them.
PUBLISHED_ELEPHANT_RANGES = {"FH19": (173, 197), "FH39": (232, 252), "FH102": (169, 187)}


def test_both_panels_are_bundled():
    assert {"elephant_16str", "rhino_str"} <= set(list_panels())


def test_elephant_panel_has_the_16_ivory_loci():
    panel = load_panel("elephant_16str")
    assert panel.name == "elephant_16str"
    assert panel.marker_type == "STR"
    assert panel.locus_names == ELEPHANT_LOCI
    assert "Loxodonta africana" in panel.species and "cyclotis" in panel.species
    assert all(locus.repeat_unit == 2 for locus in panel.loci)


@pytest.mark.parametrize("locus_name", sorted(PUBLISHED_ELEPHANT_RANGES))
def test_elephant_windows_contain_the_published_ranges(locus_name):
    locus = load_panel("elephant_16str").locus(locus_name)
    low, high = PUBLISHED_ELEPHANT_RANGES[locus_name]
    assert locus.min_size < low and high < locus.max_size


def test_rhino_panel_lists_rhino_loci():
    panel = load_panel("rhino_str")
    assert panel.marker_type == "STR"
    assert len(panel.loci) == 20
    assert {"DB1", "DB44", "BR6", "SW35"} <= set(panel.locus_names)
    assert "Ceratotherium simum" in panel.species and "Diceros bicornis" in panel.species


@pytest.mark.parametrize("name", ["elephant_16str", "rhino_str"])
def test_panels_say_their_ranges_are_approximate(name):
    panel = load_panel(name)
    text = f"{panel.description} {panel.source}".lower()
    assert "placeholder" in text
    assert "validated" in text


@pytest.mark.parametrize("name", ["elephant_16str", "rhino_str"])
def test_panel_file_round_trips_through_the_dataclass(name):
    data = json.loads(panel_path(name).read_text())
    assert data["name"] == name
    assert Panel.from_dict(data).to_dict() == data


@pytest.mark.parametrize(
    ("panel_name", "locus_name"), [("elephant_16str", "FH67"), ("rhino_str", "DB49")]
)
def test_allele_problem_accepts_inside_and_rejects_outside(panel_name, locus_name):
    panel = load_panel(panel_name)
    locus = panel.locus(locus_name)
    for inside in (locus.min_size, (locus.min_size + locus.max_size) // 2, locus.max_size):
        assert panel.allele_problem(locus_name, inside) is None
    for outside in (locus.min_size - 1, locus.max_size + 1, 999):
        problem = panel.allele_problem(locus_name, outside)
        assert problem is not None
        assert f"allele {outside} outside" in problem
        assert locus_name in problem and panel_name in problem


def test_allele_problem_names_an_unknown_locus():
    problem = load_panel("elephant_16str").allele_problem("DB1", 150)
    assert problem == "unknown locus 'DB1' (not in panel 'elephant_16str')"


def test_validate_rejects_a_table_with_one_bad_allele():
    panel = load_panel("elephant_16str")
    good = [[locus.min_size, locus.max_size] for locus in panel.loci]
    bad = [list(genotype) for genotype in good]
    bad[2][1] = 420
    table = GenotypeTable([good, bad], ["tusk-1", "tusk-2"], ELEPHANT_LOCI)
    with pytest.raises(ValueError, match=r"profile 'tusk-2': allele 420 outside .* of FH19"):
        panel.validate(table)
    panel.validate(table.take([0]))


def test_unknown_panel_name_lists_the_bundled_ones():
    with pytest.raises(ValueError, match="no bundled panel 'tiger_str'.*elephant_16str"):
        load_panel("tiger_str")


def test_loading_bundled_data_does_not_import_msprime():
    # msprime is a development extra used only by the generator script.
    code = (
        "import sys\n"
        "from dnatrack.panels import load_panel\n"
        "from dnatrack.reference import load_reference_set\n"
        "from reference_data import list_reference_sets\n"
        "load_panel('rhino_str')\n"
        "[load_reference_set(name) for name in list_reference_sets()]\n"
        "assert 'msprime' not in sys.modules, 'msprime was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
