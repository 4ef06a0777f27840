"""θ (F_ST, the co-ancestry coefficient) from a reference set, or a user override (DESIGN 5.1).

The estimate is Weir & Cockerham's (1984) θ over the populations of a genotype table: for
every allele ``u`` of every locus ``l`` the variance components ``a`` (between populations),
``b`` (between animals within populations) and ``c`` (between the two genes of an animal) come
from scikit-allel's :func:`allel.weir_cockerham_fst`, and

    θ = Σ_l Σ_u a / Σ_l Σ_u (a + b + c),

with per-locus values ``Σ_u a / Σ_u (a + b + c)`` and a jackknife standard error over loci.

Match and kinship statistics need one θ. :func:`select_theta` returns a user's override when
there is one (a number, or a species with a published value in :data:`PUBLISHED_THETA`), and
otherwise the estimate, with a line saying where the value came from for reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dnatrack.genotypes import AlleleCoding, GenotypeTable

#: Published θ for wildlife forensic work (DESIGN 5.1), keyed by normalised species name.
PUBLISHED_THETA: dict[str, float] = {
    "savanna elephant": 0.047,
    "forest elephant": 0.059,
    "rhino": 0.1,
}

_SPECIES_ALIASES: dict[str, str] = {
    "african savanna elephant": "savanna elephant",
    "savannah elephant": "savanna elephant",
    "loxodonta africana": "savanna elephant",
    "african forest elephant": "forest elephant",
    "loxodonta cyclotis": "forest elephant",
    "white rhino": "rhino",
    "black rhino": "rhino",
    "ceratotherium simum": "rhino",
    "diceros bicornis": "rhino",
}


class ThetaNotEstimable(ValueError):
    """The genotypes cannot give a θ estimate (no population labels, one population, or no
    locus that is polymorphic and typed in two or more populations)."""


def _normalise_species(species: str) -> str:
    words = species.replace("_", " ").replace("-", " ").lower().split()
    name = " ".join(words)
    return _SPECIES_ALIASES.get(name, name)


def published_theta(species: str) -> float:
    """The published θ for ``species`` (case, ``_`` and ``-`` do not matter).

    >>> published_theta("Savanna_elephant")
    0.047
    """
    name = _normalise_species(species)
    try:
        return PUBLISHED_THETA[name]
    except KeyError:
        raise ValueError(
            f"no published θ for species {species!r}; known: {', '.join(PUBLISHED_THETA)}"
        ) from None


@dataclass(frozen=True, eq=False)
class ThetaEstimate:
    """Weir & Cockerham's θ over the populations of a genotype table.

    Attributes
    ----------
    theta : float
        ``Σa / Σ(a + b + c)`` over the estimable loci and all their alleles. May be negative
        (no detectable differentiation).
    standard_error : float
        Jackknife standard error over estimable loci (leave one locus out); NaN with fewer than
        two estimable loci.
    loci : tuple of str
    populations : tuple of str
        The populations compared.
    components : ndarray of float64, shape (n_loci, 3)
        ``a``, ``b`` and ``c`` summed over the alleles of each locus; NaN rows for loci typed
        in fewer than two populations or with too few animals for the estimator.
    """

    theta: float
    standard_error: float
    loci: tuple[str, ...]
    populations: tuple[str, ...]
    components: np.ndarray

    @property
    def estimable(self) -> np.ndarray:
        """Bool (n_loci,): loci that enter θ (finite components, polymorphic)."""
        return _estimable(self.components)

    @property
    def per_locus(self) -> np.ndarray:
        """θ of each locus, float64 (n_loci,); NaN where the locus is not estimable."""
        total = self.components.sum(axis=1)
        return np.divide(
            self.components[:, 0], total, out=np.full(len(self.loci), np.nan),
            where=self.estimable,
        )

    def rows(self) -> list[dict]:
        """One dict per locus: ``locus, theta, a, b, c`` (``None`` where not estimable)."""
        return [
            {
                "locus": locus,
                "theta": _finite_or_none(value),
                "a": _finite_or_none(a),
                "b": _finite_or_none(b),
                "c": _finite_or_none(c),
            }
            for locus, value, (a, b, c) in zip(
                self.loci, self.per_locus, self.components, strict=True
            )
        ]

    def to_dict(self) -> dict:
        return {
            "estimator": "Weir & Cockerham (1984)",
            "theta": self.theta,
            "standard_error": _finite_or_none(self.standard_error),
            "populations": list(self.populations),
            "loci_used": int(self.estimable.sum()),
            "per_locus": self.rows(),
        }


def _estimable(components: np.ndarray) -> np.ndarray:
    total = components.sum(axis=1)
    return np.isfinite(total) & (total != 0)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def weir_cockerham_theta(table: GenotypeTable) -> ThetaEstimate:
    """Weir & Cockerham's (1984) θ over the populations of ``table``.

    Parameters
    ----------
    table : GenotypeTable
        Genotypes with ``population`` labels; profiles with an empty label (e.g. mixture
        samples) are left out. A population with no animal typed at a locus is left out at
        that locus only.

    Returns
    -------
    ThetaEstimate

    Raises
    ------
    ThetaNotEstimable
        No population labels, fewer than two populations, or no locus that is polymorphic and
        typed in at least two populations.
    """
    import allel

    if table.population is None:
        raise ThetaNotEstimable("θ needs population labels; the genotypes have none")
    populations = [p for p in table.unique_populations() if p]
    if len(populations) < 2:
        raise ThetaNotEstimable(
            f"θ needs at least 2 populations; the genotypes have {len(populations)}"
            + (f" ({populations[0]!r})" if populations else "")
        )
    members = [np.flatnonzero(table.population == p) for p in populations]
    coding = AlleleCoding.from_tables(table)
    genotypes = np.asarray(table.to_allel(coding))
    max_allele = max(coding.max_alleles - 1, 0)

    typed_in = np.stack([table.typed[rows].any(axis=0) for rows in members])
    components = np.full((table.n_loci, 3), np.nan)
    # allel's estimator counts every population it is given, so loci are grouped by which
    # populations have typed animals there and each group gets only those populations.
    patterns, group_of_locus = np.unique(typed_in.T, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        if pattern.sum() < 2:
            continue
        loci = np.flatnonzero(group_of_locus.ravel() == k)
        subpops = [members[i] for i in np.flatnonzero(pattern)]
        # Loci with one animal per population divide by n̄ − 1 = 0; they come out non-finite
        # and are treated as not estimable below.
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b, c = allel.weir_cockerham_fst(genotypes[loci], subpops, max_allele=max_allele)
        components[loci] = np.stack([a.sum(axis=1), b.sum(axis=1), c.sum(axis=1)], axis=1)
    components[~np.isfinite(components).all(axis=1)] = np.nan

    used = _estimable(components)
    if not used.any():
        raise ThetaNotEstimable(
            "θ cannot be estimated: no locus is polymorphic and typed in two or more populations"
        )
    numerators = components[used, 0]
    denominators = components[used].sum(axis=1)
    theta, standard_error = _jackknife_ratio(numerators, denominators)
    return ThetaEstimate(theta, standard_error, table.loci, tuple(populations), components)


def _jackknife_ratio(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float]:
    """``Σ numerators / Σ denominators`` and its leave-one-out jackknife standard error."""
    theta = float(numerators.sum() / denominators.sum())
    n = len(numerators)
    if n < 2:
        return theta, math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        leave_one_out = (numerators.sum() - numerators) / (denominators.sum() - denominators)
    spread = ((leave_one_out - leave_one_out.mean()) ** 2).sum()
    return theta, float(math.sqrt((n - 1) / n * spread))


@dataclass(frozen=True)
class ThetaChoice:
    """The θ to use downstream and where it came from.

    Attributes
    ----------
    value : float
        In ``[0, 1)``.
    source : str
        For reports, e.g. ``"user override"`` or ``"Weir & Cockerham estimate over 21
        populations, standard error 0.0082"``.
    """

    value: float
    source: str

    def to_dict(self) -> dict:
        return {"value": self.value, "source": self.source}


def _checked_override(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"θ override must be in [0, 1), got {value}")
    return value


def select_theta(
    estimate_from: GenotypeTable | ThetaEstimate | None = None,
    override: float | str | None = None,
) -> ThetaChoice:
    """The override when given, otherwise the Weir & Cockerham estimate.

    Parameters
    ----------
    estimate_from : GenotypeTable or ThetaEstimate, optional
        Reference genotypes with populations (estimated here), or an estimate already made.
        Not needed when ``override`` is given.
    override : float or str, optional
        A θ in ``[0, 1)``, a string holding one (as from a command line), or a species name
        with a published value (:func:`published_theta`).

    Returns
    -------
    ThetaChoice
        A negative estimate (no detectable differentiation) is used as 0, since the NRC II and
        Balding–Nichols formulas need θ ≥ 0; the source line says so.

    Examples
    --------
    >>> select_theta(override="forest elephant")
    ThetaChoice(value=0.059, source='published value for forest elephant')
    """
    if override is not None:
        if isinstance(override, str):
            try:
                number = float(override)
            except ValueError:
                species = _normalise_species(override)
                return ThetaChoice(
                    published_theta(override), f"published value for {species}"
                )
            return ThetaChoice(_checked_override(number), "user override")
        return ThetaChoice(_checked_override(float(override)), "user override")
    if estimate_from is None:
        raise ValueError("give reference genotypes to estimate θ from, or a θ override")
    estimate = (
        estimate_from
        if isinstance(estimate_from, ThetaEstimate)
        else weir_cockerham_theta(estimate_from)
    )
    source = f"Weir & Cockerham estimate over {len(estimate.populations)} populations"
    if math.isfinite(estimate.standard_error):
        source += f", standard error {estimate.standard_error:.4f}"
    if estimate.theta < 0:
        return ThetaChoice(
            0.0, f"{source}; the estimate {estimate.theta:.4f} is negative and is used as 0"
        )
    return ThetaChoice(estimate.theta, source)
