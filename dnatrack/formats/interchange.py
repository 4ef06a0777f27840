"""Interchange formats of forensic DNA databases, for animal STR profiles: the CODIS-style XML
import layout and the allele fields of the ANSI/NIST-ITL 1-2011 Type-18 DNA record.

Both name loci and alleles by a *kit mapping* (:class:`KitMapping`), a table per marker panel
kept as package data in ``reference_data/exchange_kits/<panel>.json`` and described in that
folder's README: panel locus → exchange locus name and Type-18 locus reference code, and the
allele naming rule of the locus: ``"bp"`` (the allele is named by its size in base pairs, as the
panel types it) or ``"repeats"`` (named by repeat number, ``(size - offset_bp) / repeat_unit``,
with a remainder written ISFG-style as ``n.r``). A locus the mapping does not list, or an allele
the rule cannot name (below the offset, wider than the format allows, outside the panel's range),
is refused with an error naming the profile and the locus; nothing is written or read partly.

CODIS-style XML (``codis-xml``)
    The element layout of the CODIS import file (CMF)::

        <CODISImportFile xmlns="urn:CODISImportFile-schema">
          <HEADERVERSION/> <MESSAGETYPE>Import</MESSAGETYPE> <DESTINATIONORI/> <SOURCELAB/>
          <SUBMITBYUSERID/> <SUBMITDATETIME/>
          <SPECIMEN>
            <SPECIMENID>opaque reference</SPECIMENID>
            <SPECIMENCATEGORY>Other</SPECIMENCATEGORY>
            <LOCUS KIT="kit name">
              <LOCUSNAME>FH67</LOCUSNAME>
              <ALLELE><ALLELEVALUE>150</ALLELEVALUE></ALLELE>   one per allele; a homozygote
              <ALLELE><ALLELEVALUE>154</ALLELEVALUE></ALLELE>   has one
            </LOCUS> ...
          </SPECIMEN> ...
        </CODISImportFile>

    Only these elements are written; the CMF's administrative elements and attributes (case
    ids, batch ids, reading analysts, partial-profile flags) are not, and files are not checked
    against the FBI's schema, which is not public: check a file against the receiving system
    before relying on it. Reading accepts the namespace or none, ignores other elements, and
    refuses a kit other than the mapping's. XML is parsed by :mod:`defusedxml` with document
    type declarations forbidden (no entities, so no external-entity reads or entity expansion
    bombs) and after a size check, as a stream: one specimen is held at a time,
    nesting deeper than 8 levels or a specimen of more than 5,000 elements is refused.

ANSI/NIST-ITL Type-18 (``type18``)
    The traditional tagged-field encoding: records end with FS (0x1C), fields are separated by
    GS (0x1D), subfields by RS (0x1E) and information items by US (0x1F); each field is
    ``<record type>.<field number, 3 digits>:<value>`` and the first field of each record is its
    length in bytes (LEN). A transaction is a Type-1 record (fields 1.001 LEN, 1.002 VER
    ``0500``, 1.003 CNT, 1.004 TOT, 1.005 DAT, 1.007 DAI, 1.008 ORI, 1.009 TCN, 1.011 NSR and
    1.012 NTR ``00.00``) and one Type-18 record per profile with 18.001 LEN, 18.002 IDC (0-99,
    so at most :data:`TYPE18_MAX_RECORDS` profiles per transaction), 18.016 STR (the DNA STR
    profile: one subfield per typed locus with the items DNA STR type ``0`` (autosomal),
    locus reference code, two items left empty, allele indicator ``1``, allele call 1 and allele
    call 2, each call at most 4 characters), and two user-defined fields: 18.200 the opaque
    reference and 18.201 the kit name. The other Type-18 fields the standard requires of a
    submission (laboratory setting, source agency, sample information) are not written: these
    files carry the allele fields, for a system that already knows the sender, and the
    receiving system's conformance tool is the judge of the rest. Reading accepts tagged
    records of other types (skipped), refuses binary ones, X- and Y-STR subfields, a third
    allele, and a LEN that does not match the record.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as SafeET
import numpy as np

from dnatrack.errors import GenotypeFormatError, UnwritableValueError
from dnatrack.files import replace_atomically
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel, load_panel

#: Largest interchange file read (bytes); larger ones are refused before parsing.
MAX_INTERCHANGE_BYTES = 32 * 1024 * 1024
#: The CODIS-style layout nests 5 levels (CODISImportFile/SPECIMEN/LOCUS/ALLELE/ALLELEVALUE).
MAX_XML_DEPTH = 8
#: Elements one SPECIMEN may hold (a 16-locus profile has about 100).
MAX_ELEMENTS_PER_SPECIMEN = 5_000
#: Profiles per Type-18 transaction (IDC is two digits).
TYPE18_MAX_RECORDS = 100
#: Profiles per exported file: a Type-18 transaction's records, and for XML a number whose file
#: (about 3.1 kB a 16-locus profile) stays well under :data:`MAX_INTERCHANGE_BYTES`.
PROFILES_PER_FILE = {"codis-xml": 5_000, "type18": TYPE18_MAX_RECORDS}
#: Characters of a Type-18 allele call.
TYPE18_ALLELE_WIDTH = 4
CODIS_NAMESPACE = "urn:CODISImportFile-schema"
CODIS_HEADER_VERSION = "3.2"
FORMATS = ("codis-xml", "type18")
EXTENSIONS = {"codis-xml": ".xml", "type18": ".an2"}

FS, GS, RS, US = "\x1c", "\x1d", "\x1e", "\x1f"
_SEPARATORS = frozenset(FS + GS + RS + US)
_REFERENCE_LIMIT = 64
_BP = re.compile(r"[0-9]{1,4}")
_REPEATS = re.compile(r"([0-9]{1,3})(?:\.([0-9]))?")


# --- kit mappings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocusMapping:
    """How one panel locus is named in exchange files."""

    locus: str
    exchange_name: str
    type18_locus_code: int
    allele_naming: str  # "bp" or "repeats"
    offset_bp: int | None = None
    repeat_unit: int | None = None


@dataclass(frozen=True)
class KitMapping:
    """The exchange names of a panel's loci and alleles (see the module docstring)."""

    panel: Panel
    kit: str
    specimen_category: str
    loci: tuple[LocusMapping, ...]
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping, panel: Panel) -> KitMapping:
        """A mapping checked against ``panel``; ``ValueError`` naming what is wrong."""
        if data.get("panel") != panel.name:
            raise ValueError(f"kit mapping is for panel {data.get('panel')!r}, not {panel.name!r}")
        kit = data.get("kit")
        if not isinstance(kit, str) or not kit or not _plain(kit):
            raise ValueError("kit mapping: kit must be a plain name")
        loci, seen_names, seen_codes = [], set(), set()
        for entry in data.get("loci") or []:
            locus = entry.get("locus")
            if locus not in panel:
                raise ValueError(
                    f"kit mapping {kit}: locus {locus!r} is not in panel {panel.name!r}"
                )
            name, code = entry.get("exchange_name"), entry.get("type18_locus_code")
            naming = entry.get("allele_naming")
            if not isinstance(name, str) or not name or not _plain(name) or name in seen_names:
                raise ValueError(
                    f"kit mapping {kit}: locus {locus}: exchange_name must be a "
                    "plain name used once"
                )
            if (
                isinstance(code, bool)
                or not isinstance(code, int)
                or not 0 < code < 10_000
                or code in seen_codes
            ):
                raise ValueError(
                    f"kit mapping {kit}: locus {locus}: type18_locus_code must "
                    "be a number 1-9999 used once"
                )
            unit = panel.locus(locus).repeat_unit
            offset = entry.get("offset_bp")
            if naming == "repeats":
                if (
                    unit is None
                    or isinstance(offset, bool)
                    or not isinstance(offset, int)
                    or offset < 0
                ):
                    raise ValueError(
                        f"kit mapping {kit}: locus {locus}: repeat naming needs "
                        "offset_bp and the panel locus's repeat unit"
                    )
            elif naming != "bp":
                raise ValueError(
                    f"kit mapping {kit}: locus {locus}: allele_naming must be 'bp' or 'repeats'"
                )
            seen_names.add(name)
            seen_codes.add(code)
            loci.append(
                LocusMapping(
                    locus, name, code, naming, offset if naming == "repeats" else None, unit
                )
            )
        if not loci:
            raise ValueError(f"kit mapping {kit} lists no loci")
        return cls(
            panel,
            kit,
            str(data.get("specimen_category") or "Other"),
            tuple(loci),
            str(data.get("description", "")),
        )

    def for_locus(self, locus: str) -> LocusMapping | None:
        return next((m for m in self.loci if m.locus == locus), None)

    def by_name(self, name: str) -> LocusMapping | None:
        return next((m for m in self.loci if m.exchange_name == name), None)

    def by_code(self, code: int) -> LocusMapping | None:
        return next((m for m in self.loci if m.type18_locus_code == code), None)


