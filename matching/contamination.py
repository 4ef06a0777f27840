"""Quality checks of genotypes: controls, contamination screens, replicate consensus.

These are comparisons of single genotypes, locus by locus, as a laboratory's quality system
makes them before a profile is reviewed (ANSI/ASB 019, SWFS guidelines); no population
statistics are involved. Genotypes are ``{locus: [allele, allele]}`` with untyped loci absent
(the LIMS's stored form).

Per locus typed in both genotypes, two genotypes are

``identical``
    the same two alleles;
``dropout-compatible``
    one is a homozygote whose allele the other carries (``152/152`` against ``152/156``): a
    heterozygote whose second allele dropped out would look so;
``different``
    anything else.

Rules (documented here because the LIMS prints them):

- **Positive control**: every locus of the expected genotype is typed and identical; anything
  else (a locus missing, a different or an extra allele) fails the control.
- **Blank** (negative, PCR or extraction blank): any allele at any locus fails it.
- **Same-source screen** (:func:`same_source`): no locus is different and at least
  ``min_loci`` loci are compared; dropout-compatible loci do not clear a pair, since a screen
  for contamination must rather flag too much than too little. The default ``min_loci`` is
  :data:`DEFAULT_SCREEN_LOCI`, or every locus of the panel when it has fewer.
- **Replicate consensus** (:func:`consensus`): a locus enters the consensus with a genotype seen
  identically in at least two replicates and no replicate typed differently there; a locus
  typed in one replicate only, or typed differently (dropout-compatible included), is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Genotype = Mapping[str, Sequence[int]]

#: Loci a same-source screen needs compared (fewer on a panel with fewer loci).
DEFAULT_SCREEN_LOCI = 6

CONSENSUS_RULE = (
    "a locus is in the consensus with a genotype typed identically in at least two replicates "
    "and typed differently in none; other loci are left untyped"
)


def _pair(alleles: Sequence[int]) -> tuple[int, int]:
    a, b = sorted(int(allele) for allele in alleles)
    return a, b


def locus_state(first: Sequence[int], second: Sequence[int]) -> str:
    """``'identical'``, ``'dropout-compatible'`` or ``'different'`` for two typed loci."""
    a, b = _pair(first), _pair(second)
    if a == b:
        return "identical"
    if (a[0] == a[1] and a[0] in b) or (b[0] == b[1] and b[0] in a):
        return "dropout-compatible"
    return "different"


@dataclass(frozen=True)
class Comparison:
    """Two genotypes compared over the loci typed in both."""

    identical: tuple[str, ...] = ()
    dropout_compatible: tuple[str, ...] = ()
    different: tuple[str, ...] = ()

    @property
    def loci_compared(self) -> int:
        return len(self.identical) + len(self.dropout_compatible) + len(self.different)

    def as_dict(self) -> dict:
        return {
            "loci_compared": self.loci_compared,
            "identical": list(self.identical),
            "dropout_compatible": list(self.dropout_compatible),
            "different": list(self.different),
        }


def compare(first: Genotype, second: Genotype) -> Comparison:
    """Compare two genotypes at the loci typed in both (in ``first``'s order)."""
    states: dict[str, list[str]] = {"identical": [], "dropout-compatible": [], "different": []}
    for locus, alleles in first.items():
        other = second.get(locus)
        if alleles and other:
            states[locus_state(alleles, other)].append(locus)
    return Comparison(
        tuple(states["identical"]), tuple(states["dropout-compatible"]),
        tuple(states["different"]),
    )


def screen_loci(n_panel_loci: int, min_loci: int = DEFAULT_SCREEN_LOCI) -> int:
    """Loci a same-source screen needs on a panel of ``n_panel_loci`` loci."""
    return max(1, min(min_loci, n_panel_loci))


def same_source(first: Genotype, second: Genotype, *, min_loci: int) -> bool:
    """Whether two genotypes may come from one source: no different locus and at least
    ``min_loci`` loci compared."""
    result = compare(first, second)
    return not result.different and result.loci_compared >= min_loci


@dataclass(frozen=True)
class ControlCheck:
    """A control's verdict: ``passed`` and, when not, one problem per locus at fault."""

    passed: bool
    problems: tuple[str, ...] = field(default_factory=tuple)


def _text(alleles: Sequence[int] | None) -> str:
    return "untyped" if not alleles else "/".join(str(a) for a in alleles)


def check_positive_control(expected: Genotype, observed: Genotype) -> ControlCheck:
    """A positive control against its expected genotype (rule in the module docstring)."""
    problems = []
    for locus, alleles in expected.items():
        seen = observed.get(locus)
        if not seen:
            problems.append(f"{locus}: expected {_text(alleles)}, not typed")
        elif _pair(seen) != _pair(alleles):
            problems.append(f"{locus}: expected {_text(alleles)}, typed {_text(seen)}")
    for locus, seen in observed.items():
        if locus not in expected and seen:
            problems.append(f"{locus}: typed {_text(seen)}, not in the expected genotype")
    return ControlCheck(not problems, tuple(problems))


def check_blank(observed: Mapping[str, Sequence]) -> ControlCheck:
    """A blank: any allele called at any locus fails it (alleles may be bin labels, e.g.
    ``OL``, which are peaks too)."""
    problems = tuple(
        f"{locus}: alleles {'/'.join(str(a) for a in alleles)}"
        for locus, alleles in observed.items() if alleles
    )
    return ControlCheck(not problems, problems)


@dataclass(frozen=True)
class Consensus:
    """The consensus of replicate genotypes and the loci left out of it, with why."""

    genotype: dict[str, list[int]]
    left_out: dict[str, str]
    rule: str = CONSENSUS_RULE


def consensus(replicates: Sequence[Genotype]) -> Consensus:
    """The consensus of two or more replicate genotypes of one sample (rule:
    :data:`CONSENSUS_RULE`)."""
    if len(replicates) < 2:
        raise ValueError("a consensus needs at least two replicates")
    loci: list[str] = []
    for replicate in replicates:
        loci += [locus for locus in replicate if locus not in loci]
    genotype: dict[str, list[int]] = {}
    left_out: dict[str, str] = {}
    for locus in loci:
        calls = [_pair(replicate[locus]) for replicate in replicates if replicate.get(locus)]
        distinct = set(calls)
        if len(distinct) > 1:
            left_out[locus] = "typed differently: " + ", ".join(
                sorted(f"{a}/{b}" for a, b in distinct))
        elif len(calls) < 2:
            left_out[locus] = "typed in one replicate only"
        else:
            genotype[locus] = list(calls[0])
    return Consensus(genotype, left_out)
