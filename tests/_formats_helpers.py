"""Small helpers shared by the format tests."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np

from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Locus, Panel


def located(file_name: str, line: int | None = None, field: str | None = None) -> str:
    """Regex for the start of a GenotypeFormatError message naming file, line and field."""
    parts = [re.escape(file_name)]
    if line is not None:
        parts.append(f"line {line}")
    if field is not None:
        parts.append(re.escape(f"field {field!r}"))
    return "^" + ", ".join(parts) + ": "


def write_text(folder: Path, name: str, text: str) -> Path:
    """Write dedented ``text`` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def elephant_panel(*loci: str, low: int = 100, high: int = 300) -> Panel:
    """A small STR panel with the same size range at every locus."""
    return Panel(
        "test-panel",
        "Loxodonta africana",
        "STR",
        tuple(Locus(name, low, high, 4) for name in loci),
    )


def random_table(
    seed: int,
    *,
    n_profiles: int = 12,
    n_loci: int = 5,
    max_allele: int = 400,
    metadata: bool = True,
) -> GenotypeTable:
    """A random table with missing loci, homozygotes, an all-missing profile and (when
    ``metadata``) populations in contiguous blocks, reporting units and groups."""
    rng = np.random.default_rng(seed)
    alleles = rng.integers(1, max_allele + 1, size=(n_profiles, n_loci, 2))
    homozygous = rng.random((n_profiles, n_loci)) < 0.2
    alleles[homozygous, 1] = alleles[homozygous, 0]
    alleles[rng.random((n_profiles, n_loci)) < 0.15] = -1
    alleles[-1] = -1
    kwargs = {}
    if metadata:
        labels = np.array(["Kenya", "Tanzania", "pop-3", "12"])
        blocks = np.sort(rng.integers(0, len(labels), size=n_profiles))
        kwargs = {
            "population": labels[blocks],
            "repunit": np.where(blocks < 2, "savanna", "forest"),
            "group": [f"seizure-{i % 3}" for i in range(n_profiles)],
        }
    return GenotypeTable(
        alleles,
        [f"s{i:03d}" for i in range(n_profiles)],
        [f"L{j}" for j in range(n_loci)],
        **kwargs,
    )