def load_kit_mapping(panel: Panel | str, path: str | os.PathLike | None = None) -> KitMapping:
    """The bundled kit mapping of ``panel`` (or the mapping file ``path``)."""
    from reference_data import data_path

    panel = panel if isinstance(panel, Panel) else load_panel(panel)
    path = Path(path) if path is not None else data_path("exchange_kits", f"{panel.name}.json")
    if not path.is_file():
        raise ValueError(f"no exchange kit mapping for panel {panel.name!r}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name}: not valid JSON ({error})") from None
    return KitMapping.from_dict(data, panel)


def _plain(text: str) -> bool:
    return text.isprintable() and not (_SEPARATORS & set(text)) and len(text) <= 100


def allele_name(mapping: LocusMapping, size: int) -> str:
    """The exchange name of allele ``size`` (bp) at a locus; ``ValueError`` when it has none."""
    if mapping.allele_naming == "bp":
        return str(size)
    if size < mapping.offset_bp:
        raise ValueError(f"allele {size} is below the repeat offset {mapping.offset_bp} bp")
    repeats, rest = divmod(size - mapping.offset_bp, mapping.repeat_unit)
    return str(repeats) if rest == 0 else f"{repeats}.{rest}"


def allele_size(mapping: LocusMapping, text: str) -> int:
    """The size (bp) of an allele named ``text``; ``ValueError`` saying why it is not one."""
    text = text.strip()
    if mapping.allele_naming == "bp":
        if not _BP.fullmatch(text):
            raise ValueError(f"allele {text!r} is not a size in base pairs")
        return int(text)
    match = _REPEATS.fullmatch(text)
    if match is None:
        raise ValueError(f"allele {text!r} is not a repeat number (n or n.r)")
    rest = int(match[2] or 0)
    if rest >= mapping.repeat_unit:
        raise ValueError(
            f"allele {text!r}: .{rest} is not below the repeat unit {mapping.repeat_unit}"
        )
    return mapping.offset_bp + int(match[1]) * mapping.repeat_unit + rest


