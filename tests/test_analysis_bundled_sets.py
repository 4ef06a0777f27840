"""Every combination of bundled reference sets the request form preselects (all the sets of
one panel) runs every analysis through :func:`matching.analysis.analyse`, with each subject
profile weighed by the set it comes from.

The subject is a few animals of every set of the panel (held out of nothing: the point is that
the run succeeds and keeps the sets apart, not its power); small simulation counts keep it
fast.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import load_panel
from dnatrack.reference import load_reference_set
from matching.analysis import ANALYSES, AnalysisResult, AnalysisSettings, analyse
from reference_data import list_reference_sets, reference_set_path

FAST = AnalysisSettings(exclusion_simulations=0, mixture_sweeps=20, mixture_burn_in=5,
                        geo_cells=8)


def preselected_combinations() -> list[tuple[str, ...]]:
    """The sets the request form preselects for a subject on each panel: all of that panel's."""
    by_panel = defaultdict(list)
    for name in list_reference_sets():
        by_panel[load_reference_set(name).panel].append(name)
    return [tuple(names) for _, names in sorted(by_panel.items())]


def test_every_bundled_set_is_in_a_preselected_combination():
    combinations = preselected_combinations()
    assert sorted(n for names in combinations for n in names) == sorted(list_reference_sets())
    assert any(len(names) > 1 for names in combinations)


@pytest.mark.parametrize("names", preselected_combinations(), ids="+".join)
def test_a_preselected_combination_runs_every_analysis(names):
    references = [load_reference_set(name) for name in names]
    panel = load_panel(references[0].panel)
    # Three animals of each set, ids made unique across sets, and grouped into one seizure
    # per set.
    picked = [reference.table.take(np.arange(3)).replace(
        profile_ids=[f"{reference.name}:{pid}" for pid in reference.table.take(
            np.arange(3)).profile_ids], population=None, repunit=None, group=None)
        for reference in references]
    loci = [locus for locus in references[0].table.loci
            if all(locus in r.table.loci for r in references)]
    subject = GenotypeTable.concat([table.select_loci(loci) for table in picked])
    result = analyse(subject, None, references, analyses=ANALYSES, settings=FAST,
                     panel=panel,
                     reference_folder=lambda reference: reference_set_path(reference.name))
    stored = result.to_json()
    assert AnalysisResult.from_json(stored).to_json() == stored
    # Each set's animals are weighed with their own set's frequencies.
    used = {sample: entry["reference"] for entry in stored["frequencies"]["sets"]
            for sample in entry["samples"]}
    assert used == {pid: pid.split(":")[0] for pid in subject.profile_ids}
    assert [row["barcode"] for row in stored["assignment"]["rows"]] == list(subject.profile_ids)
    assert len(stored["mixture"]) == len(stored["geographic"]["surfaces"]) == len(subject)
    assert stored["scope"]["pairs_compared"] == len(subject) * (len(subject) - 1) // 2
    # The power stated for each set is for the pairs it compares, weighed by their loci typed
    # in both profiles: never above the power at all loci.
    assert set(stored["kinship_power"]) == set(names)
    for power in stored["kinship_power"].values():
        for row in power.values():
            assert 0 < row["mean_loci_compared"] <= len(loci)
            assert row["power"] <= row["power_at_all_loci"] + 1e-12
