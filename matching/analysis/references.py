"""Reference sets in an analysis: several combined into one (population names another set
shares qualified with their set), and the set whose allele frequencies and θ weigh each
subject profile's match statistics (:func:`frequency_groups`).

The frequencies of a subject profile's likelihood ratios and match probabilities are those of
the reference set it is assigned to: a savanna elephant tusk is scored with savanna
frequencies even when the forest set is chosen too, and the result says which set was used
for which profiles, and why (:func:`frequencies_record`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from dnatrack import __version__
from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel
from dnatrack.reference import PopulationInfo, ReferenceSet
from matching.assignment import AssignmentModel
from matching.theta import ThetaChoice


def shared_loci(references: Sequence[ReferenceSet], panel: Panel | None = None) -> list[str]:
    """The loci every reference set has (and ``panel``, when given), in the first set's
    order."""
    return [locus for locus in references[0].table.loci
            if (panel is None or locus in panel)
            and all(locus in r.table.loci for r in references)]


def combined_population_names(references: Sequence[ReferenceSet]) -> list[dict[str, str]]:
    """Per set, each population's name in the combined set: its own name, or ``"name (set)"``
    where another chosen set has a population of that name (the black and white rhino sets
    both sample Hluhluwe-iMfolozi), so that the two stay two populations."""
    counts = Counter(p.name for reference in references for p in reference.populations)
    return [{p.name: f"{p.name} ({reference.name})" if counts[p.name] > 1 else p.name
             for p in reference.populations} for reference in references]


def combine_references(references: Sequence[ReferenceSet], loci: Sequence[str]) -> ReferenceSet:
    """One reference set of several (at ``loci``) for population and geographic assignment.

    A population name that two sets share is qualified with each set's name
    (:func:`combined_population_names`); animal ids are prefixed with their set's name when
    more than one set is combined, so they stay unique.
    """
    if len(references) == 1:
        reference = references[0]
        if tuple(loci) == tuple(reference.table.loci):
            return reference
        return dataclasses.replace(reference, table=reference.table.select_loci(loci))
    names = combined_population_names(references)
    tables = []
    populations: list[PopulationInfo] = []
    for reference, renamed in zip(references, names, strict=True):
        table = reference.table.select_loci(loci)
        tables.append(table.replace(
            profile_ids=[f"{reference.name}:{pid}" for pid in table.profile_ids],
            population=[renamed[population] for population in table.population]))
        populations.extend(dataclasses.replace(population, name=renamed[population.name])
                           for population in reference.populations)
    levels = [set(reference.repunit_levels) for reference in references]
    first_level = references[0].default_repunit_level
    return ReferenceSet(
        name=" + ".join(reference.name for reference in references),
        species=" / ".join(dict.fromkeys(reference.species for reference in references)),
        table=GenotypeTable.concat(tables),
        populations=tuple(populations),
        version=" + ".join(reference.version for reference in references),
        panel=references[0].panel,
        simulated=any(reference.simulated for reference in references),
        description="Combined reference sets: "
        + "; ".join(reference.citation() for reference in references),
        default_repunit_level=first_level if all(first_level in lv for lv in levels) else None,
    )


def assignment_model(references: Sequence[ReferenceSet], loci: Sequence[str] | None = None,
                     repunit_level: str | None = None
                     ) -> tuple[AssignmentModel, ReferenceSet]:
    """The population-assignment model of :func:`matching.analysis.analyse` (the stage
    ``dnatrack assign`` and ``self-assign`` run): the reference sets combined at ``loci``
    (default the loci they all have; :func:`combine_references`), with their reporting units
    at ``repunit_level`` (default the combined set's). Returns the model and the combined
    set."""
    combined = combine_references(references, shared_loci(references) if loci is None
                                  else loci)
    return AssignmentModel.from_reference(combined, repunit_level), combined


def reference_record(reference: ReferenceSet) -> dict:
    return {
        "name": reference.name,
        "version": reference.version,
        "species": reference.species,
        "panel": reference.panel,
        "simulated": reference.simulated,
        "content_hash": reference.content_hash,
        "animals": int(reference.table.n_profiles),
        "populations": len(reference.populations),
        "description": reference.description,
    }


def panel_record(panel: Panel | None, loci: Sequence[str]) -> dict | None:
    from matching.analysis.result import canonical_json

    if panel is None:
        return None
    definition = dataclasses.asdict(panel)
    return {
        "name": panel.name,
        "species": panel.species,
        "loci_used": list(loci),
        "content_hash": hashlib.sha256(canonical_json(definition)).hexdigest(),
        "description": panel.description,
    }


def software_versions() -> dict[str, str]:
    return {
        "dnatrack": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


# ----------------------------------------------------------------------------- frequencies
#: A profile assigned to its reference set with a lower posterior probability than this is
#: named in the caveats: the frequencies its match statistics use rest on an uncertain call.
CONFIDENT_SET_POSTERIOR = 0.99


@dataclass(frozen=True, eq=False)
class FrequencyGroup:
    """Subject profiles whose match statistics use one reference set's allele frequencies and θ.

    Attributes
    ----------
    reference : ReferenceSet
    theta : ThetaChoice
        θ for ``reference``'s species (or the request's override).
    rows : ndarray of int64, shape (n,)
        Rows of the subject's table assigned to ``reference``.
    posterior : ndarray of float64, shape (n,)
        Each row's posterior probability of coming from ``reference`` rather than from another
        chosen set (1 when only one set was chosen).
    """

    reference: ReferenceSet
    theta: ThetaChoice
    rows: np.ndarray
    posterior: np.ndarray


def reference_set_posterior(references: Sequence[ReferenceSet], loci: Sequence[str],
                            samples: GenotypeTable) -> np.ndarray:
    """Posterior probability of each sample coming from each reference set, float64
    (n_samples, n_sets).

    Each set's likelihood is the mean of its populations' (Rannala & Mountain, DESIGN 5.5,
    over the sets combined), and the sets have equal priors, so a set with more populations is
    not favoured for that alone.
    """
    combined = combine_references(references, loci)
    set_of = {name: k for k, renamed in enumerate(combined_population_names(references))
              for name in renamed.values()}
    model = AssignmentModel.from_table(
        combined.table, {population: references[k].name for population, k in set_of.items()},
        name=combined.name)
    log_likelihood = model.log_likelihoods(model.encode(samples))
    members = np.array([set_of[population] for population in model.populations])
    per_set = np.stack([
        np.logaddexp.reduce(log_likelihood[:, members == k], axis=1) - np.log(np.sum(members == k))
        for k in range(len(references))
    ], axis=1)
    weights = np.exp(per_set - per_set.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def frequency_groups(references: Sequence[ReferenceSet], loci: Sequence[str],
                     subject: GenotypeTable, theta_override: float | str | None
                     ) -> list[FrequencyGroup]:
    """The reference set whose allele frequencies and θ each subject profile's match statistics
    use: the set the profile is assigned to (:func:`reference_set_posterior`), whatever order
    the sets were chosen in — forest elephant frequencies applied to savanna elephants make
    shared alleles look rarer than they are and unrelated animals look related.

    Groups follow the order of ``references``; a set no profile is assigned to has none.
    """
    from matching.pair_search import theta_for

    if len(references) == 1:
        reference = references[0]
        return [FrequencyGroup(reference, theta_for(reference, theta_override),
                               np.arange(len(subject)), np.ones(len(subject)))]
    posterior = reference_set_posterior(references, loci, subject)
    assigned = np.argmax(posterior, axis=1)
    groups = []
    for k, reference in enumerate(references):
        rows = np.flatnonzero(assigned == k)
        if len(rows):
            groups.append(FrequencyGroup(reference, theta_for(reference, theta_override),
                                         rows, posterior[rows, k]))
    return groups


def percent(fraction: float) -> str:
    """A posterior probability as a percentage that never rounds up to a certain 100%."""
    return "above 99.99%" if fraction > 0.9999 else f"{100 * fraction:.2f}%"


def frequencies_record(groups: Sequence[FrequencyGroup], references: Sequence[ReferenceSet],
                        subject: GenotypeTable) -> dict:
    """Which reference set supplied the frequencies and θ of which profiles' statistics, and
    why (``statement``, printed in reports)."""
    ids = [str(pid) for pid in subject.profile_ids]
    several = len(references) > 1
    sets = [{
        "reference": group.reference.name,
        "species": group.reference.species,
        "theta": group.theta.value,
        "theta_source": group.theta.source,
        "samples": [ids[row] for row in group.rows],
        "lowest_posterior": float(group.posterior.min()) if several else None,
    } for group in groups]
    uncertain = [
        {"barcode": ids[row], "reference": group.reference.name, "posterior": float(posterior)}
        for group in groups for row, posterior in zip(group.rows, group.posterior, strict=True)
        if posterior < CONFIDENT_SET_POSTERIOR
    ]
    if not several:
        [chosen] = sets
        statement = (f"Allele frequencies and θ of reference set {chosen['reference']} "
                     f"({chosen['species']}), the only set chosen.")
    elif len(sets) == 1:
        [chosen] = sets
        rest = ", ".join(r.name for r in references if r.name != chosen["reference"])
        statement = (
            f"Allele frequencies and θ of reference set {chosen['reference']} "
            f"({chosen['species']}): all {len(ids)} profiles of the subject are assigned to "
            f"it rather than to {rest} (lowest posterior probability "
            f"{percent(chosen['lowest_posterior'])}, equal priors for the sets).")
    else:
        shares = ", ".join(f"{len(s['samples'])} to {s['reference']} ({s['species']})"
                           for s in sets)
        statement = (
            f"The subject's profiles are assigned to {len(sets)} reference sets: {shares}. "
            "Each profile's pairs use the allele frequencies and θ of the set it is assigned "
            "to; a pair of two profiles assigned to different sets is computed with both and "
            "reported only when both support it, with the lower likelihood ratio.")
    return {"statement": statement, "sets": sets, "uncertain": uncertain}