# --- writing -----------------------------------------------------------------------------------


def _profiles(
    table: GenotypeTable, kit: KitMapping, format: str, width: int | None = None
) -> list[tuple[str, list[tuple[LocusMapping, list[str]]]]]:
    """Each profile's reference and, per typed locus, its mapping and allele names; every value
    the format cannot hold raises :class:`UnwritableValueError` naming profile and locus."""
    mappings = []
    for locus in table.loci:
        mapping = kit.for_locus(locus)
        if mapping is None:
            raise UnwritableValueError(
                f"locus {locus!r} is not in kit mapping {kit.kit} (panel {kit.panel.name})",
                format=format,
                field="locus",
                value=str(locus),
            )
        mappings.append(mapping)
    profiles, seen = [], set()
    for i, reference in enumerate(str(p) for p in table.profile_ids):
        if (
            not reference
            or len(reference) > _REFERENCE_LIMIT
            or not _plain(reference)
            or (format == "type18" and not reference.isascii())
            or reference in seen
        ):
            raise UnwritableValueError(
                f"profile {reference!r}: a reference must be 1 to {_REFERENCE_LIMIT} printable "
                "characters, used once" + (", ASCII" if format == "type18" else ""),
                format=format,
                field="profile id",
                value=reference,
                profile_id=reference,
            )
        seen.add(reference)
        loci = []
        for j, mapping in enumerate(mappings):
            pair = [int(a) for a in table.alleles[i, j]]
            if MISSING in pair:
                continue
            names = []
            for size in sorted(set(pair)):
                problem = kit.panel.allele_problem(mapping.locus, size)
                try:
                    if problem:
                        raise ValueError(problem)
                    name = allele_name(mapping, size)
                    if width is not None and len(name) > width:
                        raise ValueError(f"allele name {name!r} is wider than {width} characters")
                except ValueError as error:
                    raise UnwritableValueError(
                        f"profile {reference!r}, locus {mapping.locus}: {error}",
                        format=format,
                        field="allele",
                        value=str(size),
                        profile_id=reference,
                    ) from None
                names.append(name)
            loci.append((mapping, names))
        profiles.append((reference, loci))
    return profiles


