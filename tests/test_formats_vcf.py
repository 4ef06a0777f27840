import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats import read_genotypes
from dnatrack.formats.vcf import read_vcf
from dnatrack.panels import Locus, Panel
from tests._formats_helpers import located, write_text

EXAMPLE = Path(__file__).parent / "data" / "formats" / "example.vcf"
HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n"


def snp_panel(*names, high=2):
    return Panel("snps", "Ceratotherium simum", "SNP", tuple(Locus(n, 1, high) for n in names))


def test_gzipped_vcf_reads_like_the_plain_one(tmp_path):
    packed = tmp_path / "example.vcf.gz"
    with open(EXAMPLE, "rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    assert read_genotypes(packed).same_genotypes(read_vcf(EXAMPLE))


def test_panel_checks_ids_and_codes():
    with pytest.raises(GenotypeFormatError, match=located("example.vcf", 5, "1:2210")
                       + "unknown locus '1:2210'"):
        read_vcf(EXAMPLE, panel=snp_panel("rs101", "snp3"))
    # 0|2 of horn-1 at the multi-allelic variant (line 5) is code 3, above the panel's 2.
    with pytest.raises(GenotypeFormatError, match=located("example.vcf", 5, "horn-1")
                       + "allele 3 outside the range 1..2"):
        read_vcf(EXAMPLE, panel=snp_panel("rs101", "1:2210", "snp3"))
    table = read_vcf(EXAMPLE, panel=snp_panel("rs101", "1:2210", "snp3", high=3))
    assert table.n_loci == 3


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        (HEAD + "1\t5\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/0\n1\t9\trs2\tA\tG\t.\t.\t.\tGT\t0/1\tx/y\n",
         4, "s2", "malformed VCF \\(error parsing integer value"),
        (HEAD + "1\t5\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/0\n1\t9\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/0\n",
         4, "rs1", "locus 'rs1' appears twice"),
        (HEAD, 2, None, "no variants"),
        ("chr1 5 rs1 A G\n", None, None, "not a readable VCF file"),
    ],
)
def test_bad_files(tmp_path, body, line, field, message):
    path = write_text(tmp_path, "bad.vcf", body)
    with pytest.raises(GenotypeFormatError, match=located("bad.vcf", line, field) + message):
        read_vcf(path)


def test_repeated_sample_names(tmp_path):
    path = write_text(
        tmp_path, "dup.vcf",
        HEAD.replace("s1\ts2", "s1\ts1") + "1\t5\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\n",
    )
    with pytest.raises(GenotypeFormatError, match=located("dup.vcf", 2, "sample id")
                       + "duplicate sample id 's1'"):
        read_vcf(path)
    table = read_vcf(path, duplicate_ids="number")
    assert table.profile_ids.tolist() == ["s1", "s1_2"]
    assert np.array_equal(table.alleles[:, 0], [[1, 2], [2, 2]])


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.vcf.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(GenotypeFormatError, match=located("broken.vcf.gz")
                       + "not a readable VCF file"):
        read_genotypes(path)
