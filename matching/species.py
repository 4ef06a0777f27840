"""Species identification from mitochondrial barcodes (DESIGN 5.6).

Before any genotype is compared, a lab shows what an item is: which elephant (or legal
mammoth ivory), which rhino, or a fake (cattle or water-buffalo horn, hippo tooth). A barcode
read (FASTA, FASTQ, or an ABI trace trimmed by its quality values) is aligned with Biopython's
:class:`~Bio.Align.PairwiseAligner` to every reference of one marker in a
:class:`BarcodeSet`, on both strands, and judged:

``identified``
    the best species is at least ``min_identity`` percent identical over at least
    ``min_aligned_length`` columns covering at least ``min_query_coverage`` percent of the
    query; every other species is at least ``min_margin`` percentage points less identical;
    and the query differs from the best reference at few enough columns that a relative of it
    would hardly differ so little over the same reference span (below). Species of one group
    (``Bos taurus`` and ``Bos indicus``: mitochondrial DNA cannot reliably tell them apart)
    are called as the group (``cattle``), and the margin and the span are then taken to
    species outside the group.
``ambiguous``
    good enough a match, but another species (or group) is within the margin, or the span is
    too conserved for the query's differences from the best reference to rule out another
    species.
``no match``
    below the identity threshold, too short an alignment or query, or no reference covering
    enough of the query: the species is probably not in the set.

Species are ranked by percent identity over the aligned columns, among references whose
alignment covers at least ``min_query_coverage`` percent of the query, not by alignment score:
a reference covering only part of the gene scores less than a longer one of a less similar
species, yet it is the better evidence over the part it covers. Any other species whose
identity comes within the margin makes the call ambiguous, even one covering less of the query,
as long as it scores at least :meth:`IdentificationParameters.competitor_score_fraction` of the
best (as every reference within the margin and covering ``min_query_coverage`` percent does).

Span check. How far apart two species are depends on where in the gene a read falls: over the
whole cytb gene savanna elephant and mammoth differ at 5.5% of sites, over some 150-column
stretches at 1.3% (2 sites). Whether a read 98% identical to the savanna elephant is one, or a
relative the set lacks, therefore depends on its span and its length. For the best reference,
the nearest other-species reference in the set (fewest differences over the whole marker,
outside the best species' group) is aligned to it once, and its divergence over the read's
reference span measured; when it is further apart over the whole marker than
``sister_divergence`` (default 5%), that span divergence is scaled down to what a species
``sister_divergence`` apart would show there: the closest relative the set may not hold (with
the mammoth left out, the savanna elephant's nearest is the Asian elephant, 7.1% apart). A
relative that much apart over the span would differ from the best reference at a Poisson
number of the read's aligned columns; a call needs the chance that it differs at no more
columns than the read does to be at most ``max_sister_probability`` (default 0.02). This is
stricter on short reads than a fixed identity would be: where a relative is expected 5%
apart, a read may differ from the best reference at 1 of 150 columns (0.7%) but 35 of 1,000
(3.5%), as a relative's differences over few columns fall far below their average more often
than over many. A neighbour covering less than half of the span says nothing about it, and
``sister_divergence`` itself is expected there.

With the defaults, reads with 1-2% substitutions of the bundled references are identified over
every 1,000-column span; over 400 columns nearly all, the exceptions in some of the elephants'
most conserved spans, where a mammoth, savanna or Asian elephant read with 2% differences
cannot be told from a relative (figures in ``reference_data/barcodes/README.md``); over 150
columns about 40% of them, and nearly every exact read: a 150-base read with 2 or 3
differences cannot honestly be told from a relative over most spans, when 150-column spans of
sister species can differ at 2 sites.

Not covered by the bundled set, though relevant to ivory and horn: African forest elephant
(*Loxodonta cyclotis*), walrus (*Odobenus rosmarus*), black rhino (*Diceros bicornis*) and
Javan rhino (*Rhinoceros sondaicus*). Reads of these are "no match" or "ambiguous", not a
covered species, as far as the span check's ``sister_divergence`` holds for them; add
validated references (:meth:`BarcodeSet.with_references`) before relying on the set for them.

Alignments are local (a fragment of a gene, or a read running past its ends, aligns as well as
the whole gene), with the BLASTN scores (match +2, mismatch -3, gap of length L costs 5 + 2L),
under which a local alignment only extends through stretches more than 60% identical, so its
percent identity is meaningful. Identity is counted over the aligned columns: identical
columns / (matched and mismatched columns + internal gap columns), leaving out columns with an
ambiguous base (``N``, IUPAC codes), which score 0.

Speed: each query's k-mers (k = :data:`SEED_K`) pick the strand and, per reference, the
diagonal the query lies on; every reference is then scored (Biopython, score only) against a
window of the reference around that diagonal rather than all of it, and only references scoring
at least :meth:`IdentificationParameters.competitor_score_fraction` of the best get an identity
(from the best ungapped segment on the diagonal when that reaches the optimal score, otherwise
from a full Biopython alignment). When the k-mers do not settle the strand, both strands are
scored; a reference with too few seeds is scored whole. The alignment of each reference to its
nearest other-species reference is made once per identifier, when first needed. Batches run on
worker processes (Biopython's aligner holds the GIL, so threads do not scale).

Every :class:`SpeciesResult` carries the reference set's name, version and
:attr:`BarcodeSet.content_hash`, and the :class:`IdentificationParameters`, so a report can cite
exactly what was compared.

Examples
--------
>>> from matching.species import default_barcode_set, make_query, SpeciesIdentifier
>>> barcodes = default_barcode_set()
>>> elephant = barcodes.reference("Loxodonta_africana_NC_000934_cytb").sequence
>>> result = SpeciesIdentifier(barcodes).identify(make_query("tusk-1", elephant[200:600]))
>>> result.verdict, result.call
('identified', 'Loxodonta africana')
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import multiprocessing
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from matching import _species_kernels as kernels

VERDICTS = ("identified", "ambiguous", "no match")

# Letters accepted in a DNA sequence: the four bases and the IUPAC ambiguity codes. Ambiguity
# codes are stored as N (scored 0 against anything) since a barcode call rests on clear bases.
_BASES = frozenset("ACGT")
_AMBIGUITY_CODES = frozenset("RYSWKMBDHVN")
# Alignment gap characters, dropped from sequences: reference sets are often kept aligned.
_GAP_CHARACTERS = "-"

# Seeds: 8-mers are long enough that chance hits in a 1-2 kb reference are rare (4^8 = 65,536)
# and short enough that a species 70% identical still shares a few on the right diagonal.
SEED_K = 8
# Seeds within this many positions of the best diagonal support it (indels shift it a little).
SEED_TOLERANCE = 3
# A reference needs this many seeds on one diagonal to be scored in a window only.
MIN_ANCHOR_SEEDS = 4
# One strand is scored alone when its best anchor has this many seeds and at least
# STRAND_RATIO times the other strand's; otherwise both strands are scored.
MIN_STRAND_SEEDS = 8
STRAND_RATIO = 2
# Reference bases kept on each side of the query's diagonal: room for indels and overhangs.
WINDOW_PAD = 32
# The nearest other-species reference is found among this many references sharing the most
# k-mers with the best one, aligned exactly (k-mer sharing ranks related sequences well but
# can swap two neighbours of nearly equal distance).
NEIGHBOUR_CANDIDATES = 2
# Below this many queries, starting worker processes costs more than it saves.
PARALLEL_MIN_QUERIES = 64
# Mott's trimming: a base with error probability below this improves the kept segment.
DEFAULT_TRIM_CUTOFF = 0.05

_FASTA_SUFFIXES = {".fasta", ".fa", ".fas", ".fna", ".fsa", ".ffn", ".seq"}
_FASTQ_SUFFIXES = {".fastq", ".fq"}
_ABI_SUFFIXES = {".ab1", ".abi", ".abif"}
QUERY_FORMATS = ("fasta", "fastq", "abi")


class BarcodeFormatError(ValueError):
    """A sequence, manifest or groups file could not be read: says which file, line, record.

    Parameters
    ----------
    message
        What is wrong, e.g. ``"empty sequence"``.
    path
        The file being read (``None`` for in-memory input).
    line
        1-based line number, if known.
    record
        Record (sequence) identifier, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        record: str | None = None,
    ) -> None:
        self.reason = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.record = record
        where = []
        if self.path is not None:
            where.append(os.path.basename(self.path))
        if line is not None:
            where.append(f"line {line}")
        if record is not None:
            where.append(f"record {record!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


def clean_sequence(text: str, *, path=None, record: str | None = None) -> str:
    """A DNA sequence in upper case with ambiguity codes as ``N`` and alignment gaps removed.

    Raises
    ------
    BarcodeFormatError
        For an empty sequence or a letter that is neither a base nor an IUPAC ambiguity code
        (naming the letter and its 1-based position), naming ``path`` and ``record``.
    """
    sequence = "".join(text.split()).upper().replace(_GAP_CHARACTERS, "")
    if not sequence:
        raise BarcodeFormatError("empty sequence", path=path, record=record)
    letters = set(sequence)
    if letters <= _BASES:
        return sequence
    foreign = letters - _BASES - _AMBIGUITY_CODES
    if foreign:
        position = min(sequence.index(letter) for letter in foreign)
        raise BarcodeFormatError(
            f"{sequence[position]!r} at position {position + 1} is not a DNA base "
            "(allowed: A, C, G, T and the IUPAC ambiguity codes)",
            path=path,
            record=record,
        )
    return "".join(base if base in _BASES else "N" for base in sequence)


# ------------------------------------------------------------------------------ references
@dataclass(frozen=True)
class BarcodeReference:
    """One reference barcode sequence of a known species.

    Attributes
    ----------
    record_id : str
        Unique identifier of the record in its set.
    species : str
        Scientific name, e.g. ``"Loxodonta africana"``.
    marker : str
        Gene, e.g. ``"cytb"`` or ``"COI"``.
    sequence : str
        Upper-case DNA (A, C, G, T, N).
    common_name, accession, source, licence : str
        Provenance, as the file gives it (not part of the content hash).
    """

    record_id: str
    species: str
    marker: str
    sequence: str
    common_name: str = ""
    accession: str = ""
    source: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        for name in ("record_id", "species", "marker"):
            if not getattr(self, name).strip():
                raise ValueError(f"reference {self.record_id!r}: empty {name}")
        object.__setattr__(
            self, "sequence", clean_sequence(self.sequence, record=self.record_id)
        )


def _same_marker(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


@dataclass(frozen=True, eq=False)
class BarcodeSet:
    """Reference barcodes of several species and markers, with species groups.

    Attributes
    ----------
    name, version : str
        Cited in reports with :attr:`content_hash`.
    references : tuple of BarcodeReference
    groups : dict of str to str
        Species -> group name, for species a barcode cannot reliably tell apart (reported as
        the group). Species not listed form no group.
    description : str
    """

    name: str
    references: tuple[BarcodeReference, ...]
    groups: dict[str, str] = field(default_factory=dict)
    version: str = "1"
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "groups", dict(self.groups))
        if not self.references:
            raise ValueError(f"barcode set {self.name!r} has no references")
        seen = set()
        for reference in self.references:
            if reference.record_id in seen:
                raise ValueError(
                    f"barcode set {self.name!r} has record {reference.record_id!r} twice"
                )
            seen.add(reference.record_id)
        for species, group in self.groups.items():
            if not str(species).strip() or not str(group).strip():
                raise ValueError(f"barcode set {self.name!r}: empty species or group name")

    @property
    def markers(self) -> tuple[str, ...]:
        """Markers with references, in order of first appearance."""
        return tuple(dict.fromkeys(r.marker for r in self.references))

    def reference(self, record_id: str) -> BarcodeReference:
        for reference in self.references:
            if reference.record_id == record_id:
                return reference
        raise KeyError(f"barcode set {self.name!r} has no record {record_id!r}")

    def references_for(self, marker: str) -> tuple[BarcodeReference, ...]:
        """References of one marker (case-insensitive); ``ValueError`` listing the markers."""
        chosen = tuple(r for r in self.references if _same_marker(r.marker, marker))
        if not chosen:
            raise ValueError(
                f"barcode set {self.name!r} has no {marker!r} references; markers: "
                f"{', '.join(self.markers)}"
            )
        return chosen

    def covered_species(self, marker: str | None = None) -> list[str]:
        """Species with at least one reference (of ``marker``, if given), sorted."""
        references = self.references if marker is None else self.references_for(marker)
        return sorted({r.species for r in references})

    def group_of(self, species: str) -> str | None:
        """The group a species is reported as, or ``None``."""
        return self.groups.get(species)

    def label(self, species: str) -> str:
        """What a call on ``species`` reports: its group if it has one, else the species."""
        return self.groups.get(species, species)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the sequences, their species and markers, and the groups.

        Independent of record order, file layout and provenance fields, so reformatting or
        re-annotating a file does not change it; any change to what is compared does.
        """
        content = {
            "references": sorted(
                [r.record_id, r.species, r.marker, r.sequence] for r in self.references
            ),
            "groups": sorted(self.groups.items()),
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_references(
        self,
        references: BarcodeSet | Iterable[BarcodeReference],
        *,
        replace_existing: bool = False,
        name: str | None = None,
    ) -> BarcodeSet:
        """A new set with ``references`` added (a lab's own validated barcodes).

        Parameters
        ----------
        references
            A :class:`BarcodeSet` (its groups are merged, overriding this set's for the same
            species) or reference records.
        replace_existing
            When ``True`` a record whose ``record_id`` is already in the set replaces it;
            otherwise that is an error.
        name
            Name of the new set (default: this set's name, plus ``+`` and the added set's).

        Raises
        ------
        ValueError
            A record id already present without ``replace_existing``.
        """
        if isinstance(references, BarcodeSet):
            added = references.references
            groups = {**self.groups, **references.groups}
            name = name or f"{self.name}+{references.name}"
        else:
            added = tuple(references)
            groups = dict(self.groups)
            name = name or self.name
        incoming = {r.record_id: r for r in added}
        if len(incoming) != len(added):
            raise ValueError("the added references hold a record id twice")
        clashes = [r.record_id for r in self.references if r.record_id in incoming]
        if clashes and not replace_existing:
            raise ValueError(
                f"records already in barcode set {self.name!r}: {', '.join(clashes)} "
                "(replace them explicitly)"
            )
        kept = [incoming.pop(r.record_id, r) for r in self.references]
        return BarcodeSet(
            name=name,
            references=(*kept, *incoming.values()),
            groups=groups,
            version=self.version,
            description=self.description,
        )

    def with_groups(self, groups: Mapping[str, str]) -> BarcodeSet:
        """A new set with these species groups added (overriding this set's for a species)."""
        return BarcodeSet(self.name, self.references, {**self.groups, **groups},
                          self.version, self.description)

    def summary(self) -> list[dict]:
        """One row per marker and species: reference count and group."""
        rows = []
        for marker in self.markers:
            for species in self.covered_species(marker):
                count = sum(
                    1 for r in self.references_for(marker) if r.species == species
                )
                rows.append({"marker": marker, "species": species,
                             "group": self.group_of(species) or "", "references": count})
        return rows


def _open_text(path: Path):
    """Open a text file, or raise :class:`BarcodeFormatError` naming it."""
    try:
        return open(path, encoding="utf-8", newline=None)
    except OSError as error:
        raise BarcodeFormatError(f"cannot read: {error.strerror}", path=path) from None


def _read_tsv(path: str | os.PathLike, required: Sequence[str]) -> list[tuple[int, dict]]:
    """Rows of a tab-separated file with a header as ``(line number, row dict)``."""
    path = Path(path)
    with _open_text(path) as handle:
        try:
            lines = handle.read().splitlines()
        except UnicodeDecodeError:
            raise BarcodeFormatError("not UTF-8 text", path=path) from None
    numbered = [(number, text) for number, text in enumerate(lines, start=1) if text.strip()]
    if not numbered:
        raise BarcodeFormatError("empty file", path=path)
    header_line, header = numbered[0]
    columns = [c.strip() for c in header.split("\t")]
    missing = [c for c in required if c not in columns]
    if missing:
        raise BarcodeFormatError(
            f"missing column(s) {', '.join(missing)} (tab-separated header needed)",
            path=path,
            line=header_line,
        )
    rows = []
    for number, text in numbered[1:]:
        cells = [c.strip() for c in next(csv.reader([text], delimiter="\t"))]
        if len(cells) > len(columns):
            raise BarcodeFormatError(
                f"{len(cells)} cells for {len(columns)} columns", path=path, line=number
            )
        row = dict(zip(columns, cells + [""] * (len(columns) - len(cells)), strict=True))
        for column in required:
            if not row[column]:
                raise BarcodeFormatError(f"empty {column}", path=path, line=number)
        rows.append((number, row))
    return rows


def read_manifest(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """A barcode manifest: tab-separated, one row per record.

    Columns ``record``, ``species`` and ``marker`` are required; ``accession``, ``source``,
    ``license`` (or ``licence``) and ``common_name`` are used when present. Rows may name
    records that are not in the FASTA files read with it (a manifest can describe more).

    Returns
    -------
    dict
        Record id -> row.
    """
    rows = {}
    for number, row in _read_tsv(path, ("record", "species", "marker")):
        if row["record"] in rows:
            raise BarcodeFormatError(
                f"record {row['record']!r} listed twice", path=path, line=number
            )
        rows[row["record"]] = row
    return rows


def read_groups(path: str | os.PathLike) -> dict[str, str]:
    """Species groups: tab-separated columns ``species`` and ``group``; species -> group."""
    groups = {}
    for number, row in _read_tsv(path, ("species", "group")):
        if row["species"] in groups:
            raise BarcodeFormatError(
                f"species {row['species']!r} listed twice", path=path, line=number
            )
        groups[row["species"]] = row["group"]
    return groups


def _header_fields(description: str, record_id: str) -> dict[str, str]:
    """Labels from a FASTA description: ``ID Genus species (common name) | key=value | ...``.

    A ``species=`` field wins over the free text; the free text's parenthesised tail is the
    common name.
    """
    text = description[len(record_id):] if description.startswith(record_id) else description
    keyed, free = {}, []
    for part in text.split("|"):
        part = part.strip()
        key, sep, value = part.partition("=")
        if sep and key.strip() and " " not in key.strip():
            keyed[key.strip().lower()] = value.strip()
        elif part:
            free.append(part)
    species = keyed.get("species", free[0] if free else "")
    common = keyed.get("common_name", "")
    if "(" in species:
        species, _, tail = species.partition("(")
        common = common or (tail[:-1] if tail.endswith(")") else tail).strip()
    return {
        "species": " ".join(species.split()),
        "marker": keyed.get("marker", ""),
        "common_name": common,
        "accession": keyed.get("accession", ""),
        "source": keyed.get("source", ""),
        "licence": keyed.get("license", keyed.get("licence", "")),
    }


def _fasta_records(path: Path, text: str) -> list:
    """Biopython's FASTA records of ``text``, after checking the file starts with a header."""
    from io import StringIO

    from Bio import SeqIO

    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not line.startswith(">"):
                raise BarcodeFormatError(
                    "not FASTA: expected a '>' header line", path=path, line=number
                )
            break
    else:
        raise BarcodeFormatError("empty file", path=path)
    records = list(SeqIO.parse(StringIO(text), "fasta"))
    seen = set()
    for record in records:
        if not record.id:
            raise BarcodeFormatError("a '>' header line without a record id", path=path)
        if record.id in seen:
            raise BarcodeFormatError("record id used twice", path=path, record=record.id)
        seen.add(record.id)
    return records


def _read_text(path: Path) -> str:
    with _open_text(path) as handle:
        try:
            return handle.read()
        except UnicodeDecodeError:
            raise BarcodeFormatError("not UTF-8 text", path=path) from None


def read_barcode_fasta(
    path: str | os.PathLike,
    *,
    manifest: Mapping[str, Mapping[str, str]] | None = None,
    marker: str | None = None,
) -> list[BarcodeReference]:
    """Reference barcodes from a FASTA file, labelled from a manifest or their headers.

    Parameters
    ----------
    path
        FASTA file.
    manifest
        Record id -> row with ``species`` and ``marker`` (and provenance), as from
        :func:`read_manifest`; when given, every record must be in it.
    marker
        Marker for records whose header names none (``marker=...``) and that no manifest
        labels.

    Raises
    ------
    BarcodeFormatError
        Malformed FASTA, an empty sequence, a letter that is not DNA, a duplicate record, a
        record without species or marker, or one missing from the manifest; nothing is
        returned from a bad file.
    """
    path = Path(path)
    references = []
    for record in _fasta_records(path, _read_text(path)):
        labels = _header_fields(record.description, record.id)
        if manifest is not None:
            row = manifest.get(record.id)
            if row is None:
                raise BarcodeFormatError("not in the manifest", path=path, record=record.id)
            labels.update({
                "species": row["species"],
                "marker": row["marker"],
                "common_name": row.get("common_name") or labels["common_name"],
                "accession": row.get("accession") or labels["accession"],
                "source": row.get("source") or labels["source"],
                "licence": row.get("license") or row.get("licence") or labels["licence"],
            })
        labels["marker"] = labels["marker"] or marker or ""
        if not labels["species"]:
            raise BarcodeFormatError(
                "no species label (give 'ID Genus species' headers, species=..., or a "
                "manifest)", path=path, record=record.id,
            )
        if not labels["marker"]:
            raise BarcodeFormatError(
                "no marker (give marker=... in the header, a manifest, or a default marker)",
                path=path, record=record.id,
            )
        sequence = clean_sequence(str(record.seq), path=path, record=record.id)
        references.append(BarcodeReference(record_id=record.id, sequence=sequence, **labels))
    return references


def load_barcode_set(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    manifest: str | os.PathLike | None = None,
    groups: str | os.PathLike | Mapping[str, str] | None = None,
    marker: str | None = None,
    name: str | None = None,
    version: str = "1",
    description: str = "",
) -> BarcodeSet:
    """A barcode set from FASTA files (a folder means every ``*.fasta`` in it).

    Parameters
    ----------
    paths
        FASTA files or folders. A folder may also hold ``manifest.tsv`` and ``groups.tsv``,
        used when ``manifest`` and ``groups`` are not given.
    manifest
        Tab-separated manifest (:func:`read_manifest`) labelling the records.
    groups
        Species groups: a tab-separated file (:func:`read_groups`) or a mapping.
    marker
        Default marker for records that name none.
    name
        Set name (default: the first file's or folder's name).
    version, description
        Cited with the set.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.fasta"))
            if not found:
                raise BarcodeFormatError("folder holds no *.fasta files", path=path)
            files.extend(found)
            if manifest is None and (path / "manifest.tsv").is_file():
                manifest = path / "manifest.tsv"
            if groups is None and (path / "groups.tsv").is_file():
                groups = path / "groups.tsv"
        else:
            files.append(path)
    if not files:
        raise ValueError("no barcode files given")
    rows = read_manifest(manifest) if manifest is not None else None
    if groups is None:
        group_map = {}
    elif isinstance(groups, Mapping):
        group_map = dict(groups)
    else:
        group_map = read_groups(groups)
    references = [r for path in files for r in read_barcode_fasta(path, manifest=rows,
                                                                   marker=marker)]
    try:
        return BarcodeSet(
            name=name or Path(paths[0]).stem,
            references=tuple(references),
            groups=group_map,
            version=version,
            description=description,
        )
    except ValueError as error:
        raise BarcodeFormatError(str(error), path=files[0] if len(files) == 1 else None) from None


DEFAULT_SET_NAME = "dnatrack-barcodes"


@functools.lru_cache(maxsize=1)
def default_barcode_set() -> BarcodeSet:
    """The bundled reference barcodes (cytb and COI; see ``reference_data/barcodes/README.md``)."""
    from reference_data import data_path

    return load_barcode_set(
        data_path("barcodes"),
        name=DEFAULT_SET_NAME,
        version="1",
        description="published GenBank cytb and COI barcodes of ivory, horn and look-alike "
        "species; see reference_data/barcodes/README.md",
    )


# ------------------------------------------------------------------------------ queries
@dataclass(frozen=True)
class BarcodeQuery:
    """A barcode read to identify.

    Attributes
    ----------
    query_id : str
    sequence : str
        Upper-case DNA (A, C, G, T, N) after quality trimming; may be empty when trimming
        left nothing.
    source : str
        File it was read from ('' for in-memory queries).
    read_length : int
        Length before trimming (default, or -1: the sequence's length).
    trim_start : int
        0-based offset of ``sequence`` in the untrimmed read.
    """

    query_id: str
    sequence: str
    source: str = ""
    read_length: int = -1
    trim_start: int = 0

    def __post_init__(self) -> None:
        if self.read_length < 0:
            object.__setattr__(self, "read_length", len(self.sequence))

    @property
    def trimmed(self) -> bool:
        return len(self.sequence) != self.read_length


def make_query(query_id: str, sequence: str, source: str = "") -> BarcodeQuery:
    """A query from a string, checked and cleaned (:func:`clean_sequence`)."""
    return BarcodeQuery(query_id, clean_sequence(sequence, path=source or None,
                                                 record=query_id), source)


def quality_trim_span(qualities: Sequence[int] | np.ndarray,
                      cutoff: float = DEFAULT_TRIM_CUTOFF) -> tuple[int, int]:
    """The span of a read kept by Mott's trimming of low-quality ends.

    Each base scores ``cutoff - 10**(-q/10)`` (positive when its error probability is below
    ``cutoff``); the kept span is the contiguous run with the largest total score (the modified
    Mott algorithm of phred's ``-trim_alt``).

    Parameters
    ----------
    qualities : sequence of int, shape (n,)
        Phred quality values.
    cutoff : float
        Error probability, in (0, 1).

    Returns
    -------
    start, end : int
        Keep ``read[start:end]``; ``(0, 0)`` when no base is good enough.
    """
    if not 0.0 < cutoff < 1.0:
        raise ValueError(f"trim cutoff must be an error probability in (0, 1), got {cutoff}")
    phred = np.asarray(qualities, dtype=np.float64)
    _, start, end = kernels.best_segment(cutoff - 10.0 ** (-phred / 10.0))
    return start, end


def _sniff_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _FASTA_SUFFIXES:
        return "fasta"
    if suffix in _FASTQ_SUFFIXES:
        return "fastq"
    if suffix in _ABI_SUFFIXES:
        return "abi"
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise BarcodeFormatError(f"cannot read: {error.strerror}", path=path) from None
    if head == b"ABIF":
        return "abi"
    if head.lstrip()[:1] == b"@":
        return "fastq"
    if head.lstrip()[:1] == b">":
        return "fasta"
    raise BarcodeFormatError(
        "cannot tell the format (FASTA, FASTQ or ABI); name it explicitly", path=path
    )


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _quality_records(path: Path, file_format: str) -> list:
    """Biopython records of a FASTQ or ABI file, errors rewritten to name the file."""
    from Bio import SeqIO

    mode = "rb" if file_format == "abi" else "r"
    try:
        with open(path, mode) as handle:
            records = list(SeqIO.parse(handle, file_format))
    except OSError as error:
        raise BarcodeFormatError(f"cannot read: {error.strerror}", path=path) from None
    except (ValueError, UnicodeDecodeError, AssertionError, struct.error) as error:
        # Biopython's ABI parser checks tag sizes with assert and unpacks with struct; a
        # truncated trace trips either.
        raise BarcodeFormatError(
            f"not a valid {file_format.upper()} file: {_first_line(error)}", path=path
        ) from None
    if not records:
        raise BarcodeFormatError(f"no {file_format.upper()} records", path=path)
    return records


def read_queries(
    path: str | os.PathLike,
    *,
    file_format: str | None = None,
    trim_cutoff: float | None = DEFAULT_TRIM_CUTOFF,
) -> list[BarcodeQuery]:
    """Barcode reads from a FASTA, FASTQ or ABI trace (``.ab1``) file.

    Reads with quality values (FASTQ, ABI) have their low-quality ends trimmed
    (:func:`quality_trim_span`) unless ``trim_cutoff`` is ``None``.

    Parameters
    ----------
    path
    file_format : {'fasta', 'fastq', 'abi'}, optional
        Default: from the extension, else from the first bytes.
    trim_cutoff : float or None

    Raises
    ------
    BarcodeFormatError
        Malformed file, empty sequence, non-DNA letters, an ABI trace without quality values
        (when trimming), naming the file and record.
    """
    path = Path(path)
    file_format = file_format or _sniff_format(path)
    if file_format not in QUERY_FORMATS:
        raise ValueError(f"unknown query format {file_format!r}; known: {QUERY_FORMATS}")
    if file_format == "fasta":
        return [
            make_query(record.id, str(record.seq), str(path))
            for record in _fasta_records(path, _read_text(path))
        ]
    queries = []
    for number, record in enumerate(_quality_records(path, file_format), start=1):
        record_id = record.id
        if file_format == "abi" and record_id in ("", "<unknown id>"):
            record_id = path.stem if number == 1 else f"{path.stem}_{number}"
        sequence = clean_sequence(str(record.seq), path=path, record=record_id)
        start, end = 0, len(sequence)
        if trim_cutoff is not None:
            qualities = record.letter_annotations.get("phred_quality")
            if qualities is None:
                raise BarcodeFormatError(
                    "no quality values to trim by (read it with trimming off)",
                    path=path, record=record_id,
                )
            start, end = quality_trim_span(qualities, trim_cutoff)
        queries.append(BarcodeQuery(record_id, sequence[start:end], str(path),
                                    read_length=len(sequence), trim_start=start))
    return queries


# ---------------------------------------------------------------------- parameters and results
@dataclass(frozen=True)
class IdentificationParameters:
    """Thresholds and alignment scores of an identification; every result carries them.

    Attributes
    ----------
    marker : str
        Which references to align to.
    min_identity : float
        Percent identity below which there is no match (within a species barcodes are
        99.7-100% identical; between the closest species here at most 94.5%).
    min_margin : float
        Percentage points of identity the best species (or group) must lead every other by.
    min_aligned_length : int
        Fewest aligned columns (and query bases) for a call.
    min_query_coverage : float
        Percent of the query's bases its alignment must span for a reference to rank (a
        shorter reference, covering part of the gene, competes on identity over what it
        covers as long as that is this much of the query).
    sister_divergence : float
        Percent of sites at which a species differs from its closest relative over the whole
        marker, at the least, for species one may meet: what the span check assumes of a
        relative the set may lack (cytb: savanna elephant and mammoth 5.5%, savanna and Asian
        elephant 7.1%). A smaller value calls fewer reads, a larger one risks calling a
        relative missing from the set.
    max_sister_probability : float
        The span check: largest probability, for a relative differing from the best reference
        at the expected span divergence, of differing at no more columns than the query, for a
        call.
    match_score, mismatch_score, open_gap_score, extend_gap_score : float
        Biopython's scores: ``open_gap_score`` is the score of a gap's first column,
        ``extend_gap_score`` of each further one (BLASTN: a gap of length L costs 5 + 2L).
    """

    marker: str = "cytb"
    min_identity: float = 97.0
    min_margin: float = 1.0
    min_aligned_length: int = 100
    min_query_coverage: float = 80.0
    sister_divergence: float = 5.0
    max_sister_probability: float = 0.02
    match_score: float = 2.0
    mismatch_score: float = -3.0
    open_gap_score: float = -7.0
    extend_gap_score: float = -2.0

    def __post_init__(self) -> None:
        if not self.marker.strip():
            raise ValueError("marker must be named")
        if not 0.0 < self.min_identity <= 100.0:
            raise ValueError(f"min_identity must be a percentage in (0, 100], "
                             f"got {self.min_identity}")
        if not 0.0 <= self.min_margin <= 100.0:
            raise ValueError(f"min_margin must be in [0, 100] percentage points, "
                             f"got {self.min_margin}")
        if self.min_aligned_length < 1:
            raise ValueError(f"min_aligned_length must be at least 1, "
                             f"got {self.min_aligned_length}")
        if not 0.0 < self.min_query_coverage <= 100.0:
            raise ValueError(f"min_query_coverage must be a percentage in (0, 100], "
                             f"got {self.min_query_coverage}")
        if not 0.0 < self.sister_divergence <= 100.0:
            raise ValueError(f"sister_divergence must be a percentage in (0, 100], "
                             f"got {self.sister_divergence}")
        if not 0.0 < self.max_sister_probability < 1.0:
            raise ValueError(f"max_sister_probability must be in (0, 1), "
                             f"got {self.max_sister_probability}")
        if self.match_score <= 0 or self.mismatch_score >= 0:
            raise ValueError("match_score must be positive and mismatch_score negative")
        if not self.open_gap_score <= self.extend_gap_score < 0:
            raise ValueError("gap scores must be negative, opening no better than extending")

    def aligner(self, mode: str = "local"):
        """A Biopython :class:`~Bio.Align.PairwiseAligner` with these scores.

        ``mode="global"`` gives free end gaps (one sequence may start or end inside the
        other), for aligning references to each other.
        """
        from Bio.Align import PairwiseAligner

        aligner = PairwiseAligner(
            mode=mode,
            match_score=self.match_score,
            mismatch_score=self.mismatch_score,
            open_gap_score=self.open_gap_score,
            extend_gap_score=self.extend_gap_score,
            wildcard="N",
        )
        if mode == "global":
            aligner.end_gap_score = 0.0
        return aligner

    def competitor_score_fraction(self) -> float:
        """Fraction of the best score below which a reference cannot affect the verdict.

        A reference covering ``min_query_coverage`` percent of a query of L clear bases at
        identity p (within ``min_margin`` of a call, so p >= ``min_identity`` -
        ``min_margin``) scores at least that many columns times ``match * p + worst * (1 - p)``,
        ``worst`` being the cheaper of a mismatch and a one-column gap, while no alignment
        scores above ``match * L``. References scoring less are not given an identity.
        """
        identity = (self.min_identity - self.min_margin) / 100.0
        worst = min(self.mismatch_score, self.open_gap_score)
        per_column = self.match_score * identity + worst * (1.0 - identity)
        return max(0.0, self.min_query_coverage / 100.0 * per_column / self.match_score)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpeciesHit:
    """The best alignment of a query to one species' references (the most identical of those
    covering enough of the query).

    Attributes
    ----------
    species, reference_id : str
    score : float
        Local alignment score.
    identity : float
        Percent identical of the aligned columns (ambiguous-base columns left out).
    aligned_length : int
        Aligned columns: matches, mismatches and internal gaps, less ambiguous-base columns.
    identical : int
        Identical columns.
    strand : str
        ``'+'`` or ``'-'`` (the query's reverse complement aligned).
    query_start, query_end : int
        0-based, end-exclusive, on the aligned strand of the query.
    reference_start, reference_end : int
        0-based, end-exclusive, on the reference.
    query_coverage : float
        Percent of the query's bases within the alignment (``query_start`` to ``query_end``).
    """

    species: str
    reference_id: str
    score: float
    identity: float
    aligned_length: int
    identical: int
    strand: str
    query_start: int
    query_end: int
    reference_start: int
    reference_end: int
    query_coverage: float


@dataclass(frozen=True)
class SpanDivergence:
    """The span check of a hit: could a relative of the best species differ this little there?

    Attributes
    ----------
    reference_id : str
        The best reference, whose columns ``reference_start`` to ``reference_end`` the span is.
    reference_start, reference_end : int
    neighbour, neighbour_reference : str
        Species and record of the nearest other-species reference over the whole marker ('' if
        the set holds none outside the best species' group).
    neighbour_columns : int
        Span columns the neighbour's alignment covers (ambiguous bases left out).
    neighbour_divergence : float or None
        Percent of those columns at which the neighbour differs (``None`` when it covers less
        than half of the span, or there is no neighbour).
    marker_divergence : float or None
        Percent of sites at which the neighbour differs over the whole marker.
    expected : float
        Percent divergence over the span expected of the closest relative, in the set or not:
        ``neighbour_divergence``, scaled by ``sister_divergence / marker_divergence`` when the
        neighbour is further than ``sister_divergence`` over the whole marker;
        ``sister_divergence`` itself when no neighbour covers the span.
    query_columns, query_differences : int
        The hit's aligned columns, and those not identical.
    probability : float
        Probability that a relative ``expected`` percent apart over these columns differs at
        no more than ``query_differences`` of them (Poisson with mean ``query_columns *
        expected / 100``). A call needs it at most ``max_sister_probability``.
    """

    reference_id: str
    reference_start: int
    reference_end: int
    neighbour: str
    neighbour_reference: str
    neighbour_columns: int
    neighbour_divergence: float | None
    marker_divergence: float | None
    expected: float
    query_columns: int
    query_differences: int
    probability: float


def poisson_cdf(count: int, mean: float) -> float:
    """P(K <= ``count``) for K Poisson-distributed with ``mean`` (summed in log space).

    >>> round(poisson_cdf(3, 7.5), 4)
    0.0591
    """
    if count < 0:
        return 0.0
    if mean <= 0.0:
        return 1.0
    i = np.arange(count + 1, dtype=np.float64)
    log_factorials = np.concatenate(([0.0], np.cumsum(np.log(i[1:]))))
    log_terms = i * np.log(mean) - mean - log_factorials
    top = log_terms.max()
    return float(min(1.0, np.exp(top) * np.exp(log_terms - top).sum()))


@dataclass(frozen=True)
class SpeciesResult:
    """What a query is, with the evidence and what it was compared against.

    Attributes
    ----------
    query_id, source : str
    query_length : int
        Bases aligned (after trimming).
    read_length, trim_start : int
        The untrimmed read's length and where the aligned part starts in it.
    verdict : str
        ``'identified'``, ``'ambiguous'`` or ``'no match'``.
    call : str
        What is reported: a species, a group (``'cattle'``), or '' when nothing is called.
    call_level : str
        ``'species'``, ``'group'`` or ''.
    reason : str
        Why, in one line.
    best : SpeciesHit or None
        The best species: the most identical among references covering enough of the query
        (``None`` when the query was too short to align).
    runner_up : SpeciesHit or None
        The closest competing species: the most identical other species (outside the best's
        group when it has one).
    margin : float or None
        ``best.identity - runner_up.identity`` in percentage points.
    span : SpanDivergence or None
        The span check of the best hit (``None`` when nothing aligned).
    candidates : tuple of str
        What the call is or, when ambiguous, the species or groups within the margin.
    marker, reference_set, reference_set_version, reference_set_hash : str
    parameters : IdentificationParameters
    """

    query_id: str
    source: str
    query_length: int
    read_length: int
    trim_start: int
    verdict: str
    call: str
    call_level: str
    reason: str
    best: SpeciesHit | None
    runner_up: SpeciesHit | None
    margin: float | None
    span: SpanDivergence | None
    candidates: tuple[str, ...]
    marker: str
    reference_set: str
    reference_set_version: str
    reference_set_hash: str
    parameters: IdentificationParameters

    def as_row(self) -> dict:
        """A flat dict for CSV output (percentages and margin rounded to 0.01)."""
        best, runner, span = self.best, self.runner_up, self.span
        return {
            "query": self.query_id,
            "source": self.source,
            "verdict": self.verdict,
            "call": self.call,
            "call_level": self.call_level,
            "species": best.species if best else "",
            "identity": round(best.identity, 2) if best else "",
            "query_coverage": round(best.query_coverage, 2) if best else "",
            "aligned_length": best.aligned_length if best else "",
            "strand": best.strand if best else "",
            "reference": best.reference_id if best else "",
            "reference_start": best.reference_start if best else "",
            "reference_end": best.reference_end if best else "",
            "runner_up": runner.species if runner else "",
            "runner_up_identity": round(runner.identity, 2) if runner else "",
            "margin": _rounded(self.margin),
            "span_neighbour": span.neighbour if span else "",
            "span_neighbour_divergence": _rounded(span.neighbour_divergence if span else None),
            "span_expected_divergence": round(span.expected, 2) if span else "",
            "sister_probability": f"{span.probability:.3g}" if span else "",
            "candidates": ";".join(self.candidates),
            "reason": self.reason,
            "query_length": self.query_length,
            "read_length": self.read_length,
            "trim_start": self.trim_start,
            "marker": self.marker,
            "reference_set": self.reference_set,
            "reference_set_version": self.reference_set_version,
            "reference_set_hash": self.reference_set_hash,
            "min_identity": self.parameters.min_identity,
            "min_margin": self.parameters.min_margin,
            "min_aligned_length": self.parameters.min_aligned_length,
            "min_query_coverage": self.parameters.min_query_coverage,
            "sister_divergence": self.parameters.sister_divergence,
            "max_sister_probability": self.parameters.max_sister_probability,
        }


def _rounded(value: float | None) -> float | str:
    return "" if value is None else round(value, 2)


RESULT_COLUMNS = [
    "query", "source", "verdict", "call", "call_level", "species", "identity",
    "query_coverage", "aligned_length", "strand", "reference", "reference_start",
    "reference_end", "runner_up", "runner_up_identity", "margin", "span_neighbour",
    "span_neighbour_divergence", "span_expected_divergence", "sister_probability",
    "candidates", "reason", "query_length", "read_length", "trim_start", "marker",
    "reference_set", "reference_set_version", "reference_set_hash", "min_identity",
    "min_margin", "min_aligned_length", "min_query_coverage", "sister_divergence",
    "max_sister_probability",
]


def judge(
    hits: Sequence[SpeciesHit],
    parameters: IdentificationParameters,
    groups: Mapping[str, str],
    span: SpanDivergence | None = None,
) -> tuple[str, str, str, str, SpeciesHit | None, float | None, tuple[str, ...]]:
    """The verdict on a query from its species hits.

    Parameters
    ----------
    hits
        One per species, best first: the most identical of those covering at least
        ``parameters.min_query_coverage`` percent of the query (the caller's order is kept).
    parameters
    groups
        Species -> group.
    span
        The span check of ``hits[0]``; ``None`` leaves it out.

    Returns
    -------
    verdict, call, call_level, reason : str
    runner_up : SpeciesHit or None
    margin : float or None
    candidates : tuple of str
    """
    if not hits:
        return "no match", "", "", "nothing aligned", None, None, ()
    best = hits[0]
    group = groups.get(best.species)
    others = [h for h in hits[1:] if group is None or groups.get(h.species) != group]
    runner_up = max(others, key=lambda h: h.identity, default=None)
    margin = None if runner_up is None else best.identity - runner_up.identity
    if best.query_coverage < parameters.min_query_coverage:
        return ("no match", "", "", f"alignments cover at most {best.query_coverage:.1f}% of "
                f"the query, below {parameters.min_query_coverage:g}%", runner_up, margin, ())
    if best.aligned_length < parameters.min_aligned_length:
        return ("no match", "", "", f"aligned length {best.aligned_length} is below "
                f"{parameters.min_aligned_length}", runner_up, margin, ())
    if best.identity < parameters.min_identity:
        return ("no match", "", "", f"{best.identity:.2f}% identical to {best.species}, below "
                f"{parameters.min_identity:g}%", runner_up, margin, ())
    label = group or best.species
    level = "group" if group else "species"
    if margin is not None and margin < parameters.min_margin:
        close = [h for h in hits if best.identity - h.identity < parameters.min_margin]
        candidates = tuple(dict.fromkeys(groups.get(h.species, h.species) for h in close))
        reason = (f"{runner_up.species} is within {parameters.min_margin:g} points "
                  f"({best.identity:.2f}% vs {runner_up.identity:.2f}%)")
        return "ambiguous", "", "", reason, runner_up, margin, candidates
    if span is not None and span.probability > parameters.max_sister_probability:
        candidates = tuple(dict.fromkeys(
            [label] + ([groups.get(span.neighbour, span.neighbour)] if span.neighbour else [])))
        reason = (f"{span.query_differences} of {span.query_columns} columns differ from "
                  f"{best.species}, and a relative {span.expected:.2f}% apart over reference "
                  f"columns {span.reference_start}-{span.reference_end} would differ at as few "
                  f"with probability {span.probability:.3f}: too conserved a span to call")
        return "ambiguous", "", "", reason, runner_up, margin, candidates
    reason = (f"{best.identity:.2f}% identical over {best.aligned_length} columns"
              + ("" if runner_up is None else
                 f"; {margin:.2f} points ahead of {runner_up.species}")
              + ("" if span is None else
                 f"; a relative {span.expected:.2f}% apart over the span would differ as little "
                 f"with probability {span.probability:.1e}"))
    return "identified", label, level, reason, runner_up, margin, (label,)


# ------------------------------------------------------------------------------ identification
@dataclass(frozen=True, eq=False)
class _Reference:
    """A reference prepared for searching: base codes and k-mer index."""

    record: BarcodeReference
    codes: np.ndarray
    kmer_values: np.ndarray
    kmer_starts: np.ndarray


@dataclass(frozen=True)
class _Scored:
    """A query strand scored against one reference (window in reference coordinates)."""

    score: float
    reference: int
    strand: str
    window_start: int
    window_end: int
    diagonal: int | None


@dataclass(frozen=True, eq=False)
class _Neighbour:
    """A reference's nearest other-species reference, aligned to it.

    ``differences`` has one entry per base of the reference: 1 where the neighbour differs
    (another base, a deletion, or an insertion after it), 0 where it has the same base, -1
    where it is not compared (beyond the neighbour's ends, or an ambiguous base).
    """

    reference: int | None
    differences: np.ndarray | None
    marker_divergence: float | None


def _difference_profile(codes: np.ndarray, other: np.ndarray, target_blocks: np.ndarray,
                        other_blocks: np.ndarray) -> np.ndarray:
    """Per-base differences of ``codes`` from ``other`` (see :class:`_Neighbour`).

    ``target_blocks`` and ``other_blocks`` are an alignment's gapless blocks (Biopython's
    ``alignment.aligned``), shape (blocks, 2), start and end on each sequence.
    """
    differences = np.full(len(codes), -1, dtype=np.int8)
    for (t_start, t_end), (o_start, o_end) in zip(target_blocks, other_blocks, strict=True):
        t, o = codes[t_start:t_end], other[o_start:o_end]
        differences[t_start:t_end] = np.where((t < kernels.AMBIGUOUS) & (o < kernels.AMBIGUOUS),
                                              (t != o).astype(np.int8), -1)
    for block in range(len(target_blocks) - 1):
        gap_start, gap_end = target_blocks[block][1], target_blocks[block + 1][0]
        differences[gap_start:gap_end] = 1  # bases the other sequence lacks
        if other_blocks[block + 1][0] > other_blocks[block][1]:
            differences[gap_start - 1] = 1  # bases the other sequence adds after this one
    return differences


class SpeciesIdentifier:
    """Identifies barcode reads against the references of one marker in a :class:`BarcodeSet`.

    Parameters
    ----------
    barcode_set : BarcodeSet, optional
        Default: :func:`default_barcode_set`.
    parameters : IdentificationParameters, optional

    Raises
    ------
    ValueError
        When the set has no references of ``parameters.marker``.
    """

    def __init__(self, barcode_set: BarcodeSet | None = None,
                 parameters: IdentificationParameters | None = None) -> None:
        self.barcode_set = barcode_set if barcode_set is not None else default_barcode_set()
        self.parameters = parameters if parameters is not None else IdentificationParameters()
        self.marker_references = self.barcode_set.references_for(self.parameters.marker)
        self._references = []
        for record in self.marker_references:
            codes = kernels.encode_bases(record.sequence)
            values, starts = kernels.kmer_index(codes, SEED_K)
            self._references.append(_Reference(record, codes, values, starts))
        self._index = {r.record_id: i for i, r in enumerate(self.marker_references)}
        self._aligner = self.parameters.aligner()
        self._reference_aligner = self.parameters.aligner("global")
        self._neighbours: dict[int, _Neighbour] = {}

    # -------------------------------------------------------------- one query
    def identify(self, query: BarcodeQuery) -> SpeciesResult:
        """Identify one query (see the module docstring for the verdicts)."""
        if len(query.sequence) < self.parameters.min_aligned_length:
            return self._result(
                query, "no match", "", "",
                f"query has {len(query.sequence)} bases; at least "
                f"{self.parameters.min_aligned_length} are needed",
                None, None, None, None, (),
            )
        hits = self.species_hits(query.sequence)
        span = self.span_divergence(hits[0]) if hits else None
        verdict, call, level, reason, runner_up, margin, candidates = judge(
            hits, self.parameters, self.barcode_set.groups, span
        )
        return self._result(query, verdict, call, level, reason, hits[0] if hits else None,
                            runner_up, margin, span, candidates)

    def species_hits(self, sequence: str) -> list[SpeciesHit]:
        """Hits of a cleaned query sequence per competing species, best first.

        Per species, the most identical of its references whose alignment covers at least
        ``min_query_coverage`` percent of the query (else the most identical of the rest).
        Species are ordered the same way: those covering enough of the query first, by
        identity, then score. Only references scoring at least
        :meth:`IdentificationParameters.competitor_score_fraction` of the best compete.
        """
        from Bio.Seq import reverse_complement

        strands = {"+": sequence, "-": reverse_complement(sequence)}
        codes = {s: kernels.encode_bases(text) for s, text in strands.items()}
        anchors = {s: self._anchors(codes[s]) for s in strands}
        best_seeds = {s: max((support for _, support in anchors[s]), default=0)
                      for s in strands}
        chosen = [s for s in strands
                  if best_seeds[s] >= MIN_STRAND_SEEDS
                  and best_seeds[s] >= STRAND_RATIO * best_seeds[_other(s)]]
        per_reference: dict[int, _Scored] = {}
        for strand in chosen or strands:
            for index in range(len(self._references)):
                candidate = self._score(strands[strand], strand, index, anchors[strand][index])
                if index not in per_reference or candidate.score > per_reference[index].score:
                    per_reference[index] = candidate
        top = max(c.score for c in per_reference.values())
        if top <= 0:
            return []
        floor = self.parameters.competitor_score_fraction() * top
        per_species: dict[str, SpeciesHit] = {}
        for candidate in per_reference.values():
            if candidate.score < floor:
                continue
            hit = self._hit(candidate, strands[candidate.strand], codes[candidate.strand])
            kept = per_species.get(hit.species)
            if kept is None or self._rank(hit) < self._rank(kept):
                per_species[hit.species] = hit
        return sorted(per_species.values(), key=lambda h: (self._rank(h), h.species))

    def _rank(self, hit: SpeciesHit) -> tuple[bool, float, float]:
        """Sort key, best first: covering enough of the query, then identity, then score."""
        return (hit.query_coverage < self.parameters.min_query_coverage, -hit.identity,
                -hit.score)

    def _anchors(self, codes: np.ndarray) -> list[tuple[int, int]]:
        """(diagonal, seed support) of a query strand on each reference."""
        values, starts = kernels.kmer_codes(codes, SEED_K)
        return [kernels.seed_diagonal(values, starts, r.kmer_values, r.kmer_starts,
                                      SEED_TOLERANCE) for r in self._references]

    def _score(self, sequence: str, strand: str, index: int,
               anchor: tuple[int, int]) -> _Scored:
        reference = self._references[index].record.sequence
        diagonal, support = anchor
        if support >= MIN_ANCHOR_SEEDS:
            start = max(0, diagonal - WINDOW_PAD)
            end = min(len(reference), diagonal + len(sequence) + WINDOW_PAD)
        else:
            start, end, diagonal = 0, len(reference), None
        if end - start < 1:
            return _Scored(0.0, index, strand, start, end, diagonal)
        score = float(self._aligner.score(reference[start:end], sequence))
        return _Scored(score, index, strand, start, end, diagonal)

    def _hit(self, scored: _Scored, sequence: str, codes: np.ndarray) -> SpeciesHit:
        """The hit of a scored reference, with identity from an optimal alignment."""
        reference = self._references[scored.reference]
        p = self.parameters
        if scored.diagonal is not None:
            # When the best ungapped run on the seed diagonal reaches the optimal score it is
            # an optimal alignment, and no traceback is needed.
            column_scores, identical, offset = kernels.diagonal_scores(
                reference.codes, codes, scored.diagonal, p.match_score, p.mismatch_score
            )
            total, start, end = kernels.best_segment(column_scores)
            if abs(total - scored.score) <= 1e-9 * max(1.0, abs(scored.score)):
                ambiguous = int((column_scores[start:end] == 0).sum())
                same = int(identical[start:end].sum())
                return self._make_hit(
                    reference.record, scored, same, end - start - ambiguous, len(sequence),
                    offset + start, offset + end,
                    offset + start + scored.diagonal, offset + end + scored.diagonal,
                )
        window = reference.record.sequence[scored.window_start : scored.window_end]
        alignment = self._aligner.align(window, sequence)[0]
        blocks = alignment.aligned
        same = columns = 0
        for (t_start, t_end), (q_start, q_end) in zip(blocks[0], blocks[1], strict=True):
            t = reference.codes[scored.window_start + t_start : scored.window_start + t_end]
            q = codes[q_start:q_end]
            clear = (t < kernels.AMBIGUOUS) & (q < kernels.AMBIGUOUS)
            same += int((clear & (t == q)).sum())
            columns += int(clear.sum())
        gaps = int((blocks[0][1:, 0] - blocks[0][:-1, 1]).sum()
                   + (blocks[1][1:, 0] - blocks[1][:-1, 1]).sum())
        return self._make_hit(
            reference.record, scored, same, columns + gaps, len(sequence),
            int(blocks[1][0, 0]), int(blocks[1][-1, 1]),
            scored.window_start + int(blocks[0][0, 0]),
            scored.window_start + int(blocks[0][-1, 1]),
        )

    @staticmethod
    def _make_hit(record: BarcodeReference, scored: _Scored, identical: int, columns: int,
                  query_length: int, query_start: int, query_end: int, reference_start: int,
                  reference_end: int) -> SpeciesHit:
        return SpeciesHit(
            species=record.species,
            reference_id=record.record_id,
            score=scored.score,
            identity=100.0 * identical / columns if columns else 0.0,
            aligned_length=columns,
            identical=identical,
            strand=scored.strand,
            query_start=query_start,
            query_end=query_end,
            reference_start=reference_start,
            reference_end=reference_end,
            query_coverage=100.0 * (query_end - query_start) / query_length,
        )

    # -------------------------------------------------------------- span check
    def span_divergence(self, hit: SpeciesHit) -> SpanDivergence:
        """The span check of ``hit`` (module docstring, :class:`SpanDivergence`)."""
        sister = self.parameters.sister_divergence
        neighbour = self._neighbour(self._index[hit.reference_id])
        start, end = hit.reference_start, hit.reference_end
        species = reference_id = ""
        columns, observed, expected = 0, None, sister
        if neighbour.reference is not None:
            record = self._references[neighbour.reference].record
            species, reference_id = record.species, record.record_id
            window = neighbour.differences[start:end]
            columns = int((window >= 0).sum())
            if columns and 2 * columns >= end - start:
                observed = 100.0 * int((window == 1).sum()) / columns
                marker = neighbour.marker_divergence
                expected = observed if marker <= sister else observed * sister / marker
        differences = hit.aligned_length - hit.identical
        probability = poisson_cdf(differences, hit.aligned_length * expected / 100.0)
        return SpanDivergence(hit.reference_id, start, end, species, reference_id, columns,
                              observed, neighbour.marker_divergence, expected,
                              hit.aligned_length, differences, probability)

    def _neighbour(self, index: int) -> _Neighbour:
        """The nearest reference, over the whole marker, of another species (and group)."""
        if index in self._neighbours:
            return self._neighbours[index]
        target = self._references[index]
        label = self.barcode_set.label(target.record.species)
        others = [j for j, r in enumerate(self._references)
                  if self.barcode_set.label(r.record.species) != label]

        def shared_kmers(j: int) -> float:
            values = self._references[j].kmer_values
            shared = np.intersect1d(target.kmer_values, values, assume_unique=True).size
            return shared / max(1, min(len(values), len(target.kmer_values)))

        nearest = _Neighbour(None, None, None)
        for j in sorted(others, key=lambda j: -shared_kmers(j))[:NEIGHBOUR_CANDIDATES]:
            differences = self._difference_profile(index, j)
            compared = int((differences >= 0).sum())
            # Free end gaps let unrelated sequences "align" over a few chance matches.
            if compared < self.parameters.min_aligned_length:
                continue
            divergence = 100.0 * int((differences == 1).sum()) / compared
            if nearest.reference is None or divergence < nearest.marker_divergence:
                nearest = _Neighbour(j, differences, divergence)
        self._neighbours[index] = nearest
        return nearest

    def _difference_profile(self, index: int, other: int) -> np.ndarray:
        """Reference ``index``'s per-base differences from reference ``other``, aligned
        globally with free end gaps (:class:`_Neighbour`)."""
        target, partner = self._references[index], self._references[other]
        p = self.parameters
        optimal = self._reference_aligner.score(target.record.sequence, partner.record.sequence)
        values, starts = kernels.kmer_codes(partner.codes, SEED_K)
        diagonal, _ = kernels.seed_diagonal(values, starts, target.kmer_values,
                                            target.kmer_starts, SEED_TOLERANCE)
        column_scores, _, offset = kernels.diagonal_scores(
            target.codes, partner.codes, diagonal, p.match_score, p.mismatch_score)
        # Free end gaps: the ungapped overlap on the seed diagonal is an alignment, and when
        # it reaches the optimal score no traceback is needed.
        if len(column_scores) and abs(column_scores.sum() - optimal) <= 1e-9 * abs(optimal):
            span = np.array([[offset + diagonal, offset + diagonal + len(column_scores)]])
            return _difference_profile(target.codes, partner.codes, span,
                                       np.array([[offset, offset + len(column_scores)]]))
        blocks = self._reference_aligner.align(target.record.sequence,
                                               partner.record.sequence)[0].aligned
        return _difference_profile(target.codes, partner.codes, blocks[0], blocks[1])

    def _result(self, query: BarcodeQuery, verdict: str, call: str, level: str, reason: str,
                best: SpeciesHit | None, runner_up: SpeciesHit | None, margin: float | None,
                span: SpanDivergence | None, candidates: tuple[str, ...]) -> SpeciesResult:
        return SpeciesResult(
            query_id=query.query_id,
            source=query.source,
            query_length=len(query.sequence),
            read_length=query.read_length,
            trim_start=query.trim_start,
            verdict=verdict,
            call=call,
            call_level=level,
            reason=reason,
            best=best,
            runner_up=runner_up,
            margin=margin,
            span=span,
            candidates=candidates,
            marker=self.parameters.marker,
            reference_set=self.barcode_set.name,
            reference_set_version=self.barcode_set.version,
            reference_set_hash=self.barcode_set.content_hash,
            parameters=self.parameters,
        )

    # -------------------------------------------------------------- batches
    def identify_many(
        self,
        queries: Iterable[BarcodeQuery],
        *,
        workers: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> list[SpeciesResult]:
        """Identify many queries, in order, on ``workers`` processes (default: all cores).

        Batches under :data:`PARALLEL_MIN_QUERIES` queries, or ``workers=1``, run in this
        process. ``progress`` is called with the number of queries finished since its last
        call.
        """
        queries = list(queries)
        workers = available_cores() if workers is None else workers
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers == 1 or len(queries) < PARALLEL_MIN_QUERIES:
            results = []
            for query in queries:
                results.append(self.identify(query))
                if progress is not None:
                    progress(1)
            return results
        # A few chunks per worker balance the load; each chunk is one round trip.
        size = max(1, -(-len(queries) // (workers * 4)))
        chunks = [queries[i : i + size] for i in range(0, len(queries), size)]
        methods = multiprocessing.get_all_start_methods()
        # forkserver/spawn: workers never inherit this process's threads or locks.
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                              else "spawn")
        results = []
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(self.barcode_set, self.parameters)) as pool:
            for chunk_results in pool.map(_identify_chunk, chunks):
                results.extend(chunk_results)
                if progress is not None:
                    progress(len(chunk_results))
        return results


def _other(strand: str) -> str:
    return "-" if strand == "+" else "+"


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_worker_identifier: SpeciesIdentifier | None = None


def _start_worker(barcode_set: BarcodeSet, parameters: IdentificationParameters) -> None:
    global _worker_identifier
    _worker_identifier = SpeciesIdentifier(barcode_set, parameters)


def _identify_chunk(queries: list[BarcodeQuery]) -> list[SpeciesResult]:
    return [_worker_identifier.identify(query) for query in queries]


def identify_species(
    queries: BarcodeQuery | Iterable[BarcodeQuery],
    barcode_set: BarcodeSet | None = None,
    parameters: IdentificationParameters | None = None,
    *,
    workers: int | None = None,
) -> list[SpeciesResult]:
    """Identify queries against a barcode set (default: the bundled one); one result each."""
    if isinstance(queries, BarcodeQuery):
        queries = [queries]
    return SpeciesIdentifier(barcode_set, parameters).identify_many(queries, workers=workers)