def _now_text(moment: dt.datetime | None) -> dt.datetime:
    return (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)


def write_codis_xml(
    table: GenotypeTable,
    kit: KitMapping,
    *,
    source_lab: str = "",
    destination: str = "",
    submitted_by: str = "dnatrack",
    submitted_at: dt.datetime | None = None,
) -> bytes:
    """The profiles of ``table`` (ids: their references) as a CODIS-style XML import file."""
    profiles = _profiles(table, kit, "codis-xml")
    root = ET.Element("CODISImportFile", {"xmlns": CODIS_NAMESPACE})
    header = (
        ("HEADERVERSION", CODIS_HEADER_VERSION),
        ("MESSAGETYPE", "Import"),
        ("DESTINATIONORI", destination),
        ("SOURCELAB", source_lab),
        ("SUBMITBYUSERID", submitted_by),
        ("SUBMITDATETIME", _now_text(submitted_at).strftime("%Y-%m-%dT%H:%M:%S")),
    )
    for tag, text in header:
        ET.SubElement(root, tag).text = text
    for reference, loci in profiles:
        specimen = ET.SubElement(root, "SPECIMEN")
        ET.SubElement(specimen, "SPECIMENID").text = reference
        ET.SubElement(specimen, "SPECIMENCATEGORY").text = kit.specimen_category
        for mapping, names in loci:
            locus = ET.SubElement(specimen, "LOCUS", {"KIT": kit.kit})
            ET.SubElement(locus, "LOCUSNAME").text = mapping.exchange_name
            for name in names:
                ET.SubElement(ET.SubElement(locus, "ALLELE"), "ALLELEVALUE").text = name
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def _tagged_record(record_type: int, fields: Sequence[tuple[int, str]]) -> str:
    """One tagged-field record, its LEN (field 1) counting the whole record."""
    body = "".join(f"{GS}{record_type}.{number:03d}:{value}" for number, value in fields) + FS
    prefix = f"{record_type}.001:"
    length = len(prefix) + len(body)
    while len(prefix) + len(str(length)) + len(body) != length:
        length = len(prefix) + len(str(length)) + len(body)
    return f"{prefix}{length}{body}"


def _type18_text(value: str, what: str) -> str:
    if not value.isascii() or (_SEPARATORS & set(value)) or not value.isprintable():
        raise UnwritableValueError(
            f"{what} {value!r} must be printable ASCII", format="type18", field=what, value=value
        )
    return value


def write_type18(
    table: GenotypeTable,
    kit: KitMapping,
    *,
    originating: str = "",
    destination: str = "",
    control_number: str = "",
    transaction_type: str = "DNA",
    date: dt.date | None = None,
) -> bytes:
    """The profiles of ``table`` as one ANSI/NIST-ITL transaction of Type-18 records (at most
    :data:`TYPE18_MAX_RECORDS`; see :func:`file_parts`)."""
    if table.n_profiles > TYPE18_MAX_RECORDS:
        raise UnwritableValueError(
            f"{table.n_profiles} profiles: a Type-18 transaction holds at most "
            f"{TYPE18_MAX_RECORDS} (IDC 0-99); write it in parts",
            format="type18",
            field="profiles",
            value=str(table.n_profiles),
        )
    profiles = _profiles(table, kit, "type18", TYPE18_ALLELE_WIDTH)
    date = date or dt.datetime.now(dt.UTC).date()
    content = [f"1{US}{len(profiles)}"] + [f"18{US}{idc}" for idc in range(len(profiles))]
    header = [
        (2, "0500"),
        (3, RS.join(content)),
        (4, _type18_text(transaction_type, "transaction type")),
        (5, date.strftime("%Y%m%d")),
        (7, _type18_text(destination, "destination")),
        (8, _type18_text(originating, "originating agency")),
        (9, _type18_text(control_number, "control number")),
        (11, "00.00"),
        (12, "00.00"),
    ]
    records = [_tagged_record(1, header)]
    for idc, (reference, loci) in enumerate(profiles):
        subfields = [
            US.join(
                (
                    "0",
                    str(mapping.type18_locus_code),
                    "",
                    "",
                    "1",
                    names[0],
                    names[1] if len(names) > 1 else "",
                )
            )
            for mapping, names in loci
        ]
        records.append(
            _tagged_record(
                18, [(2, str(idc)), (16, RS.join(subfields)), (200, reference), (201, kit.kit)]
            )
        )
    return "".join(records).encode("ascii")


