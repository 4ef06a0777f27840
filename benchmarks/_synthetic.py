"""Synthetic genotype tables of realistic size for the benchmarks."""

from __future__ import annotations

import numpy as np

from dnatrack.genotypes import GenotypeTable


def str_panel_table(n: int, n_loci: int = 16, n_alleles: int = 14, missing: float = 0.03,
                    seed: int = 1, prefix: str = "S") -> GenotypeTable:
    """``n`` unrelated profiles at ``n_loci`` STRs with uneven allele frequencies
    (Dirichlet(2) per locus, a typical elephant-STR spread) and some untyped loci."""
    rng = np.random.default_rng(seed)
    freqs = np.random.default_rng(12345).dirichlet(np.full(n_alleles, 2.0), size=n_loci)
    alleles = np.empty((n, n_loci, 2), dtype=np.int16)
    for locus in range(n_loci):
        sizes = 100 + 2 * np.arange(n_alleles) + 40 * locus % 120
        alleles[:, locus, :] = sizes[rng.choice(n_alleles, size=(n, 2), p=freqs[locus])]
    alleles[rng.random((n, n_loci)) < missing] = -1
    ids = np.char.add(prefix, np.arange(n).astype(str)).astype(object)
    return GenotypeTable(alleles, ids, [f"STR{k + 1}" for k in range(n_loci)])


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
