"""The interchange formats (CODIS-style XML, ANSI/NIST-ITL Type-18): round trips on bundled
reference genotypes, the kit mappings' allele naming, refusals naming record and locus, and
hostile XML."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dnatrack.errors import GenotypeFormatError, UnwritableValueError
from dnatrack.formats import interchange as ix
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Locus, Panel, load_panel
from dnatrack.reference import load_reference_set
from reference_data import list_panels

GS, RS, US, FS = ix.GS, ix.RS, ix.US, ix.FS


def reference_profiles(panel_name: str, set_name: str, n: int) -> GenotypeTable:
    """``n`` profiles of a bundled reference set at the panel's loci, with some loci untyped
    and some homozygotes, named by opaque-looking references."""
    table = load_reference_set(set_name).table.select_loci(load_panel(panel_name).locus_names)
    alleles = table.alleles[:n].copy()
    alleles[::7, 3] = MISSING
    alleles[::5, 1, 1] = alleles[::5, 1, 0]
    return GenotypeTable(alleles, [f"x{i:04d}" for i in range(n)], list(table.loci))


@pytest.mark.parametrize(
    ("panel", "reference_set"),
    [("elephant_16str", "savanna_elephant_simulated"), ("rhino_str", "black_rhino_simulated")],
)
@pytest.mark.parametrize("format", ix.FORMATS)
def test_export_then_import_gives_the_same_genotypes(tmp_path, panel, reference_set, format):
    kit = ix.load_kit_mapping(panel)
    table = reference_profiles(panel, reference_set, 250)
    assert (table.alleles == MISSING).any() and (
        table.alleles[:, :, 0] == table.alleles[:, :, 1]
    ).any()
    parts = ix.file_parts(table, format)
    assert len(parts) == (3 if format == "type18" else 1)
    ids, alleles = [], []
    for number, part in enumerate(parts):
        path = tmp_path / f"part{number}{ix.EXTENSIONS[format]}"
        ix.write_interchange(
            part,
            path,
            format,
            kit,
            **({"originating": "KE0001"} if format == "type18" else {"source_lab": "KWS"}),
        )
        back = ix.read_interchange(path, format, kit)
        assert list(back.loci) == list(kit.panel.locus_names)
        ids += [str(i) for i in back.profile_ids]
        alleles.append(back.alleles)
    assert ids == [str(i) for i in table.profile_ids]
    np.testing.assert_array_equal(np.concatenate(alleles), table.alleles)


def test_every_bundled_panel_has_a_kit_mapping_of_all_its_loci():
    for name in list_panels():
        kit = ix.load_kit_mapping(name)
        assert [m.locus for m in kit.loci] == list(kit.panel.locus_names)
        assert len({m.type18_locus_code for m in kit.loci}) == len(kit.loci)
        assert all(m.allele_naming == "bp" for m in kit.loci)


def repeat_kit() -> ix.KitMapping:
    panel = Panel("tetra", "Testus", "STR", (Locus("T1", 100, 180, 4), Locus("T2", 100, 300, 4)))
    return ix.KitMapping.from_dict(
        {
            "panel": "tetra",
            "kit": "TK",
            "loci": [
                {
                    "locus": "T1",
                    "exchange_name": "TT1",
                    "type18_locus_code": 1,
                    "allele_naming": "repeats",
                    "offset_bp": 100,
                },
                {
                    "locus": "T2",
                    "exchange_name": "TT2",
                    "type18_locus_code": 2,
                    "allele_naming": "bp",
                },
            ],
        },
        panel,
    )


def test_repeat_naming_counts_repeats_above_the_offset_with_isfg_remainders():
    kit = repeat_kit()
    t1 = kit.for_locus("T1")
    assert [ix.allele_name(t1, size) for size in (100, 140, 142, 143)] == [
        "0",
        "10",
        "10.2",
        "10.3",
    ]
    assert [ix.allele_size(t1, name) for name in ("10", "10.2", "9.1")] == [140, 142, 137]
    with pytest.raises(ValueError, match="below the repeat offset 100"):
        ix.allele_name(t1, 99)
    with pytest.raises(ValueError, match="not below the repeat unit 4"):
        ix.allele_size(t1, "10.4")
    with pytest.raises(ValueError, match="not a repeat number"):
        ix.allele_size(t1, "OL")
    # A round trip in both formats: the file carries repeat numbers, the table sizes.
    table = GenotypeTable(
        np.array([[[140, 142], [250, 254]]], dtype=np.int16), ["r1"], ["T1", "T2"]
    )
    xml = ix.write_codis_xml(table, kit)
    assert b"<ALLELEVALUE>10.2</ALLELEVALUE>" in xml and b"<LOCUSNAME>TT1<" in xml
    for format in ix.FORMATS:
        back = ix.loads(format, ix.dumps(format, table, kit), kit)
        np.testing.assert_array_equal(back.alleles, table.alleles)
    # Type-18 allele calls are at most 4 characters.
    wide = GenotypeTable(
        np.array([[[180, 180], [MISSING, MISSING]]], dtype=np.int16), ["r"], ["T1", "T2"]
    )
    assert ix.allele_name(kit.for_locus("T1"), 180) == "20"
    assert ix.read_type18(ix.write_type18(wide, kit), kit).alleles[0, 0].tolist() == [180, 180]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"panel": "other"}, "is for panel 'other'"),
        ({"panel": "tetra", "kit": "K", "loci": [{"locus": "X9"}]}, "locus 'X9' is not in panel"),
        (
            {
                "panel": "tetra",
                "kit": "K",
                "loci": [
                    {
                        "locus": "T1",
                        "exchange_name": "A",
                        "type18_locus_code": 1,
                        "allele_naming": "repeats",
                    }
                ],
            },
            "repeat naming needs offset_bp",
        ),
        (
            {
                "panel": "tetra",
                "kit": "K",
                "loci": [
                    {
                        "locus": "T1",
                        "exchange_name": "A",
                        "type18_locus_code": 1,
                        "allele_naming": "bp",
                    },
                    {
                        "locus": "T2",
                        "exchange_name": "B",
                        "type18_locus_code": 1,
                        "allele_naming": "bp",
                    },
                ],
            },
            "locus T2: type18_locus_code must be a number 1-9999 used once",
        ),
    ],
)
def test_a_bad_kit_mapping_is_refused_naming_the_locus(data, message):
    with pytest.raises(ValueError, match=message):
        ix.KitMapping.from_dict(data, repeat_kit().panel)


def codis(specimens: str, kit: str = "DNATRACK-ELEPHANT16") -> bytes:
    return (
        f'<?xml version="1.0"?><CODISImportFile xmlns="{ix.CODIS_NAMESPACE}">'
        f"<HEADERVERSION>3.2</HEADERVERSION>{specimens}</CODISImportFile>"
    ).encode()


def locus(name: str, *values: str, kit: str = "DNATRACK-ELEPHANT16") -> str:
    alleles = "".join(f"<ALLELE><ALLELEVALUE>{v}</ALLELEVALUE></ALLELE>" for v in values)
    return f'<LOCUS KIT="{kit}"><LOCUSNAME>{name}</LOCUSNAME>{alleles}</LOCUS>'


def specimen(reference: str, *loci: str) -> str:
    return f"<SPECIMEN><SPECIMENID>{reference}</SPECIMENID>{''.join(loci)}</SPECIMEN>"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            specimen("s1", locus("FH67", "150"), locus("D3S1358", "15", "16")),
            "SPECIMEN s1: locus 'D3S1358' is not in kit mapping DNATRACK-ELEPHANT16",
        ),
        (
            specimen("s1", locus("FH67", "150", "152", "154")),
            "SPECIMEN s1: locus FH67 has 3 alleles",
        ),
        (specimen("s1", locus("FH67", "OL")), "SPECIMEN s1: locus FH67: allele 'OL' is not a size"),
        (
            specimen("s1", locus("FH19", "120")),
            "SPECIMEN s1: locus FH19: allele 120 outside the range 157..213",
        ),
        (specimen("s1", locus("FH67", "150"), locus("FH67", "152")), "locus FH67 is given twice"),
        (specimen("s1", locus("FH67", "150")) + specimen("s1"), "reference 's1' is given twice"),
        (specimen("", locus("FH67", "150")), "SPECIMEN 1: the reference must be 1 to 64"),
        (
            specimen("s2", locus("FH67", "150", kit="Identifiler")),
            "SPECIMEN s2: locus FH67 was typed with kit 'Identifiler', not DNATRACK-ELEPHANT16",
        ),
    ],
)
def test_codis_xml_that_does_not_fit_is_refused_naming_record_and_locus(body, message):
    kit = ix.load_kit_mapping("elephant_16str")
    with pytest.raises(GenotypeFormatError, match=message):
        ix.read_codis_xml(codis(body), kit, name="in.xml")


def test_codis_xml_reads_homozygotes_untyped_loci_and_no_namespace():
    kit = ix.load_kit_mapping("elephant_16str")
    data = codis(specimen("s1", locus("FH67", "150"), locus("FH71"), locus("FH19", "181", "177")))
    table = ix.read_codis_xml(data.replace(f' xmlns="{ix.CODIS_NAMESPACE}"'.encode(), b""), kit)
    row = dict(zip(table.loci, table.alleles[0].tolist(), strict=True))
    assert row["FH67"] == [150, 150] and row["FH71"] == [MISSING, MISSING]
    assert row["FH19"] == [177, 181]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE CODISImportFile [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<CODISImportFile><SPECIMEN><SPECIMENID>&secret;</SPECIMENID></SPECIMEN></CODISImportFile>"""