def file_parts(table: GenotypeTable, format: str) -> list[GenotypeTable]:
    """``table`` cut into the files ``format`` takes: at most :data:`PROFILES_PER_FILE` profiles
    each (Type-18: a transaction's 100 records; CODIS-style XML: what stays under the import size
    limit). An empty table is one empty file."""
    size = PROFILES_PER_FILE[format]
    return [
        table.take(list(range(start, min(start + size, table.n_profiles))))
        for start in range(0, max(table.n_profiles, 1), size)
    ]


def dumps(format: str, table: GenotypeTable, kit: KitMapping, **options) -> bytes:
    if format == "codis-xml":
        return write_codis_xml(table, kit, **options)
    if format == "type18":
        return write_type18(table, kit, **options)
    raise ValueError(f"unknown interchange format {format!r}; one of {', '.join(FORMATS)}")


def write_interchange(
    table: GenotypeTable, path: str | os.PathLike, format: str, kit: KitMapping, **options
) -> None:
    """Write ``table`` to ``path`` (replaced only once the whole file is written)."""
    content = dumps(format, table, kit, **options)
    with replace_atomically(path, newline="") as handle:
        handle.write(content.decode("utf-8"))


# --- reading -----------------------------------------------------------------------------------


class _Reader:
    """Collects profiles read from a file and builds the table at the panel's loci."""

    def __init__(self, kit: KitMapping, name: str) -> None:
        self.kit, self.name = kit, name
        self.loci = kit.panel.locus_names
        self.ids: list[str] = []
        self.rows: list[np.ndarray] = []

    def error(self, message: str, field: str | None = None) -> GenotypeFormatError:
        return GenotypeFormatError(message, path=self.name, field=field)

    def start(self, reference: str | None, where: str) -> np.ndarray:
        reference = (reference or "").strip()
        if not reference or len(reference) > _REFERENCE_LIMIT or not reference.isprintable():
            raise self.error(
                f"{where}: the reference must be 1 to {_REFERENCE_LIMIT} printable characters",
                "reference",
            )
        if reference in self.ids:
            raise self.error(f"{where}: reference {reference!r} is given twice", "reference")
        self.ids.append(reference)
        row = np.full((len(self.loci), 2), MISSING, dtype=np.int16)
        self.rows.append(row)
        return row

    def put(
        self,
        row: np.ndarray,
        mapping: LocusMapping | None,
        label: str,
        values: Sequence[str],
        where: str,
    ) -> None:
        field = f"{where} / locus {label}"
        if mapping is None:
            raise self.error(
                f"{where}: locus {label!r} is not in kit mapping {self.kit.kit} "
                f"(panel {self.kit.panel.name})",
                field,
            )
        j = self.loci.index(mapping.locus)
        if row[j, 0] != MISSING:
            raise self.error(f"{where}: locus {label} is given twice", field)
        values = [v for v in values if v.strip()]
        if not values:
            return
        if len(values) > 2:
            raise self.error(
                f"{where}: locus {label} has {len(values)} alleles; a profile "
                "of one animal has one or two",
                field,
            )
        sizes = []
        for text in values:
            try:
                size = allele_size(mapping, text)
            except ValueError as error:
                raise self.error(f"{where}: locus {label}: {error}", field) from None
            problem = self.kit.panel.allele_problem(mapping.locus, size)
            if problem:
                raise self.error(f"{where}: locus {label}: {problem}", field)
            sizes.append(size)
        row[j] = sorted(sizes * 2 if len(sizes) == 1 else sizes)

    def table(self) -> GenotypeTable:
        alleles = (
            np.stack(self.rows)
            if self.rows
            else np.full((0, len(self.loci), 2), MISSING, dtype=np.int16)
        )
        return GenotypeTable(alleles, self.ids, list(self.loci))


