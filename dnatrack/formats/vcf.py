"""VCF (``.vcf``, ``.vcf.gz``) for SNP panels, read with scikit-allel.

Each variant is a locus, named by its ``ID`` or, where the ID is ``.``, ``CHROM:POS``. Allele
codes are the ``GT`` index plus one (1 = REF, 2 = the first ALT, …), so codes are positive like
rubias's SNP codes; a missing call (``.``, ``./.``, or one allele of it missing) is untyped.
Every variant of the file is read (no filtering), so variant ``i`` is on line
``header lines + i + 1``, which errors name.
"""

from __future__ import annotations

import gzip
import os
import re
import warnings
import zlib
from pathlib import Path

import numpy as np

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats._builder import TableBuilder, check_panel_allele
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

_FIELDS = ["samples", "variants/CHROM", "variants/POS", "variants/ID", "calldata/GT"]
# scikit-allel reports malformed values as warnings and carries on; these name the variant.
_PARSE_WARNING = re.compile(
    r"variant: (?P<index>\d+).*?(?:\((?P<sample>[^:)]+):(?P<field>\w+)\))?$"
)


def _header_line_count(path: Path) -> int:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    count = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for text in handle:
            if not text.startswith("#"):
                break
            count += 1
    return count


def read_vcf(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
) -> GenotypeTable:
    """Read the diploid ``GT`` calls of a VCF file (see the module docstring for the coding).

    Parameters
    ----------
    path
        The file (gzip-compressed when its name ends in ``.gz``).
    panel
        When given, variants not in the panel and codes outside a locus's range are errors.
    duplicate_ids
        ``"error"`` or ``"number"`` for repeated sample names.
    """
    import allel

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # A VCF without ##FORMAT=<ID=GT...> lines is common; GT's type is fixed by the spec.
        warnings.filterwarnings("ignore", message=r".*header not found", category=UserWarning)
        try:
            data = allel.read_vcf(str(path), fields=_FIELDS)
        except UserWarning as warning:
            raise _parse_error(path, str(warning)) from None
        except (RuntimeError, EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise GenotypeFormatError(f"not a readable VCF file ({error})", path=path) from None
    if data is None:
        raise GenotypeFormatError("no variants", path=path, line=_header_line_count(path))
    samples = [str(s) for s in data["samples"]]
    header_lines = _header_line_count(path)
    if not samples:
        raise GenotypeFormatError(
            "no samples (no columns after FORMAT)", path=path, line=header_lines
        )
    loci = [
        f"{chrom}:{pos}" if variant_id in (".", "") else str(variant_id)
        for chrom, pos, variant_id in zip(
            data["variants/CHROM"], data["variants/POS"], data["variants/ID"], strict=True
        )
    ]
    variant_lines = [header_lines + 1 + i for i in range(len(loci))]
    builder = TableBuilder(
        path, loci, panel=panel, duplicate_ids=duplicate_ids, locus_lines=variant_lines
    )
    genotypes = np.asarray(data["calldata/GT"], dtype=np.int64)
    codes = np.where(genotypes >= 0, genotypes + 1, MISSING)
    if panel is not None:
        # Checked here, where each variant's own line is known, before the builder sees it.
        low = np.array([panel.locus(locus).min_size for locus in loci])[:, None, None]
        high = np.array([panel.locus(locus).max_size for locus in loci])[:, None, None]
        outside = (codes != MISSING) & ((codes < low) | (codes > high))
        if outside.any():
            j, s, k = np.argwhere(outside)[0]
            check_panel_allele(
                panel,
                loci[j],
                int(codes[j, s, k]),
                path=path,
                line=variant_lines[j],
                field=samples[s],
            )
    for s, sample in enumerate(samples):
        builder.add(sample, codes[:, s, :], header_lines)
    return builder.build()


def _parse_error(path: Path, message: str) -> GenotypeFormatError:
    match = _PARSE_WARNING.search(message)
    if match is None:
        return GenotypeFormatError(f"malformed VCF ({message})", path=path)
    line = _header_line_count(path) + 1 + int(match["index"])
    return GenotypeFormatError(
        f"malformed VCF ({message.split(';')[0]})",
        path=path,
        line=line,
        field=match["sample"] or None,
    )