LAUGHS = (
    b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">"""
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"""]>
<CODISImportFile><SPECIMEN><SPECIMENID>&lol9;</SPECIMENID></SPECIMEN></CODISImportFile>"""
)


@pytest.mark.parametrize(
    "data",
    [
        XXE,
        LAUGHS,
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><CODISImportFile/>',
    ],
    ids=["external-entity", "billion-laughs", "external-dtd"],
)
def test_hostile_xml_is_refused_before_any_entity_is_expanded(data):
    kit = ix.load_kit_mapping("elephant_16str")
    started = time.process_time()
    with pytest.raises(GenotypeFormatError, match="document type declaration or entities"):
        ix.read_codis_xml(data, kit, name="hostile.xml")
    assert time.process_time() - started < 5  # no expansion happened (a generous bound)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    kit = ix.load_kit_mapping("elephant_16str")
    path = tmp_path / "huge.xml"
    with open(path, "wb") as handle:
        handle.truncate(ix.MAX_INTERCHANGE_BYTES + 1)  # sparse: no memory or disk used
    for format in ix.FORMATS:
        with pytest.raises(
            GenotypeFormatError, match=f"more than the {ix.MAX_INTERCHANGE_BYTES} allowed"
        ):
            ix.read_interchange(path, format, kit)
    with pytest.raises(GenotypeFormatError, match="more than the 100 allowed"):
        ix.read_codis_xml(codis(specimen("s" * 200)), kit, max_bytes=100)
    with pytest.raises(GenotypeFormatError, match="line 1"):
        ix.read_codis_xml(b"<CODISImportFile><SPECIMEN></CODISImportFile>", kit)


