"""Species identification from mitochondrial barcodes (DESIGN 5.6, issue 7)."""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from Bio import SeqIO
from Bio.Align import PairwiseAligner
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from matching import _species_kernels as kernels
from matching.species import (
    RESULT_COLUMNS,
    BarcodeFormatError,
    BarcodeQuery,
    BarcodeReference,
    BarcodeSet,
    IdentificationParameters,
    SpanDivergence,
    SpeciesHit,
    SpeciesIdentifier,
    default_barcode_set,
    identify_species,
    judge,
    load_barcode_set,
    make_query,
    poisson_cdf,
    quality_trim_span,
    read_barcode_fasta,
    read_queries,
)
from reference_data import data_path
from tests._species_helpers import (
    mutated_fragment,
    reverse_complement,
    substitute,
    write_abif,
)

# The species the shared barcode README lists as covered (cytb, and COI).
CYTB_SPECIES = [
    "Bos indicus", "Bos taurus", "Bubalus bubalis", "Ceratotherium simum",
    "Dicerorhinus sumatrensis", "Elephas maximus", "Hippopotamus amphibius",
    "Loxodonta africana", "Mammuthus primigenius", "Rhinoceros unicornis",
]
COI_SPECIES = ["Bos indicus", "Bos taurus", "Bubalus bubalis", "Hippopotamus amphibius"]
SAVANNA = "Loxodonta_africana_NC_000934_cytb"
MAMMOTH = "Mammuthus_primigenius_NC_007596_cytb"


@pytest.fixture(scope="module")
def barcodes() -> BarcodeSet:
    return default_barcode_set()


@pytest.fixture(scope="module")
def identifier(barcodes) -> SpeciesIdentifier:
    return SpeciesIdentifier(barcodes)


def write_fasta(path, records: list[tuple[str, str]], width: int = 60):
    lines = []
    for header, sequence in records:
        lines.append(f">{header}")
        lines.extend(sequence[i : i + width] for i in range(0, len(sequence), width))
    path.write_text("\n".join(lines) + "\n")
    return path


