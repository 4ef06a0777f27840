"""matching.contamination: locus states, control rules, the same-source screen and the replicate
consensus, against genotypes worked out by hand."""

from __future__ import annotations

import pytest

from matching.contamination import (
    check_blank,
    check_positive_control,
    compare,
    consensus,
    locus_state,
    same_source,
    screen_loci,
)


def test_locus_states():
    assert locus_state([152, 156], [156, 152]) == "identical"
    assert locus_state([152, 152], [152, 156]) == "dropout-compatible"
    assert locus_state([152, 156], [156, 156]) == "dropout-compatible"
    assert locus_state([152, 156], [152, 160]) == "different"
    assert locus_state([150, 150], [152, 152]) == "different"


def test_compare_uses_only_loci_typed_in_both():
    first = {"A": [1, 2], "B": [3, 3], "C": [5, 6]}
    second = {"A": [1, 2], "B": [3, 4], "D": [7, 8]}
    result = compare(first, second)
    assert (result.identical, result.dropout_compatible, result.different) == (("A",), ("B",), ())
    assert result.loci_compared == 2


def test_same_source_needs_enough_loci_and_no_difference():
    genotype = {f"L{i}": [100 + i, 110 + i] for i in range(8)}
    assert same_source(genotype, dict(genotype), min_loci=6)
    assert not same_source(genotype, {k: genotype[k] for k in ("L0", "L1")}, min_loci=6)
    assert not same_source(genotype, {**genotype, "L3": [1, 2]}, min_loci=6)
    assert screen_loci(4) == 4 and screen_loci(16) == 6


def test_controls():
    expected = {"A": [1, 2], "B": [3, 4]}
    assert check_positive_control(expected, {"A": [2, 1], "B": [3, 4]}).passed
    failed = check_positive_control(expected, {"A": [1, 2], "C": [9, 9]})
    assert failed.problems == ("B: expected 3/4, not typed",
                               "C: typed 9/9, not in the expected genotype")
    assert check_blank({"A": []}).passed
    assert check_blank({"A": ["OL"]}).problems == ("A: alleles OL",)


def test_consensus_keeps_loci_typed_alike_at_least_twice():
    result = consensus([{"A": [1, 2], "B": [3, 3], "C": [5, 6]},
                        {"A": [2, 1], "B": [3, 4]},
                        {"A": [1, 2], "D": [7, 8]}])
    assert result.genotype == {"A": [1, 2]}
    assert result.left_out == {"B": "typed differently: 3/3, 3/4",
                               "C": "typed in one replicate only",
                               "D": "typed in one replicate only"}
    with pytest.raises(ValueError):
        consensus([{"A": [1, 2]}])