def type18_file(kit, table) -> bytes:
    return ix.write_type18(table, kit, originating="KE0001", control_number="T1")


def one_profile(kit) -> GenotypeTable:
    alleles = np.full((1, len(kit.panel.locus_names), 2), MISSING, dtype=np.int16)
    alleles[0, 0] = [150, 154]
    return GenotypeTable(alleles, ["xref"], list(kit.panel.locus_names))


def test_type18_records_carry_the_allele_fields_with_their_lengths():
    kit = ix.load_kit_mapping("elephant_16str")
    data = type18_file(kit, one_profile(kit)).decode("ascii")
    records = data.split(FS)[:-1]
    assert [r.split(GS)[0].split(":")[0] for r in records] == ["1.001", "18.001"]
    for record in records:
        assert int(record.split(GS)[0].split(":")[1]) == len(record) + 1
    fields = dict(f.split(":", 1) for f in records[1].split(GS))
    assert fields["18.016"] == US.join(["0", "901", "", "", "1", "150", "154"])
    assert fields["18.200"] == "xref" and fields["18.201"] == kit.kit
    header = dict(f.split(":", 1) for f in records[0].split(GS))
    assert header["1.002"] == "0500" and header["1.003"] == f"1{US}1{RS}18{US}0"


def _replace_field(data: bytes, old: str, new: str) -> bytes:
    """``data`` with one Type-18 field changed and the record's LEN fixed."""
    text = data.decode("ascii")
    head, record = text.split(FS)[0] + FS, text.split(FS)[1]
    fields = [f for f in record.split(GS)[1:]]
    fields = [new if f == old else f for f in fields]
    assert new in fields
    return (
        head
        + ix._tagged_record(
            18, [(int(f.split(":")[0].split(".")[1]), f.split(":", 1)[1]) for f in fields]
        )
    ).encode("ascii")


