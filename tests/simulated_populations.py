"""Small simulated populations with known allele frequencies, for the assignment tests.

Each population has, at each locus, allele frequencies drawn from a symmetric Dirichlet; animals
are two independent draws per locus (Hardy–Weinberg, linkage equilibrium), so the truth is known
exactly. Allele sizes are ``100 + 2·index`` so they look like STR sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnatrack.genotypes import GenotypeTable


@dataclass
class SimulatedPopulations:
    """Allele frequencies ``(n_populations, n_loci, n_alleles)`` with names and units."""

    frequencies: np.ndarray
    names: list[str]
    repunits: list[str]
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None

    @classmethod
    def random(
        cls,
        n_populations: int,
        n_loci: int,
        n_alleles: int,
        concentration: float = 1.0,
        seed: int = 0,
        populations_per_unit: int = 1,
    ) -> SimulatedPopulations:
        rng = np.random.default_rng(seed)
        frequencies = rng.dirichlet(
            np.full(n_alleles, concentration), size=(n_populations, n_loci)
        )
        names = [f"pop{k}" for k in range(n_populations)]
        units = [f"unit{k // populations_per_unit}" for k in range(n_populations)]
        return cls(frequencies, names, units)

    @property
    def loci(self) -> list[str]:
        return [f"L{j}" for j in range(self.frequencies.shape[1])]

    def sample(
        self,
        population: int,
        n: int,
        rng: np.random.Generator,
        missing: float = 0.0,
        prefix: str | None = None,
        label: bool = True,
    ) -> GenotypeTable:
        """``n`` animals of ``population``; each locus untyped with probability ``missing``."""
        freqs = self.frequencies[population]
        n_loci, n_alleles = freqs.shape
        alleles = np.empty((n, n_loci, 2), dtype=np.int64)
        for locus in range(n_loci):
            alleles[:, locus, :] = rng.choice(n_alleles, size=(n, 2), p=freqs[locus])
        alleles = 100 + 2 * alleles
        alleles[rng.random((n, n_loci)) < missing] = -1
        prefix = prefix or f"{self.names[population]}-"
        extra = {}
        if label:
            extra = {"population": [self.names[population]] * n,
                     "repunit": [self.repunits[population]] * n}
        if self.lat is not None and label:
            extra["lat"] = [self.lat[population]] * n
            extra["lon"] = [self.lon[population]] * n
        return GenotypeTable(alleles, [f"{prefix}{i}" for i in range(n)], self.loci, **extra)

    def reference(
        self,
        n_per_population: int | list[int],
        rng: np.random.Generator,
        missing: float = 0.0,
        populations: list[int] | None = None,
    ) -> GenotypeTable:
        """Reference animals of ``populations`` (all by default)."""
        populations = list(range(len(self.names))) if populations is None else populations
        sizes = (
            [n_per_population] * len(populations) if isinstance(n_per_population, int)
            else n_per_population
        )
        return GenotypeTable.concat(
            [self.sample(k, size, rng, missing) for k, size in zip(populations, sizes,
                                                                    strict=True)]
        )