def random_dna(length: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


# ------------------------------------------------------------------------------ reference sets
def test_bundled_set_is_the_shared_barcodes(barcodes, shared_datasets):
    folder = shared_datasets / "barcodes"
    with open(folder / "manifest.tsv", newline="") as handle:
        manifest = {row["record"]: row for row in csv.DictReader(handle, delimiter="\t")}
    shared = {}
    for name in ("all_cytb.fasta", "all_coi.fasta"):
        with open(folder / name) as handle:
            shared.update({r.id: str(r.seq) for r in SeqIO.parse(handle, "fasta")})
    assert {r.record_id for r in barcodes.references} == set(shared)
    for reference in barcodes.references:
        # One COI record holds an R (A or G); ambiguity codes are kept as N.
        expected = "".join(b if b in "ACGT" else "N" for b in shared[reference.record_id])
        assert reference.sequence == expected
        assert reference.species == manifest[reference.record_id]["species"]
        assert reference.marker == manifest[reference.record_id]["marker"]
        assert reference.licence == manifest[reference.record_id]["license"]
    for name in ("all_cytb.fasta", "all_coi.fasta", "manifest.tsv"):
        assert data_path("barcodes", name).read_bytes() == (folder / name).read_bytes()


def test_bundled_set_covers_the_documented_species(barcodes):
    assert barcodes.covered_species("cytb") == CYTB_SPECIES
    assert barcodes.covered_species("COI") == COI_SPECIES
    assert barcodes.covered_species("coi") == COI_SPECIES  # marker names ignore case
    assert sorted(barcodes.markers) == ["COI", "cytb"]
    assert len(barcodes.references_for("cytb")) == 12
    assert len(barcodes.references_for("COI")) == 6
    assert barcodes.label("Bos indicus") == barcodes.label("Bos taurus") == "cattle"
    assert barcodes.label("Bubalus bubalis") == "Bubalus bubalis"
    assert barcodes.group_of("Elephas maximus") is None


def test_header_labels_agree_with_the_manifest(barcodes):
    for name in ("all_cytb.fasta", "all_coi.fasta"):
        from_headers = read_barcode_fasta(data_path("barcodes", name))
        for reference in from_headers:
            listed = barcodes.reference(reference.record_id)
            assert (reference.species, reference.marker) == (listed.species, listed.marker)
    hippo = barcodes.reference("Hippopotamus_amphibius_NC_000889_cytb")
    assert hippo.common_name == "hippopotamus"
    assert barcodes.reference("Bos_taurus_LC537308_cytb").common_name == (
        "cattle (haplogroup P1a)")


def test_unknown_marker_lists_the_markers(barcodes):
    with pytest.raises(ValueError, match="no '12S' references; markers: COI, cytb"):
        barcodes.references_for("12S")
    with pytest.raises(ValueError, match="no '12S' references"):
        SpeciesIdentifier(barcodes, IdentificationParameters(marker="12S"))


def test_content_hash_follows_content_not_layout(tmp_path, barcodes):
    references = barcodes.references_for("cytb")
    records = [(f"{r.record_id} species={r.species} | marker={r.marker}", r.sequence)
               for r in references]
    wide = write_fasta(tmp_path / "wide.fasta", records, width=200)
    narrow = write_fasta(tmp_path / "narrow.fasta", records[::-1], width=50)
    groups = {"Bos taurus": "cattle", "Bos indicus": "cattle"}
    a = load_barcode_set(wide, groups=groups)
    b = load_barcode_set(narrow, groups=groups, name="renamed")
    assert a.content_hash == b.content_hash
    assert a.content_hash == BarcodeSet("x", tuple(references), groups).content_hash
    changed = records.copy()
    first = changed[0][1]
    changed[0] = (changed[0][0], ("A" if first[0] != "A" else "C") + first[1:])
    c = load_barcode_set(write_fasta(tmp_path / "changed.fasta", changed), groups=groups)
    assert c.content_hash != a.content_hash
    assert a.with_groups({"Bubalus bubalis": "buffalo"}).content_hash != a.content_hash
    assert len(a.content_hash) == 64


def test_a_lab_adds_and_replaces_references(tmp_path, barcodes):
    rng = np.random.default_rng(11)
    forest = random_dna(1140, rng)
    lab = write_fasta(tmp_path / "lab.fasta", [("LAB001 Loxodonta cyclotis (forest elephant)",
                                                forest)])
    added = load_barcode_set(lab, marker="cytb")
    assert added.references[0].common_name == "forest elephant"
    extended = barcodes.with_references(added)
    assert "Loxodonta cyclotis" in extended.covered_species("cytb")
    assert extended.covered_species("COI") == COI_SPECIES
    assert extended.content_hash != barcodes.content_hash
    assert extended.name == "dnatrack-barcodes+lab"
    result = SpeciesIdentifier(extended).identify(make_query("q", forest[300:700]))
    assert (result.verdict, result.call) == ("identified", "Loxodonta cyclotis")
    assert result.reference_set_hash == extended.content_hash

    with pytest.raises(ValueError, match="already in barcode set .*LAB001"):
        extended.with_references(added)
    corrected = BarcodeReference("LAB001", "Loxodonta cyclotis", "cytb", forest[:-3] + "AAA")
    replaced = extended.with_references([corrected], replace_existing=True)
    assert replaced.reference("LAB001").sequence.endswith("AAA")
    assert len(replaced.references) == len(extended.references)


# ------------------------------------------------------------------------------ bad input
BAD_FASTA = {
    "text before the first header": ("hello\n>a Bos taurus\nACGT\n", r"bad\.fasta, line 1: "
                                     r"not FASTA: expected a '>' header line"),
    "no header at all": ("ACGTACGT\nACGT\n", r"bad\.fasta, line 1: not FASTA"),
    "blank lines only": ("\n\n", r"bad\.fasta: empty file"),
    "empty sequence": (">a Bos taurus\n>b Bos taurus\nACGT\n",
                       r"bad\.fasta, record 'a': empty sequence"),
    "protein letters": (">b Bos taurus\nACGT\n>p Bos taurus\nMTHIRKSHPLLK\n",
                        r"bad\.fasta, record 'p': 'I' at position 4 is not a DNA base"),
    "RNA": (">r Bos taurus\nACGUAC\n", r"record 'r': 'U' at position 4 is not a DNA base"),
    "digits": (">d Bos taurus\nACG1AC\n", r"record 'd': '1' at position 4"),
    "duplicate record": (">a Bos taurus\nACGT\n>a Bos taurus\nACGT\n",
                         r"bad\.fasta, record 'a': record id used twice"),
    "no species": (">a\nACGT\n", r"record 'a': no species label"),
}


@pytest.mark.parametrize("case", list(BAD_FASTA))
def test_bad_reference_fasta_is_named(tmp_path, case):
    text, message = BAD_FASTA[case]
    path = tmp_path / "bad.fasta"
    path.write_text(text)
    with pytest.raises(BarcodeFormatError, match=message):
        load_barcode_set(path, marker="cytb")


@pytest.mark.parametrize("case", ["empty sequence", "protein letters", "no header at all"])
def test_bad_query_fasta_is_named(tmp_path, case):
    text, message = BAD_FASTA[case]
    path = tmp_path / "bad.fasta"
    path.write_text(text)
    with pytest.raises(BarcodeFormatError, match=message):
        read_queries(path)


def test_reference_labels_and_manifest_errors(tmp_path):
    fasta = write_fasta(tmp_path / "refs.fasta", [("r1 Bos taurus", "ACGTACGTAC"),
                                                  ("r2 Bos indicus", "ACGTACGTAA")])
    with pytest.raises(BarcodeFormatError, match=r"record 'r1': no marker"):
        load_barcode_set(fasta)
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("record\tspecies\tmarker\nr1\tBos taurus\tcytb\n")
    with pytest.raises(BarcodeFormatError, match=r"refs\.fasta, record 'r2': not in the manifest"):
        load_barcode_set(fasta, manifest=manifest)
    manifest.write_text("record\tspecies\nr1\tBos taurus\n")
    with pytest.raises(BarcodeFormatError, match=r"manifest\.tsv, line 1: missing column\(s\) "
                                                 "marker"):
        load_barcode_set(fasta, manifest=manifest)
    manifest.write_text("record\tspecies\tmarker\nr1\t\tcytb\n")
    with pytest.raises(BarcodeFormatError, match=r"manifest\.tsv, line 2: empty species"):
        load_barcode_set(fasta, manifest=manifest)
    manifest.write_text("record\tspecies\tmarker\nr1\tA b\tcytb\nr2\tB c\tCOI\nr1\tA b\tcytb\n")
    with pytest.raises(BarcodeFormatError, match=r"line 4: record 'r1' listed twice"):
        load_barcode_set(fasta, manifest=manifest)
    manifest.write_text("record\tspecies\tmarker\nr1\tBos taurus\tcytb\nr2\tBos indicus\tCOI\n"
                        "r3\tBos indicus\tmitogenome\n")
    both = load_barcode_set(fasta, manifest=manifest)
    assert [(r.species, r.marker) for r in both.references] == [("Bos taurus", "cytb"),
                                                                ("Bos indicus", "COI")]
    binary = tmp_path / "binary.fasta"
    binary.write_bytes(b">a Bos taurus\n\xff\xfe\x00ACGT\n")
    with pytest.raises(BarcodeFormatError, match=r"binary\.fasta: not UTF-8 text"):
        load_barcode_set(binary, marker="cytb")
    with pytest.raises(BarcodeFormatError, match=r"missing\.fasta: cannot read"):
        load_barcode_set(tmp_path / "missing.fasta", marker="cytb")
    groups = tmp_path / "groups.tsv"
    groups.write_text("species\tgroup\nBos taurus\tcattle\nBos taurus\tox\n")
    with pytest.raises(BarcodeFormatError, match=r"groups\.tsv, line 3: species 'Bos taurus' "
                                                 "listed twice"):
        load_barcode_set(fasta, marker="cytb", groups=groups)


def test_sequences_are_cleaned(tmp_path):
    fasta = write_fasta(tmp_path / "refs.fasta",
                        [("r1 Bos taurus | marker=cytb", "acgt-ryAC--GTn")])
    (reference,) = load_barcode_set(fasta).references
    assert reference.sequence == "ACGTNNACGTN"
    query = make_query("q", "acg tkm\n")
    assert query.sequence == "ACGTNN"
    with pytest.raises(BarcodeFormatError, match="record 'q': empty sequence"):
        make_query("q", " - ")


def test_bad_fastq_and_abi_are_named(tmp_path):
    fastq = tmp_path / "reads.fastq"
    fastq.write_text("@r1\nACGT\n+\nII\n")
    with pytest.raises(BarcodeFormatError, match=r"reads\.fastq: not a valid FASTQ file: "
                                                 "Lengths of sequence and quality"):
        read_queries(fastq)
    fastq.write_text("@r1\nACGTXX\n+\nIIIIII\n")
    with pytest.raises(BarcodeFormatError, match=r"reads\.fastq, record 'r1': 'X' at "
                                                 "position 5"):
        read_queries(fastq)
    not_abi = tmp_path / "trace.ab1"
    not_abi.write_bytes(b"GIF89a....")
    with pytest.raises(BarcodeFormatError, match=r"trace\.ab1: not a valid ABI file: File "
                                                 "should start with ABIF"):
        read_queries(not_abi)
    truncated = write_abif(tmp_path / "cut.ab1", "ACGT" * 30, [40] * 120, "cut")
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.raises(BarcodeFormatError, match=r"cut\.ab1: not a valid ABI file"):
        read_queries(truncated)
    unknown = tmp_path / "reads.txt"
    unknown.write_text("hello\n")
    with pytest.raises(BarcodeFormatError, match=r"reads\.txt: cannot tell the format"):
        read_queries(unknown)


# ------------------------------------------------------------------------------ array helpers
def brute_best_segment(scores) -> tuple[float, int, int]:
    """Largest-sum run by trying every run: earliest end first, then the shortest."""
    best = (0.0, 0, 0)
    for end in range(1, len(scores) + 1):
        for start in range(end - 1, -1, -1):
            total = float(sum(scores[start:end]))
            if total > best[0]:
                best = (total, start, end)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_best_segment_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = rng.choice([2.0, -3.0, 0.0, 2.0], size=int(rng.integers(0, 40)))
    assert kernels.best_segment(scores) == brute_best_segment(list(scores))


@pytest.mark.parametrize("scores", [[], [-3.0, -3.0], [0.0, 0.0], [2.0], [2.0, -3.0, 2.0],
                                    [2.0, 2.0, -3.0, 2.0, 2.0], [-1.0, 2.0, -2.0, 2.0]])
def test_best_segment_edge_cases(scores):
    assert kernels.best_segment(np.array(scores)) == brute_best_segment(scores)


@pytest.mark.parametrize("seed", range(6))
def test_quality_trimming_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    qualities = list(rng.integers(0, 45, size=n))
    cutoff = float(rng.choice([0.01, 0.05, 0.1]))
    expected = brute_best_segment([cutoff - 10 ** (-q / 10) for q in qualities])
    assert quality_trim_span(qualities, cutoff) == expected[1:]


def test_quality_trimming_edges():
    assert quality_trim_span([40] * 10) == (0, 10)
    assert quality_trim_span([5] * 10) == (0, 0)
    # Phred 13 is an error probability of 0.0501: just below the default cutoff's worth.
    assert quality_trim_span([2, 3, 30, 30, 13, 30, 30, 4, 2]) == (2, 7)
    with pytest.raises(ValueError, match="error probability"):
        quality_trim_span([30], cutoff=0.0)


@pytest.mark.parametrize("seed", range(4))
def test_kmer_codes_match_a_python_loop(seed):
    rng = np.random.default_rng(seed)
    sequence = "".join(rng.choice(list("ACGTN"), p=[0.24, 0.24, 0.24, 0.24, 0.04], size=60))
    k = int(rng.integers(1, 9))
    values, starts = kernels.kmer_codes(kernels.encode_bases(sequence), k)
    expected = [(int("".join(str("ACGT".index(b)) for b in sequence[i : i + k]), 4), i)
                for i in range(len(sequence) - k + 1) if "N" not in sequence[i : i + k]]
    assert list(zip(values.tolist(), starts.tolist(), strict=True)) == expected


@pytest.mark.parametrize("seed", range(4))
def test_seed_diagonal_matches_counting(seed):
    rng = np.random.default_rng(seed)
    reference = random_dna(300, rng)
    start = int(rng.integers(0, 150))
    query = substitute(reference[start : start + 120], rng.choice(120, 6, replace=False), rng)
    k = 6
    q_values, q_starts = kernels.kmer_codes(kernels.encode_bases(query), k)
    r_values, r_starts = kernels.kmer_index(kernels.encode_bases(reference), k)
    diagonal, support = kernels.seed_diagonal(q_values, q_starts, r_values, r_starts, 2)
    first = {}
    for i in range(len(reference) - k + 1):
        first.setdefault(reference[i : i + k], i)
    diagonals = [first[query[j : j + k]] - j for j in range(len(query) - k + 1)
                 if query[j : j + k] in first]
    counts = Counter(diagonals)
    top = max(counts.values())
    assert diagonal == min(d for d, c in counts.items() if c == top) == start
    assert support == sum(1 for d in diagonals if abs(d - diagonal) <= 2)


def test_diagonal_scores_match_a_python_loop():
    reference, query = "ACGTNACGTT", "TTACGAAC"
    for diagonal in (-3, 0, 2, 5):
        scores, identical, offset = kernels.diagonal_scores(
            kernels.encode_bases(reference), kernels.encode_bases(query), diagonal, 2.0, -3.0)
        columns = [(i, query[i], reference[i + diagonal]) for i in range(len(query))
                   if 0 <= i + diagonal < len(reference)]
        assert offset == columns[0][0]
        assert scores.tolist() == [0.0 if "N" in (q, r) else 2.0 if q == r else -3.0
                                   for _, q, r in columns]
        assert identical.tolist() == [q == r != "N" for _, q, r in columns]


# ------------------------------------------------------------------------------ queries
def test_abi_trace_is_trimmed_by_its_quality_values(tmp_path, barcodes, identifier):
    rng = np.random.default_rng(21)
    core = barcodes.reference("Elephas_maximus_NC_005129_cytb").sequence[250:650]
    bases = random_dna(25, rng) + core + random_dna(30, rng)
    qualities = ([int(q) for q in rng.integers(2, 12, 25)] + [int(q) for q in
                 rng.integers(28, 60, len(core))] + [int(q) for q in rng.integers(2, 12, 30)])
    path = write_abif(tmp_path / "tusk-17.ab1", bases, qualities, "tusk-17")
    with open(path, "rb") as handle:
        parsed = SeqIO.read(handle, "abi")  # the file is valid ABIF for Biopython
    assert str(parsed.seq) == bases
    assert parsed.letter_annotations["phred_quality"] == qualities

    (query,) = read_queries(path)
    _, start, end = brute_best_segment([0.05 - 10 ** (-q / 10) for q in qualities])
    assert (query.query_id, query.sequence) == ("tusk-17", bases[start:end])
    assert (query.trim_start, query.read_length) == (start, len(bases))
    assert 20 <= start <= 25 and len(bases) - 35 <= end <= len(bases) - 25
    result = identifier.identify(query)
    assert (result.verdict, result.call) == ("identified", "Elephas maximus")
    assert result.best.identity > 99.0
    assert (result.trim_start, result.read_length) == (start, len(bases))

    (untrimmed,) = read_queries(path, trim_cutoff=None)
    assert untrimmed.sequence == bases and not untrimmed.trimmed


def test_fastq_reads_are_trimmed_and_fasta_reads_are_not(tmp_path, barcodes):
    core = barcodes.reference("Bubalus_bubalis_NC_006295_cytb").sequence[100:300]
    record = SeqRecord(Seq("GGGG" + core + "TT"), id="horn-3", description="")
    record.letter_annotations["phred_quality"] = [3] * 4 + [38] * len(core) + [2, 2]
    fastq = tmp_path / "reads.fq"
    with open(fastq, "w") as handle:
        SeqIO.write([record], handle, "fastq")
    (query,) = read_queries(fastq)
    assert query.sequence == core and query.trim_start == 4
    fasta = write_fasta(tmp_path / "reads.fa", [("horn-3", "GGGG" + core + "TT")])
    (plain,) = read_queries(fasta)
    assert plain.sequence == "GGGG" + core + "TT" and not plain.trimmed


# ------------------------------------------------------------------------------ done when
def fragment_queries(references, length, per_reference, rng):
    """Mutated fragments (1-2% substitutions, either strand) with their true species."""
    queries, truth = [], []
    for reference in references:
        span = len(reference.sequence) - length
        starts = [0, span] + [int(s) for s in rng.integers(0, span + 1, per_reference - 2)]
        for number, start in enumerate(starts[:per_reference]):
            fragment, _ = mutated_fragment(reference.sequence, start, length,
                                           rng.uniform(0.01, 0.02), rng)
            strand = "-" if (number + len(queries)) % 2 else "+"
            if strand == "-":
                fragment = reverse_complement(fragment)
            queries.append(make_query(f"{reference.record_id}@{start}{strand}", fragment))
            truth.append((reference.species, start, strand))
    return queries, truth


def brute_poisson_cdf(count: int, mean: float) -> float:
    return sum(math.exp(-mean) * mean ** i / math.factorial(i) for i in range(count + 1))


# Least share of 1-2%-mutated fragments identified, by length: the rest are fragments whose
# span is too conserved for their differences to rule out a relative (README figures).
LEAST_IDENTIFIED = {150: 0.25, 400: 0.8, 1000: 1.0}


@pytest.mark.parametrize("marker", ["cytb", "COI"])
@pytest.mark.parametrize("length", [150, 400, 1000])
def test_mutated_fragments_are_identified(barcodes, marker, length):
    """1-2% substitutions, either strand: the best hit is the right species (or cattle) where
    the fragment was cut; it is called, or ambiguous by the span check alone, never anything
    else. Over 1,000 columns every fragment is called."""
    rng = np.random.default_rng(length + len(marker))
    identifier = SpeciesIdentifier(barcodes, IdentificationParameters(marker=marker))
    references = barcodes.references_for(marker)
    per_reference = 2 if length == 1000 else 3
    queries, truth = fragment_queries(references, length, per_reference, rng)
    results = identifier.identify_many(queries)
    assert {species for species, _, _ in truth} == set(barcodes.covered_species(marker))
    for result, (species, start, strand) in zip(results, truth, strict=True):
        best = result.best
        assert best.species in ({species} if barcodes.group_of(species) is None
                                else {"Bos taurus", "Bos indicus"}), result.query_id
        assert best.identity >= 97.0 and (result.margin is None or result.margin >= 1.0)
        assert best.strand == strand
        if best.species == species:
            # Local alignment may leave out a mutated base or two at the ends, no more.
            assert start <= best.reference_start <= start + 5
            assert start + length - 5 <= best.reference_end <= start + length
        span = result.span
        assert span.probability == pytest.approx(brute_poisson_cdf(
            best.aligned_length - best.identical, best.aligned_length * span.expected / 100))
        if span.probability <= 0.02:
            assert (result.verdict, result.call) == ("identified", barcodes.label(species))
        else:
            assert (result.verdict, result.call) == ("ambiguous", ""), result.query_id
            assert "too conserved a span" in result.reason
    identified = sum(r.verdict == "identified" for r in results)
    assert identified >= LEAST_IDENTIFIED[length] * len(results)


def test_exact_fragments_align_where_they_were_cut(barcodes, identifier):
    mammoth = barcodes.reference(MAMMOTH).sequence
    for strand, fragment in (("+", mammoth[321:721]), ("-", reverse_complement(mammoth[321:721]))):
        result = identifier.identify(make_query("m", fragment))
        best = result.best
        assert (result.verdict, result.call) == ("identified", "Mammuthus primigenius")
        assert (best.identity, best.aligned_length, best.identical) == (100.0, 400, 400)
        assert (best.strand, best.reference_start, best.reference_end) == (strand, 321, 721)
        assert (best.query_start, best.query_end) == (0, 400)
        assert best.score == 800.0
        assert result.runner_up.species == "Loxodonta africana"
        # Independent count: savanna elephant and mammoth differ at these columns.
        savanna = barcodes.reference(SAVANNA).sequence[321:721]
        differing = sum(a != b for a, b in zip(savanna, mammoth[321:721], strict=True))
        assert result.runner_up.identity == pytest.approx(100.0 * (400 - differing) / 400)
        assert result.margin == pytest.approx(100.0 * differing / 400)


ELEPHANTS = ("Loxodonta africana", "Mammuthus primigenius", "Elephas maximus")


@pytest.mark.parametrize("held_out", CYTB_SPECIES)
def test_species_left_out_of_the_set_is_never_called(barcodes, held_out):
    """Hold one species out: its fragments are 'no match' or 'ambiguous', never another species.

    Windows all along the gene, at every length, conserved ones included: over 150 columns
    savanna elephant and mammoth differ at as few as 2 sites, and there a 2%-mutated read of
    one is as close to the other as a read of that other with errors. The elephants, one
    another's closest relatives here (5.5-7.1% apart over cytb), are tested at every 5th
    window of 150 bp; the rest, 12-25% from anything else, more sparsely. A species of a
    group (zebu, cattle) may be called as its group, which is right.
    """
    rng = np.random.default_rng(sum(map(ord, held_out)))
    kept = BarcodeSet("held-out", tuple(r for r in barcodes.references
                                        if r.species != held_out), barcodes.groups)
    identifier = SpeciesIdentifier(kept)
    sources = [r for r in barcodes.references_for("cytb") if r.species == held_out]
    steps = {150: 5, 400: 15, 1000: 25} if held_out in ELEPHANTS else {150: 60, 400: 80,
                                                                         1000: 70}
    verdicts = Counter()
    for length, step in steps.items():
        for source in sources:
            for start in range(0, len(source.sequence) - length + 1, step):
                fragment, _ = mutated_fragment(source.sequence, start, length,
                                               rng.uniform(0.01, 0.02), rng)
                result = identifier.identify(make_query("x", reverse_complement(fragment)
                                                        if start % 2 else fragment))
                verdicts[result.verdict] += 1
                if result.verdict == "identified":
                    # Only the held-out species' own group (cattle) may still be called.
                    assert result.call == barcodes.group_of(held_out) is not None, (
                        length, start, result.reason)
    assert sum(verdicts.values()) >= 20
    if held_out in ("Loxodonta africana", "Mammuthus primigenius"):
        # Most fragments are too far from the other elephants to match at all; those from the
        # most conserved spans match the other within the identity threshold, and are refused.
        assert verdicts["no match"] > verdicts["ambiguous"] > 0


def test_heavily_mutated_fragments_are_no_match(barcodes, identifier):
    rng = np.random.default_rng(99)
    for reference in barcodes.references_for("cytb"):
        fragment, _ = mutated_fragment(reference.sequence, 300, 400, 0.2, rng)
        result = identifier.identify(make_query("mutant", fragment))
        assert result.verdict == "no match", result.reason
        assert result.call == ""
        assert result.best.identity < 90.0


def test_other_marker_and_random_sequence_are_no_match(barcodes, identifier):
    coi = barcodes.reference("Hippopotamus_amphibius_NC_000889_COI").sequence[400:800]
    junk = random_dna(400, np.random.default_rng(5))
    for sequence in (coi, junk):
        result = identifier.identify(make_query("other", sequence))
        assert result.verdict == "no match"


def test_savanna_elephant_and_mammoth_on_150bp_fragments(barcodes, identifier):
    """Never the wrong one. Both in the set, the margin alone separates them wherever a
    fragment keeps 3 or more diagnostic sites net; the span check then calls a fragment only
    where a relative 5% apart over cytb would rarely differ as little over its span, which
    is recomputed here from the two sequences."""
    rng = np.random.default_rng(150)
    savanna = barcodes.reference(SAVANNA).sequence
    mammoth = barcodes.reference(MAMMOTH).sequence
    diagnostic = np.array([a != b for a, b in zip(savanna, mammoth, strict=True)])
    marker_divergence = 100.0 * diagnostic.mean()
    relaxed = SpeciesIdentifier(barcodes, IdentificationParameters(max_sister_probability=0.999))
    outcomes = Counter()
    for species, sequence in (("Loxodonta africana", savanna),
                              ("Mammuthus primigenius", mammoth)):
        for start in range(0, len(sequence) - 150 + 1, 12):
            fragment, mutated = mutated_fragment(sequence, start, 150, rng.uniform(0.01, 0.02),
                                                 rng)
            if start % 24:
                fragment = reverse_complement(fragment)
            result = identifier.identify(make_query("f", fragment))
            by_margin = relaxed.identify(make_query("f", fragment))
            assert result.call in (species, "") and by_margin.call in (species, ""), start
            sites = diagnostic[start : start + 150]
            net = int(sites.sum()) - 2 * int(sites[mutated].sum())
            if net >= 3:
                assert by_margin.verdict == "identified", (start, net, by_margin.reason)
            best = result.best
            if best.identity >= 97.0 and result.margin >= 1.0:
                # The other one is the nearest, 5.45% apart: its span divergence is scaled to 5%.
                span = diagnostic[best.reference_start : best.reference_end]
                expected = 100.0 * span.mean() * 5.0 / marker_divergence
                probability = brute_poisson_cdf(best.aligned_length - best.identical,
                                                best.aligned_length * expected / 100)
                assert result.span.probability == pytest.approx(probability)
                assert (result.verdict == "identified") == (probability <= 0.02), start
            outcomes[result.verdict] += 1
    assert outcomes["identified"] >= 0.3 * sum(outcomes.values())


# ------------------------------------------------------------------------------ exactness
def naive_best(query: str, references, parameters) -> tuple[float, str, float]:
    """Score, species and identity of the best reference from full Biopython alignments.

    Each reference's better-scoring strand; of the references, the most identical of those
    whose alignment spans ``min_query_coverage`` percent of the query, ties to the higher score.
    """
    aligner = PairwiseAligner(mode="local", match_score=parameters.match_score,
                              mismatch_score=parameters.mismatch_score,
                              open_gap_score=parameters.open_gap_score,
                              extend_gap_score=parameters.extend_gap_score)
    ranked = []
    for reference in references:
        alignment = max((aligner.align(reference.sequence, sequence)[0]
                         for sequence in (query, reverse_complement(query))),
                        key=lambda a: a.score)
        counts = alignment.counts()
        identity = 100 * counts.identities / (counts.identities + counts.mismatches
                                              + counts.gaps)
        covered = alignment.aligned[1][-1, 1] - alignment.aligned[1][0, 0]
        enough = 100 * covered / len(query) >= parameters.min_query_coverage
        ranked.append((enough, identity, alignment.score, reference.species))
    enough, identity, score, species = max(ranked)
    return score, species, identity


def test_agrees_with_full_alignment_to_every_reference(barcodes, identifier):
    rng = np.random.default_rng(8)
    references = barcodes.references_for("cytb")
    queries = []
    for reference in references[::4]:  # an elephant, a rhino and a bovid
        fragment, _ = mutated_fragment(reference.sequence, int(rng.integers(0, 700)), 400, 0.015,
                                       rng)
        queries.append(fragment)
        # A 2-base deletion and a 3-base insertion: the gapped path.
        queries.append(fragment[:150] + fragment[152:300] + "GAT" + fragment[300:])
    for query in queries:
        score, species, identity = naive_best(query, references, identifier.parameters)
        best = identifier.identify(make_query("q", query)).best
        assert (best.score, best.species) == (score, species)
        assert best.identity == pytest.approx(identity)
    gapped = identifier.identify(make_query("q", queries[1])).best
    # All 401 query bases, and the 2 reference bases the deletion left out.
    assert (gapped.aligned_length, gapped.query_end - gapped.query_start) == (403, 401)
    assert gapped.reference_end - gapped.reference_start == 400


def test_ambiguous_bases_are_left_out_of_identity(barcodes, identifier):
    fragment = list(barcodes.reference("Ceratotherium_simum_NC_001808_cytb").sequence[200:600])
    for position in range(5, 400, 40):
        fragment[position] = "N"
    result = identifier.identify(make_query("n", "".join(fragment)))
    assert (result.verdict, result.call) == ("identified", "Ceratotherium simum")
    assert (result.best.identity, result.best.aligned_length) == (100.0, 390)


# ------------------------------------------------------------------------------ verdict logic
def hit(species: str, identity: float, score: float = 700.0, length: int = 400,
        coverage: float = 100.0) -> SpeciesHit:
    return SpeciesHit(species, f"{species}-ref", score, identity, length,
                      round(identity * length / 100), "+", 0, length, 0, length, coverage)


def span(probability: float, neighbour: str = "B b", differences: int = 6) -> SpanDivergence:
    return SpanDivergence("A a-ref", 0, 400, neighbour, f"{neighbour}-ref", 400, 3.0, 3.0, 3.0,
                          400, differences, probability)


PARAMETERS = IdentificationParameters()
GROUPS = {"Bos taurus": "cattle", "Bos indicus": "cattle"}


def test_judge_identified_ambiguous_no_match():
    verdict, call, level, _, runner, margin, candidates = judge(
        [hit("A a", 99.5), hit("B b", 95.0, 600), hit("C c", 96.0, 500)], PARAMETERS, {})
    # The runner-up is the most identical other species, not the second score.
    assert (verdict, call, level, runner.species, candidates) == (
        "identified", "A a", "species", "C c", ("A a",))
    assert margin == pytest.approx(3.5)

    verdict, call, _, reason, runner, margin, candidates = judge(
        [hit("A a", 99.0), hit("B b", 98.5, 690), hit("C c", 90.0, 500)], PARAMETERS, {})
    assert (verdict, call, runner.species, candidates) == ("ambiguous", "", "B b",
                                                            ("A a", "B b"))
    assert "B b is within 1 points" in reason

    # A shorter, more identical competitor makes the margin negative: ambiguous.
    assert judge([hit("A a", 98.0), hit("B b", 99.5, 500, 260)], PARAMETERS, {})[0] == (
        "ambiguous")
    assert judge([hit("A a", 96.9)], PARAMETERS, {})[:4] == (
        "no match", "", "", "96.90% identical to A a, below 97%")
    assert judge([hit("A a", 100.0, 180, 90)], PARAMETERS, {})[3] == (
        "aligned length 90 is below 100")
    assert judge([hit("A a", 99.0)], PARAMETERS, {})[:3] == ("identified", "A a", "species")
    assert judge([], PARAMETERS, {})[0] == "no match"


def test_judge_needs_coverage_and_a_variable_enough_span():
    verdict, call, _, reason, _, _, candidates = judge(
        [hit("A a", 100.0, 600, 300, coverage=75.0)], PARAMETERS, {})
    assert (verdict, call, candidates) == ("no match", "", ())
    assert reason == "alignments cover at most 75.0% of the query, below 80%"
    assert judge([hit("A a", 100.0, 640, 320, coverage=80.0)], PARAMETERS, {})[0] == (
        "identified")

    # The span check: a relative 3% apart would differ at 6 or fewer of 400 columns with
    # probability 0.02 (allowed), or 0.03 (not).
    verdict, call, level, reason, _, _, candidates = judge([hit("A a", 98.5)], PARAMETERS, {},
                                                           span(0.02))
    assert (verdict, call, level, candidates) == ("identified", "A a", "species", ("A a",))
    assert reason.endswith("a relative 3.00% apart over the span would differ as little with "
                           "probability 2.0e-02")
    verdict, call, _, reason, _, _, candidates = judge([hit("A a", 98.5)], PARAMETERS, {},
                                                       span(0.03))
    assert (verdict, call, candidates) == ("ambiguous", "", ("A a", "B b"))
    assert reason == ("6 of 400 columns differ from A a, and a relative 3.00% apart over "
                      "reference columns 0-400 would differ at as few with probability 0.030: "
                      "too conserved a span to call")
    # Without a neighbour in the set, the candidates are the best species alone; a group's
    # neighbour is named as its group.
    assert judge([hit("A a", 98.5)], PARAMETERS, {}, span(0.5, ""))[6] == ("A a",)
    assert judge([hit("A a", 98.5)], PARAMETERS, {"B b": "bees"}, span(0.5))[6] == (
        "A a", "bees")


def test_poisson_cdf_matches_the_sum_of_terms():
    for count, mean in [(0, 0.5), (3, 7.5), (8, 14.4), (20, 50.0), (40, 12.0)]:
        assert poisson_cdf(count, mean) == pytest.approx(brute_poisson_cdf(count, mean),
                                                         rel=1e-12)
    assert poisson_cdf(5, 0.0) == 1.0 and poisson_cdf(-1, 3.0) == 0.0
    assert 0.0 < poisson_cdf(1000, 1500.0) < 1e-10  # no underflow to a bare 0 or NaN


def test_judge_calls_groups_against_the_rest():
    hits = [hit("Bos taurus", 99.5), hit("Bos indicus", 99.3, 695), hit("Bubalus bubalis", 88.0)]
    verdict, call, level, _, runner, margin, candidates = judge(hits, PARAMETERS, GROUPS)
    assert (verdict, call, level, runner.species, candidates) == (
        "identified", "cattle", "group", "Bubalus bubalis", ("cattle",))
    assert margin == pytest.approx(11.5)
    close = [hit("Bos taurus", 99.0), hit("X y", 98.6, 690), hit("Bos indicus", 98.5, 680)]
    verdict, _, _, _, runner, _, candidates = judge(close, PARAMETERS, GROUPS)
    assert (verdict, runner.species, candidates) == ("ambiguous", "X y", ("cattle", "X y"))


def test_near_identical_species_are_ambiguous_and_groups_identified():
    rng = np.random.default_rng(4)
    first = random_dna(900, rng)
    second = substitute(first, [450], rng)  # one difference in 900
    third = substitute(first, rng.choice(900, 90, replace=False), rng)  # 90% identical
    references = (BarcodeReference("a", "Species one", "cytb", first),
                  BarcodeReference("b", "Species two", "cytb", second),
                  BarcodeReference("c", "Species three", "cytb", third))
    query = make_query("q", first[300:600])
    result = SpeciesIdentifier(BarcodeSet("pair", references)).identify(query)
    assert result.verdict == "ambiguous" and result.call == ""
    assert set(result.candidates) == {"Species one", "Species two"}
    assert result.margin == pytest.approx(100 / 300)
    grouped = BarcodeSet("pair", references, {"Species one": "ones", "Species two": "ones"})
    result = SpeciesIdentifier(grouped).identify(query)
    assert (result.verdict, result.call, result.call_level) == ("identified", "ones", "group")
    assert result.runner_up.species == "Species three"
    assert result.margin == pytest.approx(result.best.identity - result.runner_up.identity)
    assert result.margin > 5.0
    alone = SpeciesIdentifier(BarcodeSet("one", references[:1])).identify(query)
    assert (alone.verdict, alone.runner_up, alone.margin) == ("identified", None, None)


def test_a_partial_reference_of_the_true_species_ranks_by_identity(barcodes):
    """A reference covering part of the gene loses on score to a less similar full one."""
    savanna = barcodes.reference(SAVANNA)
    others = tuple(r for r in barcodes.references_for("cytb") if r.species != savanna.species)

    def partial_set(end: int) -> BarcodeSet:
        partial = BarcodeReference("savanna-partial", savanna.species, "cytb",
                                   savanna.sequence[:end])
        return BarcodeSet("partial", (partial, *others), barcodes.groups)

    query = make_query("tusk", savanna.sequence[400:800])
    result = SpeciesIdentifier(partial_set(720)).identify(query)  # covers 320 of 400 bases
    best, runner_up = result.best, result.runner_up
    assert (result.verdict, result.call) == ("identified", "Loxodonta africana")
    assert (best.reference_id, best.identity, best.aligned_length) == ("savanna-partial",
                                                                       100.0, 320)
    assert (best.query_start, best.query_end, best.query_coverage) == (0, 320, 80.0)
    assert runner_up.species == "Mammuthus primigenius" and runner_up.query_coverage == 100.0
    # The premise: the mammoth's full alignment scores more than the savanna's partial one.
    mammoth = barcodes.reference(MAMMOTH).sequence
    assert naive_best(query.sequence, [barcodes.reference(MAMMOTH)],
                      IdentificationParameters())[0] == runner_up.score > best.score == 640.0
    differing = sum(a != b for a, b in zip(savanna.sequence[400:800], mammoth[400:800],
                                           strict=True))
    assert runner_up.identity == pytest.approx(100.0 * (400 - differing) / 400)
    assert result.as_row()["query_coverage"] == 80.0

    # Covering 70% of the query, the partial reference does not rank (the mammoth is then
    # best, and too far to call); with the coverage needed lowered to 70% it does.
    short = SpeciesIdentifier(partial_set(680)).identify(query)
    assert (short.verdict, short.best.species) == ("no match", "Mammuthus primigenius")
    assert short.runner_up.query_coverage == 70.0
    lowered = SpeciesIdentifier(partial_set(680), IdentificationParameters(
        min_query_coverage=70.0)).identify(query)
    assert (lowered.verdict, lowered.call) == ("identified", "Loxodonta africana")


def test_references_within_the_margin_and_covering_enough_of_the_query_compete():
    """The competitor floor's worst case: a reference covering 80% of the query, 96% identical
    (min_identity - min_margin) with every difference a one-base gap (7, the costliest column),
    still gets an identity; with one gap more, below 96%, it cannot affect the verdict and
    does not."""
    rng = np.random.default_rng(31)
    query = random_dna(400, rng)
    full = BarcodeReference("full", "Species one", "cytb",
                            random_dna(100, rng) + query + random_dna(100, rng))
    for gaps in (12, 13):
        deleted = range(12, 12 + 24 * gaps, 24)
        partial = "".join(b for i, b in enumerate(query[:320]) if i not in deleted)
        references = (full, BarcodeReference("partial", "Species two", "cytb", partial))
        hits = SpeciesIdentifier(BarcodeSet("floor", references)).species_hits(query)
        assert (hits[0].species, hits[0].score) == ("Species one", 2.0 * 400)
        if gaps == 12:
            (competitor,) = hits[1:]
            assert (competitor.species, competitor.score, competitor.query_coverage) == (
                "Species two", 2.0 * (320 - 12) - 7.0 * 12, 80.0)
            assert competitor.identity == pytest.approx(100.0 * (320 - 12) / 320)
        else:
            assert len(hits) == 1


def brute_differences(reference: str, other: str, span: tuple[int, int]) -> int:
    """Sites in ``reference[span]`` where an equally long, gapless ``other`` differs."""
    return sum(a != b for a, b in zip(reference[span[0]:span[1]], other[span[0]:span[1]],
                                      strict=True))


def span_of(reference: BarcodeReference, start: int, end: int) -> SpeciesHit:
    length = end - start
    return SpeciesHit(reference.species, reference.record_id, 2.0 * length, 100.0, length,
                      length, "+", 0, length, start, end, 100.0)


def test_span_divergence_counts_the_nearest_other_species(barcodes, identifier):
    savanna = barcodes.reference(SAVANNA).sequence
    mammoth = barcodes.reference(MAMMOTH).sequence
    asian = barcodes.reference("Elephas_maximus_NC_005129_cytb").sequence
    marker = 100.0 * brute_differences(savanna, mammoth, (0, len(savanna))) / len(savanna)
    assert marker == pytest.approx(5.4529, abs=1e-4)  # the README's 94.5% identity
    for start in range(0, len(savanna) - 150 + 1, 50):
        span = identifier.span_divergence(span_of(barcodes.reference(SAVANNA), start,
                                                  start + 150))
        observed = 100.0 * brute_differences(savanna, mammoth, (start, start + 150)) / 150
        assert (span.neighbour, span.neighbour_columns) == ("Mammuthus primigenius", 150)
        assert span.neighbour_divergence == pytest.approx(observed)
        assert span.marker_divergence == pytest.approx(marker)
        # The mammoth is further than the 5% sister divergence: scaled to it.
        assert span.expected == pytest.approx(observed * 5.0 / marker)
        # An exact fragment: no differences, which a relative shows with e^-mean.
        assert (span.query_columns, span.query_differences) == (150, 0)
        assert span.probability == pytest.approx(math.exp(-150 * span.expected / 100))

    # Without the mammoth, the savanna elephant's nearest is the Asian elephant, 7.1% apart.
    no_mammoth = SpeciesIdentifier(BarcodeSet("no mammoth", tuple(
        r for r in barcodes.references if r.species != "Mammuthus primigenius")))
    span = no_mammoth.span_divergence(span_of(barcodes.reference(SAVANNA), 300, 700))
    asian_marker = 100.0 * brute_differences(savanna, asian, (0, len(savanna))) / len(savanna)
    assert span.neighbour == "Elephas maximus"
    assert span.marker_divergence == pytest.approx(asian_marker)
    assert span.expected == pytest.approx(
        brute_differences(savanna, asian, (300, 700)) / 400 * 100 * 5.0 / asian_marker)

    # Cattle's nearest outside its group is the water buffalo.
    cattle = barcodes.reference("Bos_taurus_GU947021_cytb")
    assert identifier.span_divergence(span_of(cattle, 0, 300)).neighbour == "Bubalus bubalis"


def test_span_divergence_across_gaps_and_ends():
    rng = np.random.default_rng(12)
    first = random_dna(900, rng)
    changed = substitute(first, [320, 410, 555], rng)
    # A 3-base deletion after base 449 and a 2-base insertion after base 499 (first's
    # coordinates), and 36 substitutions more outside 300-600 (none at the ends, which an
    # alignment with free end gaps may leave out).
    outside = [int(i) for i in rng.choice(np.r_[5:300, 600:895], 36, replace=False)]
    changed = substitute(changed, outside, rng)
    second = changed[:450] + changed[453:500] + "GG" + changed[500:]
    references = (BarcodeReference("one", "Species one", "cytb", first),
                  BarcodeReference("two", "Species two", "cytb", second),
                  BarcodeReference("random", "Species three", "cytb", random_dna(900, rng)))
    identifier = SpeciesIdentifier(BarcodeSet("gapped", references))
    span = identifier.span_divergence(span_of(references[0], 300, 600))
    # 3 substitutions, 3 deleted bases, and base 499 followed by an insertion.
    assert (span.neighbour, span.neighbour_columns) == ("Species two", 300)
    assert span.neighbour_divergence == pytest.approx(100.0 * 7 / 300)
    assert span.marker_divergence == pytest.approx(100.0 * (3 + 36 + 3 + 1) / 900)
    assert span.expected == span.neighbour_divergence  # nearer than the sister divergence

    # A neighbour covering part of the gene only says something about spans it covers.
    partial = (references[0], BarcodeReference("two", "Species two", "cytb", first[:500]))
    identifier = SpeciesIdentifier(BarcodeSet("partial", partial))
    assert identifier.span_divergence(span_of(partial[0], 300, 600)).neighbour_columns == 200
    outside_it = identifier.span_divergence(span_of(partial[0], 400, 800))
    assert (outside_it.neighbour_columns, outside_it.neighbour_divergence) == (100, None)
    assert outside_it.expected == 5.0
    alone = SpeciesIdentifier(BarcodeSet("alone", partial[:1]))
    assert alone.span_divergence(span_of(partial[0], 0, 300)).expected == 5.0


def test_short_query_is_no_match(identifier, barcodes):
    short = barcodes.reference(SAVANNA).sequence[:80]
    result = identifier.identify(make_query("short", short))
    assert (result.verdict, result.best) == ("no match", None)
    assert result.reason == "query has 80 bases; at least 100 are needed"
    longer = SpeciesIdentifier(barcodes, IdentificationParameters(min_aligned_length=60))
    assert longer.identify(make_query("short", short)).call == "Loxodonta africana"
    empty = identifier.identify(BarcodeQuery("trimmed-away", "", "x.ab1", read_length=300,
                                             trim_start=0))
    assert empty.verdict == "no match" and empty.read_length == 300


@pytest.mark.parametrize("change, message", [
    ({"min_identity": 0.0}, "min_identity"), ({"min_identity": 101.0}, "min_identity"),
    ({"min_margin": -1.0}, "min_margin"), ({"min_aligned_length": 0}, "min_aligned_length"),
    ({"match_score": 0.0}, "match_score"), ({"mismatch_score": 1.0}, "mismatch_score"),
    ({"open_gap_score": -1.0}, "gap scores"), ({"extend_gap_score": 0.0}, "gap scores"),
    ({"marker": " "}, "marker"), ({"min_query_coverage": 0.0}, "min_query_coverage"),
    ({"min_query_coverage": 100.5}, "min_query_coverage"),
    ({"sister_divergence": 0.0}, "sister_divergence"),
    ({"max_sister_probability": 1.0}, "max_sister_probability"),
    ({"max_sister_probability": 0.0}, "max_sister_probability"),
])
def test_parameters_are_checked(change, message):
    with pytest.raises(ValueError, match=message):
        replace(PARAMETERS, **change)


# ------------------------------------------------------------------------------ records, batches
def test_results_cite_the_set_and_parameters(barcodes):
    parameters = IdentificationParameters(min_identity=98.0, min_margin=1.5,
                                          min_query_coverage=90.0, sister_divergence=4.0,
                                          max_sister_probability=0.01)
    query = make_query("q", barcodes.reference(SAVANNA).sequence[:300], "reads.fa")
    (result,) = identify_species(query, barcodes, parameters)
    assert result.reference_set_hash == barcodes.content_hash
    assert (result.reference_set, result.reference_set_version) == ("dnatrack-barcodes", "1")
    assert result.parameters == parameters and result.marker == "cytb"
    row = result.as_row()
    assert list(row) == RESULT_COLUMNS
    assert (row["min_identity"], row["min_margin"], row["source"]) == (98.0, 1.5, "reads.fa")
    assert (row["min_query_coverage"], row["sister_divergence"],
            row["max_sister_probability"]) == (90.0, 4.0, 0.01)
    assert (row["query_coverage"], row["span_neighbour"]) == (100.0, "Mammuthus primigenius")
    assert float(row["sister_probability"]) == pytest.approx(result.span.probability, rel=1e-2)
    assert row["reference_set_hash"] == barcodes.content_hash
    assert parameters.as_dict()["open_gap_score"] == -7.0
    assert parameters.as_dict()["max_sister_probability"] == 0.01


def test_batch_on_worker_processes_equals_one_by_one(barcodes, identifier):
    rng = np.random.default_rng(64)
    queries, _ = fragment_queries(barcodes.references_for("cytb"), 150, 6, rng)
    assert len(queries) >= 64  # enough to use the worker processes
    done = []
    parallel = identifier.identify_many(queries, workers=2, progress=done.append)
    assert parallel == [identifier.identify(q) for q in queries]
    assert sum(done) == len(queries)
    with pytest.raises(ValueError, match="workers"):
        identifier.identify_many(queries, workers=0)