def test_type18_that_does_not_fit_is_refused_naming_record_and_locus():
    kit = ix.load_kit_mapping("elephant_16str")
    data = type18_file(kit, one_profile(kit))
    good = "18.016:" + US.join(["0", "901", "", "", "1", "150", "154"])
    cases = {
        "18.016:" + US.join(["2", "901", "", "", "1", "15", ""]): "not an autosomal STR",
        "18.016:"
        + US.join(["0", "777", "", "", "1", "150", ""]): "locus 'code 777' is not in kit mapping",
        "18.016:"
        + US.join(
            ["0", "901", "", "", "1", "150", "152", "154"]
        ): r"locus FH67 \(code 901\) has 3 alleles",
        "18.016:" + US.join(["0", "903", "", "", "1", "99", ""]): "allele 99 outside the range",
    }
    for field, message in cases.items():
        with pytest.raises(GenotypeFormatError, match=message) as caught:
            ix.read_type18(_replace_field(data, good, field), kit, name="in.an2")
        assert "(xref)" in str(caught.value)
    with pytest.raises(GenotypeFormatError, match="LEN .* does not match the record"):
        ix.read_type18(data.replace(b"154", b"1540"), kit)
    with pytest.raises(GenotypeFormatError, match="not 7-bit ASCII"):
        ix.read_type18(data + "é".encode(), kit)
    binary = data.replace(f"18{US}0".encode(), f"18{US}0{RS}4{US}1".encode())
    binary = ix._tagged_record(
        1,
        [
            (int(f.split(":")[0].split(".")[1]), f.split(":", 1)[1])
            for f in binary.decode().split(FS)[0].split(GS)[1:]
        ],
    )
    with pytest.raises(GenotypeFormatError, match=r"binary records \(Type-4\)"):
        ix.read_type18(binary.encode() + data.split(FS.encode(), 1)[1], kit)
    # Without 18.200 the record is named by its IDC; an untyped locus (indicator 0) is fine.
    anonymous = _replace_field(data, "18.200:xref", "18.200:")
    assert ix.read_type18(anonymous, kit).profile_ids.tolist() == ["IDC-0"]


def test_the_writers_refuse_what_the_formats_cannot_hold():
    kit = ix.load_kit_mapping("elephant_16str")
    table = one_profile(kit)
    with pytest.raises(UnwritableValueError, match="locus 'D3S1358' is not in kit mapping"):
        ix.write_codis_xml(GenotypeTable(table.alleles[:, :1], ["x"], ["D3S1358"]), kit)
    with pytest.raises(UnwritableValueError, match="reference must be 1 to 64 printable"):
        ix.write_type18(GenotypeTable(table.alleles, [f"a{GS}b"], list(table.loci)), kit)
    with pytest.raises(UnwritableValueError, match="ASCII"):
        ix.write_type18(GenotypeTable(table.alleles, ["réf"], list(table.loci)), kit)
    out_of_range = table.alleles.copy()
    out_of_range[0, 2] = [120, 181]
    with pytest.raises(UnwritableValueError, match="'xref', locus FH19: allele 120 outside"):
        ix.write_codis_xml(GenotypeTable(out_of_range, ["xref"], list(table.loci)), kit)
    many = GenotypeTable(
        np.repeat(table.alleles, 101, axis=0), [f"r{i}" for i in range(101)], list(table.loci)
    )
    with pytest.raises(UnwritableValueError, match="at most 100"):
        ix.write_type18(many, kit)


def test_xml_is_read_as_a_stream_with_bounded_nesting_and_specimen_size():
    kit = ix.load_kit_mapping("elephant_16str")
    deep = b"<CODISImportFile>" + b"<a>" * 50 + b"</a>" * 50 + b"</CODISImportFile>"
    with pytest.raises(GenotypeFormatError, match="nested deeper than 8 levels"):
        ix.read_codis_xml(deep, kit)
    wide = codis(specimen("s1", *[locus("FH67", "150")] * 2000))
    with pytest.raises(GenotypeFormatError, match="a SPECIMEN of more than 5000 elements"):
        ix.read_codis_xml(wide, kit)
    with pytest.raises(GenotypeFormatError, match="the root element is 'html'"):
        ix.read_codis_xml(b"<html><SPECIMEN/></html>", kit)
    with pytest.raises(GenotypeFormatError, match="not well-formed XML"):
        ix.read_codis_xml(b"", kit)
    # Elements the layout does not name are skipped; many specimens read one at a time.
    many = codis(
        "<BATCHID>b1</BATCHID>"
        + "".join(
            specimen(f"s{i}", locus("FH67", "150", str(152 + 2 * (i % 20)))) for i in range(3000)
        )
    )
    table = ix.read_codis_xml(many, kit)
    assert table.n_profiles == 3000 and table.alleles[2999, 0].tolist() == [150, 190]


def test_a_full_xml_file_of_profiles_stays_under_the_import_limit():
    kit = ix.load_kit_mapping("elephant_16str")
    n = ix.PROFILES_PER_FILE["codis-xml"]
    table = load_reference_set("savanna_elephant_simulated").table.select_loci(
        kit.panel.locus_names
    )
    alleles = np.resize(table.alleles, (n, *table.alleles.shape[1:]))
    lowest = np.array([locus.min_size for locus in kit.panel.loci])[None, :, None]
    alleles = np.where(alleles == MISSING, lowest, alleles).astype(np.int16)  # all typed
    full = GenotypeTable(alleles, [f"x{i:031x}" for i in range(n)], list(table.loci))
    assert (full.alleles != MISSING).all()
    content = ix.write_codis_xml(full, kit, source_lab="KWS")
    assert len(content) < ix.MAX_INTERCHANGE_BYTES
    assert ix.read_codis_xml(content, kit).n_profiles == n
