"""Species identification from mitochondrial barcodes (DESIGN 5.6).

Before any genotype is compared, a lab shows what an item is: which elephant (or legal
mammoth ivory), which rhino, or a fake (cattle or water-buffalo horn, hippo tooth). A barcode
read (FASTA, FASTQ, or an ABI trace trimmed by its quality values) is aligned with Biopython's
:class:`~Bio.Align.PairwiseAligner` to every reference of one marker in a
:class:`BarcodeSet`, on both strands, and judged:

``identified``
    the best species is at least ``min_identity`` percent identical over at least
    ``min_aligned_length`` columns, and every other species is at least ``min_margin``
    percentage points less identical. Species of one group (``Bos taurus`` and ``Bos indicus``:
    mitochondrial DNA cannot reliably tell them apart) are called as the group (``cattle``),
    and the margin is then taken to the best species outside the group.
``ambiguous``
    good enough a match, but another species (or group) is within the margin.
``no match``
    below the identity threshold, too short an alignment, or too short a query: the species is
    probably not in the set.

Alignments are local (a fragment of a gene, or a read running past its ends, aligns as well as
the whole gene), with the BLASTN scores (match +2, mismatch -3, gap of length L costs 5 + 2L),
under which a local alignment only extends through stretches more than 60% identical, so its
percent identity is meaningful. Identity is counted over the aligned columns: identical
columns / (matched and mismatched columns + internal gap columns), leaving out columns with an
ambiguous base (``N``, IUPAC codes), which score 0.

Speed: each query's k-mers (k = :data:`SEED_K`) pick the strand and, per reference, the
diagonal the query lies on; every reference is then scored (Biopython, score only) against a
window of the reference around that diagonal rather than all of it, and only species scoring at
least :data:`COMPETITOR_SCORE_FRACTION` of the best get an identity (from the best ungapped
segment on the diagonal when that reaches the optimal score, otherwise from a full Biopython
alignment). When the k-mers do not settle the strand, both strands are scored; a reference with
too few seeds is scored whole. Batches run on worker processes (Biopython's aligner holds the
GIL, so threads do not scale).

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
# Species scoring below this fraction of the best score get no identity and cannot compete.
# Under the scores used here an alignment at identity p over L columns scores at least
# L(9p - 7) (each non-identical column costs at most an opened gap, 7), and the best at most
# 2 L_best, so any species within a few points of a >= 96% best and aligned over more than
# 61% of the best's length always scores above half the best.
COMPETITOR_SCORE_FRACTION = 0.5
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
    match_score, mismatch_score, open_gap_score, extend_gap_score : float
        Biopython's scores: ``open_gap_score`` is the score of a gap's first column,
        ``extend_gap_score`` of each further one (BLASTN: a gap of length L costs 5 + 2L).
    """

    marker: str = "cytb"
    min_identity: float = 97.0
    min_margin: float = 1.0
    min_aligned_length: int = 100
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
        if self.match_score <= 0 or self.mismatch_score >= 0:
            raise ValueError("match_score must be positive and mismatch_score negative")
        if not self.open_gap_score <= self.extend_gap_score < 0:
            raise ValueError("gap scores must be negative, opening no better than extending")

    def aligner(self):
        """A Biopython local :class:`~Bio.Align.PairwiseAligner` with these scores."""
        from Bio.Align import PairwiseAligner

        return PairwiseAligner(
            mode="local",
            match_score=self.match_score,
            mismatch_score=self.mismatch_score,
            open_gap_score=self.open_gap_score,
            extend_gap_score=self.extend_gap_score,
            wildcard="N",
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpeciesHit:
    """The best alignment of a query to one species' references.

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
        The best-scoring species (``None`` when the query was too short to align).
    runner_up : SpeciesHit or None
        The closest competing species: the most identical other species (outside the best's
        group when it has one).
    margin : float or None
        ``best.identity - runner_up.identity`` in percentage points.
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
    candidates: tuple[str, ...]
    marker: str
    reference_set: str
    reference_set_version: str
    reference_set_hash: str
    parameters: IdentificationParameters

    def as_row(self) -> dict:
        """A flat dict for CSV output (identity and margin rounded to 0.01)."""
        best, runner = self.best, self.runner_up
        return {
            "query": self.query_id,
            "source": self.source,
            "verdict": self.verdict,
            "call": self.call,
            "call_level": self.call_level,
            "species": best.species if best else "",
            "identity": round(best.identity, 2) if best else "",
            "aligned_length": best.aligned_length if best else "",
            "strand": best.strand if best else "",
            "reference": best.reference_id if best else "",
            "reference_start": best.reference_start if best else "",
            "reference_end": best.reference_end if best else "",
            "runner_up": runner.species if runner else "",
            "runner_up_identity": round(runner.identity, 2) if runner else "",
            "margin": round(self.margin, 2) if self.margin is not None else "",
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
        }


RESULT_COLUMNS = [
    "query", "source", "verdict", "call", "call_level", "species", "identity",
    "aligned_length", "strand", "reference", "reference_start", "reference_end", "runner_up",
    "runner_up_identity", "margin", "candidates", "reason", "query_length", "read_length",
    "trim_start", "marker", "reference_set", "reference_set_version", "reference_set_hash",
    "min_identity", "min_margin", "min_aligned_length",
]


def judge(
    hits: Sequence[SpeciesHit],
    parameters: IdentificationParameters,
    groups: Mapping[str, str],
) -> tuple[str, str, str, str, SpeciesHit | None, float | None, tuple[str, ...]]:
    """The verdict on a query from its species hits.

    Parameters
    ----------
    hits
        One per species, best first (highest score; the caller's order is kept).
    parameters
    groups
        Species -> group.

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
    if best.aligned_length < parameters.min_aligned_length:
        return ("no match", "", "", f"aligned length {best.aligned_length} is below "
                f"{parameters.min_aligned_length}", runner_up, margin, ())
    if best.identity < parameters.min_identity:
        return ("no match", "", "", f"{best.identity:.2f}% identical to {best.species}, below "
                f"{parameters.min_identity:g}%", runner_up, margin, ())
    label = group or best.species
    level = "group" if group else "species"
    if margin is None or margin >= parameters.min_margin:
        reason = (f"{best.identity:.2f}% identical over {best.aligned_length} columns"
                  + ("" if runner_up is None else
                     f"; {margin:.2f} points ahead of {runner_up.species}"))
        return "identified", label, level, reason, runner_up, margin, (label,)
    close = [h for h in hits if best.identity - h.identity < parameters.min_margin]
    candidates = tuple(dict.fromkeys(groups.get(h.species, h.species) for h in close))
    reason = (f"{runner_up.species} is within {parameters.min_margin:g} points "
              f"({best.identity:.2f}% vs {runner_up.identity:.2f}%)")
    return "ambiguous", "", "", reason, runner_up, margin, candidates


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
        self._aligner = self.parameters.aligner()

    # -------------------------------------------------------------- one query
    def identify(self, query: BarcodeQuery) -> SpeciesResult:
        """Identify one query (see the module docstring for the verdicts)."""
        if len(query.sequence) < self.parameters.min_aligned_length:
            return self._result(
                query, "no match", "", "",
                f"query has {len(query.sequence)} bases; at least "
                f"{self.parameters.min_aligned_length} are needed",
                None, None, None, (),
            )
        hits = self.species_hits(query.sequence)
        verdict, call, level, reason, runner_up, margin, candidates = judge(
            hits, self.parameters, self.barcode_set.groups
        )
        return self._result(query, verdict, call, level, reason, hits[0] if hits else None,
                            runner_up, margin, candidates)

    def species_hits(self, sequence: str) -> list[SpeciesHit]:
        """Hits of a cleaned query sequence per competing species, best score first.

        Only species scoring at least :data:`COMPETITOR_SCORE_FRACTION` of the best are listed
        (with their identity); ties in score go to the higher identity.
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
        scored = [self._score(strands[s], s, index, anchors[s][index])
                  for s in (chosen or strands)
                  for index in range(len(self._references))]
        per_species: dict[str, _Scored] = {}
        for candidate in scored:
            species = self._references[candidate.reference].record.species
            if species not in per_species or candidate.score > per_species[species].score:
                per_species[species] = candidate
        top = max(c.score for c in per_species.values())
        if top <= 0:
            return []
        hits = [self._hit(c, strands[c.strand], codes[c.strand])
                for c in per_species.values()
                if c.score >= COMPETITOR_SCORE_FRACTION * top]
        return sorted(hits, key=lambda h: (-h.score, -h.identity, h.species))

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
                    reference.record, scored, same, end - start - ambiguous,
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
            reference.record, scored, same, columns + gaps,
            int(blocks[1][0, 0]), int(blocks[1][-1, 1]),
            scored.window_start + int(blocks[0][0, 0]),
            scored.window_start + int(blocks[0][-1, 1]),
        )

    @staticmethod
    def _make_hit(record: BarcodeReference, scored: _Scored, identical: int, columns: int,
                  query_start: int, query_end: int, reference_start: int,
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
        )

    def _result(self, query: BarcodeQuery, verdict: str, call: str, level: str, reason: str,
                best: SpeciesHit | None, runner_up: SpeciesHit | None, margin: float | None,
                candidates: tuple[str, ...]) -> SpeciesResult:
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