def _checked_size(data: bytes, name: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise GenotypeFormatError(
            f"the file is {len(data)} bytes, more than the {max_bytes} allowed", path=name
        )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child_text(element, tag: str) -> str | None:
    for child in element:
        if _local(child.tag) == tag:
            return (child.text or "").strip()
    return None


def _specimens(data: bytes, name: str):
    """The file's SPECIMEN elements, one at a time, each cleared once read: parsed as a stream,
    so memory stays that of one specimen whatever the file's size; deeper nesting than the
    layout's, or a specimen of more than :data:`MAX_ELEMENTS_PER_SPECIMEN` elements, is
    refused."""
    depth, in_specimen, root = 0, 0, None
    try:
        events = SafeET.iterparse(
            io.BytesIO(data),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        for event, element in events:
            if event == "start":
                depth += 1
                if root is None:
                    root = element
                    if _local(root.tag) != "CODISImportFile":
                        raise GenotypeFormatError(
                            f"the root element is {_local(root.tag)!r}, not CODISImportFile",
                            path=name,
                        )
                if depth > MAX_XML_DEPTH:
                    raise GenotypeFormatError(
                        f"elements nested deeper than {MAX_XML_DEPTH} levels", path=name
                    )
                if depth > 2:
                    in_specimen += 1
                    if in_specimen > MAX_ELEMENTS_PER_SPECIMEN:
                        raise GenotypeFormatError(
                            f"a SPECIMEN of more than {MAX_ELEMENTS_PER_SPECIMEN} elements",
                            path=name,
                        )
                continue
            depth -= 1
            if depth == 1:
                if _local(element.tag) == "SPECIMEN":
                    yield element
                in_specimen = 0
                root.clear()
    except defusedxml.DefusedXmlException as error:
        raise GenotypeFormatError(
            f"refused: the XML has a document type declaration or entities "
            f"({type(error).__name__})",
            path=name,
        ) from None
    except ET.ParseError as error:
        raise GenotypeFormatError(
            f"not well-formed XML ({error})", path=name, line=error.position[0]
        ) from None


def read_codis_xml(
    data: bytes,
    kit: KitMapping,
    *,
    name: str = "<codis-xml>",
    max_bytes: int = MAX_INTERCHANGE_BYTES,
) -> GenotypeTable:
    """Profiles of a CODIS-style XML import file (see the module docstring)."""
    _checked_size(data, name, max_bytes)
    reader = _Reader(kit, name)
    number = 0
    for specimen in _specimens(data, name):
        number += 1
        reference = _child_text(specimen, "SPECIMENID")
        where = f"SPECIMEN {reference or number}"
        row = reader.start(reference, where)
        for locus in (e for e in specimen if _local(e.tag) == "LOCUS"):
            label = _child_text(locus, "LOCUSNAME") or ""
            sent_kit = locus.get("KIT")
            if sent_kit not in (None, "", kit.kit):
                raise reader.error(
                    f"{where}: locus {label} was typed with kit {sent_kit!r}, not {kit.kit}",
                    f"{where} / locus {label}",
                )
            values = [
                _child_text(allele, "ALLELEVALUE") or ""
                for allele in locus
                if _local(allele.tag) == "ALLELE"
            ]
            reader.put(row, kit.by_name(label), label, values, where)
    return reader.table()


def _fields(record: str, record_type: int, where: str, reader: _Reader) -> dict[int, str]:
    fields = {}
    for text in record.rstrip(FS).split(GS):
        tag, colon, value = text.partition(":")
        kind, dot, number = tag.partition(".")
        if (
            not colon
            or not dot
            or not kind.isdigit()
            or not number.isdigit()
            or int(kind) != record_type
        ):
            raise reader.error(
                f"{where}: {tag[:20]!r} is not a field tag of a Type-{record_type} record"
            )
        if int(number) in fields:
            raise reader.error(f"{where}: field {tag} is given twice", tag)
        fields[int(number)] = value
    return fields


def read_type18(
    data: bytes, kit: KitMapping, *, name: str = "<type18>", max_bytes: int = MAX_INTERCHANGE_BYTES
) -> GenotypeTable:
    """Profiles of an ANSI/NIST-ITL transaction's Type-18 records (see the module docstring)."""
    _checked_size(data, name, max_bytes)
    reader = _Reader(kit, name)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as error:
        raise reader.error(f"byte {error.start}: not 7-bit ASCII text") from None
    position, record_types = 0, None
    while position < len(text):
        head = re.match(r"([0-9]{1,2})\.0*1:([0-9]{1,9})" + GS, text[position : position + 20])
        if head is None:
            raise reader.error(f"record at byte {position}: does not start with its LEN field")
        record_type, length = int(head[1]), int(head[2])
        record = text[position : position + length]
        if length < len(head[0]) or len(record) != length or not record.endswith(FS):
            raise reader.error(
                f"Type-{record_type} record at byte {position}: LEN {length} "
                "does not match the record"
            )
        where = f"Type-{record_type} record at byte {position}"
        if record_types is None:
            if record_type != 1:
                raise reader.error(f"{where}: a transaction starts with a Type-1 record")
            fields = _fields(record, 1, where, reader)
            record_types = [item.split(US)[0] for item in fields.get(3, "").split(RS)[1:]]
            binary = sorted({t for t in record_types if t in {"3", "4", "5", "6", "7", "8"}})
            if binary:
                raise reader.error(
                    f"{where}: binary records (Type-{', '.join(binary)}) are not "
                    "read; send the Type-18 records alone",
                    "1.003",
                )
        elif record_type == 18:
            _type18_record(_fields(record, 18, where, reader), kit, reader, where)
        position += length
    if record_types is None:
        raise reader.error("empty file: no Type-1 record")
    return reader.table()


def _type18_record(fields: dict[int, str], kit: KitMapping, reader: _Reader, where: str) -> None:
    idc = fields.get(2, "").strip()
    reference = fields.get(200) or (f"IDC-{idc}" if idc else None)
    where = f"{where} ({reference})" if reference else where
    if fields.get(201) not in (None, "", kit.kit):
        raise reader.error(f"{where}: kit {fields[201]!r}, not {kit.kit}", "18.201")
    row = reader.start(reference, where)
    for subfield in (s for s in fields.get(16, "").split(RS) if s):
        items = subfield.split(US) + [""] * 8
        kind, code, indicator = items[0].strip(), items[1].strip(), items[4].strip()
        label = f"code {code}"
        if kind != "0":
            raise reader.error(
                f"{where}: locus {label} is not an autosomal STR (DNA STR type {kind!r})", "18.016"
            )
        mapping = kit.by_code(int(code)) if code.isdigit() else None
        if mapping is not None:
            label = f"{mapping.locus} ({label})"
        if indicator not in ("0", "1"):
            raise reader.error(
                f"{where}: locus {label}: allele indicator {indicator!r} is not 0 or 1", "18.016"
            )
        values = items[5:8] if indicator == "1" else []
        reader.put(row, mapping, label, values, where)


def loads(
    format: str,
    data: bytes,
    kit: KitMapping,
    *,
    name: str | None = None,
    max_bytes: int = MAX_INTERCHANGE_BYTES,
) -> GenotypeTable:
    if format == "codis-xml":
        return read_codis_xml(data, kit, name=name or "<codis-xml>", max_bytes=max_bytes)
    if format == "type18":
        return read_type18(data, kit, name=name or "<type18>", max_bytes=max_bytes)
    raise ValueError(f"unknown interchange format {format!r}; one of {', '.join(FORMATS)}")


def read_interchange(
    path: str | os.PathLike, format: str, kit: KitMapping, *, max_bytes: int = MAX_INTERCHANGE_BYTES
) -> GenotypeTable:
    """Profiles of an interchange file; the size is checked before the file is read."""
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise GenotypeFormatError(
            f"the file is {path.stat().st_size} bytes, more than the {max_bytes} allowed", path=path
        )
    return loads(format, path.read_bytes(), kit, name=str(path), max_bytes=max_bytes)


def table_as_profiles(table: GenotypeTable) -> list[tuple[str, dict[str, list[int]]]]:
    """``(reference, {locus: [a, b]})`` of each profile, typed loci only."""
    out = []
    for i, reference in enumerate(table.profile_ids):
        alleles = {
            str(locus): [int(a) for a in table.alleles[i, j]]
            for j, locus in enumerate(table.loci)
            if MISSING not in table.alleles[i, j]
        }
        out.append((str(reference), alleles))
    return out
