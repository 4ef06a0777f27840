"""``dnatrack species``: tables, CSV, reference options, errors."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from dnatrack.cli import main
from matching.species import RESULT_COLUMNS, default_barcode_set, load_barcode_set
from tests._species_helpers import mutated_fragment, reverse_complement, write_abif

SAVANNA = "Loxodonta_africana_NC_000934_cytb"


@pytest.fixture(scope="module")
def barcodes():
    return default_barcode_set()


@pytest.fixture
def reads(tmp_path, barcodes):
    """Three reads: a savanna elephant tusk, a cattle horn (reverse strand) and random DNA."""
    rng = np.random.default_rng(3)
    tusk, _ = mutated_fragment(barcodes.reference(SAVANNA).sequence, 200, 400, 0.01, rng)
    horn, _ = mutated_fragment(barcodes.reference("Bos_taurus_GU947021_cytb").sequence, 500,
                               300, 0.02, rng)
    junk = "".join(rng.choice(list("ACGT"), size=300))
    path = tmp_path / "reads.fasta"
    path.write_text(f">tusk-1 seizure 12\n{tusk}\n>horn-2\n{reverse_complement(horn)}\n"
                    f">junk-3\n{junk}\n")
    return path


def read_csv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_prints_a_table(reads, barcodes, capsys):
    assert main(["species", str(reads)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"reference set dnatrack-barcodes v1 (cytb), sha256 "
                        f"{barcodes.content_hash}")
    assert lines[1].split() == ["query", "verdict", "call", "identity", "%", "cover", "%",
                                "aligned", "strand", "runner-up", "margin"]
    assert lines[2].startswith("tusk-1") and "identified  Loxodonta africana" in lines[2]
    assert lines[2].split()[5] == "100.0"  # the whole read aligned
    assert lines[3].startswith("horn-2") and "identified  cattle" in lines[3]
    assert lines[4].startswith("junk-3") and "no match" in lines[4]
    assert len(lines) == 5


def test_writes_csv_with_the_set_hash_and_parameters(reads, barcodes, tmp_path, capsys):
    out = tmp_path / "species.csv"
    assert main(["species", str(reads), "--out", str(out), "--min-margin", "2"]) == 0
    assert capsys.readouterr().err.strip() == (
        f"3 reads: 2 identified, 0 ambiguous, 1 no match; written to {out}")
    columns, rows = read_csv(out)
    assert columns == RESULT_COLUMNS
    tusk, horn, junk = rows
    assert (tusk["verdict"], tusk["call"], tusk["call_level"]) == (
        "identified", "Loxodonta africana", "species")
    assert (tusk["strand"], tusk["reference"], tusk["runner_up"]) == (
        "+", SAVANNA, "Mammuthus primigenius")
    assert float(tusk["identity"]) >= 98.5
    assert (tusk["query_coverage"], tusk["span_neighbour"]) == ("100.0", "Mammuthus primigenius")
    assert float(tusk["sister_probability"]) <= 0.02
    assert (horn["call"], horn["call_level"], horn["strand"]) == ("cattle", "group", "-")
    assert horn["species"] in ("Bos taurus", "Bos indicus")
    assert junk["verdict"] == "no match" and junk["call"] == ""
    for row in rows:
        assert row["reference_set_hash"] == barcodes.content_hash
        assert (row["marker"], row["min_margin"], row["min_identity"]) == ("cytb", "2.0", "97.0")
        assert (row["min_query_coverage"], row["sister_divergence"],
                row["max_sister_probability"]) == ("80.0", "5.0", "0.02")
        assert row["source"] == str(reads)


def test_thresholds_change_the_verdict(reads, tmp_path):
    out = tmp_path / "strict.csv"
    assert main(["species", str(reads), "--out", str(out), "--min-identity", "99.9"]) == 0
    _, rows = read_csv(out)
    assert [r["verdict"] for r in rows] == ["no match"] * 3
    # The tusk read differs at 4 of 400 columns; assuming relatives only 1% apart over cytb,
    # or asking for a one-in-a-million chance, leaves its span too conserved to call.
    for option, value in (("--sister-divergence", "1"), ("--max-sister-probability", "1e-6")):
        assert main(["species", str(reads), "--out", str(out), option, value]) == 0
        _, rows = read_csv(out)
        assert [r["verdict"] for r in rows[:1]] == ["ambiguous"], option
        assert "too conserved a span" in rows[0]["reason"]


def test_coverage_of_a_partial_reference(tmp_path, barcodes, capsys):
    savanna = barcodes.reference(SAVANNA).sequence
    references = tmp_path / "partial.fasta"
    references.write_text(f">S1 Loxodonta africana | marker=cytb\n{savanna[:720]}\n"
                          f">M1 Mammuthus primigenius | marker=cytb\n"
                          f"{barcodes.reference('Mammuthus_primigenius_NC_007596_cytb').sequence}\n")
    query = tmp_path / "q.fa"
    query.write_text(f">tusk\n{savanna[400:800]}\n")
    out = tmp_path / "out.csv"
    assert main(["species", str(query), "--references", str(references), "--out",
                 str(out)]) == 0
    _, (row,) = read_csv(out)
    assert (row["verdict"], row["call"], row["query_coverage"]) == (
        "identified", "Loxodonta africana", "80.0")
    assert main(["species", str(query), "--references", str(references), "--out", str(out),
                 "--min-coverage", "90"]) == 0
    _, (row,) = read_csv(out)
    assert (row["verdict"], row["species"], row["query_coverage"]) == (
        "no match", "Mammuthus primigenius", "100.0")


def test_references_replace_the_bundled_set(tmp_path, capsys):
    rng = np.random.default_rng(8)
    first = "".join(rng.choice(list("ACGT"), size=800))
    second = "".join(rng.choice(list("ACGT"), size=800))
    references = tmp_path / "lab_12s.fasta"
    references.write_text(f">L1 Panthera leo (lion)\n{first}\n>T1 Panthera tigris\n{second}\n")
    query = tmp_path / "q.fa"
    query.write_text(f">claw\n{second[100:400]}\n")
    out = tmp_path / "out.csv"
    assert main(["species", str(query), "--references", str(references), "--marker", "12S",
                 "--out", str(out)]) == 0
    _, (row,) = read_csv(out)
    assert (row["verdict"], row["call"], row["marker"]) == ("identified", "Panthera tigris", "12S")
    expected = load_barcode_set(references, marker="12S")
    assert (row["reference_set"], row["reference_set_hash"]) == ("lab_12s", expected.content_hash)
    assert main(["species", "--references", str(references), "--marker", "12S",
                 "--list-species"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "12S\tPanthera leo\t1 reference(s)", "12S\tPanthera tigris\t1 reference(s)"]


def test_added_references_and_groups(tmp_path, barcodes, capsys):
    rng = np.random.default_rng(9)
    forest = "".join(rng.choice(list("ACGT"), size=1140))
    lab = tmp_path / "forest.fasta"
    lab.write_text(f">LAB7 Loxodonta cyclotis | marker=cytb\n{forest}\n")
    query = tmp_path / "q.fa"
    savanna = barcodes.reference(SAVANNA).sequence
    query.write_text(f">forest-tusk\n{forest[500:900]}\n>savanna-tusk\n{savanna[500:900]}\n")
    groups = tmp_path / "groups.tsv"
    groups.write_text("species\tgroup\nLoxodonta africana\tAfrican elephant\n"
                      "Loxodonta cyclotis\tAfrican elephant\n")
    assert main(["species", str(query), "--add-references", str(lab)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "identified  Loxodonta cyclotis" in rows[2]
    assert "identified  Loxodonta africana" in rows[3]
    assert main(["species", str(query), "--add-references", str(lab), "--groups",
                 str(groups)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "dnatrack-barcodes+forest" in rows[0]
    assert "identified  African elephant" in rows[2] and "identified  African elephant" in rows[3]


def test_other_marker_and_listing(tmp_path, barcodes, capsys):
    coi = barcodes.reference("Bubalus_bubalis_NC_006295_COI").sequence
    query = tmp_path / "q.fa"
    query.write_text(f">buffalo-horn\n{coi[600:1000]}\n")
    assert main(["species", str(query), "--marker", "COI"]) == 0
    assert "identified  Bubalus bubalis" in capsys.readouterr().out
    assert main(["species", "--list-species"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert "cytb\tBos taurus [cattle]\t3 reference(s)" in listing
    assert "cytb\tMammuthus primigenius\t1 reference(s)" in listing
    assert "COI\tHippopotamus amphibius\t1 reference(s)" in listing
    assert len(listing) == 14


def test_abi_trace_on_the_command_line(tmp_path, barcodes, capsys):
    rhino = barcodes.reference("Rhinoceros_unicornis_NC_001779_cytb").sequence[300:700]
    bases = "ACGTTGCA" + rhino + "TTGACAGT"
    trace = write_abif(tmp_path / "horn.ab1", bases, [4] * 8 + [45] * 400 + [3] * 8, "horn-9")
    out = tmp_path / "out.csv"
    assert main(["species", str(trace), "--out", str(out)]) == 0
    _, (row,) = read_csv(out)
    assert (row["query"], row["call"], row["identity"]) == ("horn-9", "Rhinoceros unicornis",
                                                           "100.0")
    assert (row["trim_start"], row["query_length"], row["read_length"]) == ("8", "400", "416")


@pytest.mark.parametrize("arguments, message", [
    (["species"], "give at least one QUERY file"),
    (["species", "{missing}"], "missing.fasta: cannot read"),
    (["species", "{bad}"], r"bad\.fasta, record 'p': 'E' at position 1 is not a DNA base"),
    (["species", "{reads}", "--marker", "16S"], "no '16S' references; markers: COI, cytb"),
    (["species", "{reads}", "--min-identity", "0"], "min_identity"),
    (["species", "{reads}", "--min-coverage", "0"], "min_query_coverage"),
    (["species", "{reads}", "--max-sister-probability", "1"], "max_sister_probability"),
    (["species", "{reads}", "--references", "{bad}"], r"bad\.fasta"),
])
def test_errors_are_one_line(tmp_path, reads, capsys, arguments, message):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">p Bos taurus\nEVLKQ\n")
    paths = {"missing": tmp_path / "missing.fasta", "bad": bad, "reads": reads}
    argv = [a.format(**paths) for a in arguments]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("dnatrack species: error: ")
    assert len(error.splitlines()) == 1
    assert re.search(message, error), error
