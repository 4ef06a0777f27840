"""A stored result as reports and pages show it: the numbers of
:class:`matching.analysis.AnalysisResult` with the words a reader needs.

:func:`present` reads a stored result of any layout (:meth:`AnalysisResult.from_json` upgrades
older ones, so a report on an older request can still be drafted or amended) and adds to each
pair its relationship's label, the LR and match probability as text, the ENFSI verbal
equivalent and conclusion with its two propositions, and genotypes as ``230/238``; link counts
are keyed by the relationship's label; the scope of the search gets a statement. The stored
result itself stays words-free.
"""

from __future__ import annotations

from lims.reports.wording import (
    RELATIONSHIP_LABELS,
    format_decimal,
    format_likelihood_ratio,
    genotype_text,
    propositions,
    verbal_equivalent,
)
from matching.analysis import upgrade


def _pair_words(pair: dict) -> dict:
    pair = {**pair, "relationship_label": RELATIONSHIP_LABELS[pair["relationship"]]}
    if not pair["visible"]:
        return pair
    log10_lr, rmp = pair.get("log10_lr"), pair.get("rmp")
    verbal = None if log10_lr is None else verbal_equivalent(log10_lr)
    stated = propositions(pair["relationship"], f"{pair['sample1']} ({pair['origin1']})",
                          f"{pair['sample2']} ({pair['origin2']})", pair.get("species") or "")
    pair.update(
        lr_text=None if log10_lr is None else format_likelihood_ratio(log10_lr),
        verbal=None if verbal is None else verbal.words,
        conclusion=None if verbal is None else verbal.sentence(stated["first"],
                                                               stated["second"]),
        propositions=stated,
        rmp_text=None if rmp is None else format_decimal(rmp),
        one_in_text=None if rmp is None else format_decimal(1.0 / rmp),
        loci=[{**locus, "genotype1": genotype_text(locus.get("alleles1")),
               "genotype2": genotype_text(locus.get("alleles2"))}
              for locus in pair.get("loci") or []],
    )
    return pair


def scope_statement(scope: dict | None, cutoffs: bool = True) -> str | None:
    """How much the search compared and the cutoffs that applied, in one paragraph
    (without the cutoffs' values when ``cutoffs`` is false: a hit notification gives no
    likelihood ratios)."""
    if not scope:
        return None
    words = [
        f"{scope['subject_profiles']:,} subject profile(s) were compared with each other and "
        f"with {scope['background_profiles']:,} other profile(s): "
        f"{scope['pairs_compared']:,} pairs, each reported only with at least "
        f"{scope['min_loci']} loci compared."]
    thresholds = scope.get("thresholds") or {}
    for reference, by_relationship in (thresholds if cutoffs else {}).items():
        parts = []
        for relationship, threshold in by_relationship.items():
            low, high = threshold.get("lowest"), threshold.get("highest")
            if low is None:
                continue
            span = f"{low:.2f}" if abs(high - low) < 0.005 else f"{high:.2f} to {low:.2f}"
            parts.append(f"{RELATIONSHIP_LABELS.get(relationship, relationship)} {span}")
        if parts:
            words.append(
                (f"Kinship cutoffs ({reference})" if len(thresholds) > 1 else "Kinship cutoffs")
                + ", log10 LR by loci compared (fewest to most): " + "; ".join(parts) + ".")
    if thresholds:
        expected = scope.get("expected_false_pairs")
        words.append(
            "The cutoffs are calibrated for the number of pairs compared"
            + (f" (at most {expected:g} unrelated pair expected among them)" if expected
               else "")
            + ": a search over more pairs (a whole case rather than one seizure) sets them "
            "higher and may report fewer relatives of the same link.")
    identity = scope.get("identity")
    if identity:
        words.append(f"Identity search at {identity.get('stringency')} stringency.")
    return " ".join(words)


def present(result: dict | None) -> dict | None:
    """``result`` (stored, any readable layout) with the words reports show."""
    if result is None:
        return None
    result = upgrade(result)
    shown = dict(result)
    shown["pairs"] = [_pair_words(pair) for pair in result.get("pairs") or []]
    shown["links"] = [
        {**link, "relationships": {RELATIONSHIP_LABELS.get(r, r): n
                                   for r, n in link["relationships"].items()}}
        for link in result.get("links") or []]
    if result.get("scope"):
        shown["scope"] = {**result["scope"],
                          "statement": scope_statement(result["scope"]),
                          "summary": scope_statement(result["scope"], cutoffs=False)}
    return shown
