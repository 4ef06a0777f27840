"""Seizure links: matching pairs of samples become edges between seizures (DESIGN 5.4).

Two seizures are linked when at least one sample of one matches (same animal) or is related to
a sample of the other. Each edge keeps its evidence — the pairs, their relationship and LR — and
says whether a same-animal match is among them. Connected components of the seizure graph are
candidate trafficking networks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass
class SeizureLink:
    """All evidence linking two seizures (``seizure1 < seizure2``)."""

    seizure1: str
    seizure2: str
    pairs: list[dict] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def relationships(self) -> dict[str, int]:
        return dict(Counter(pair["relationship"] for pair in self.pairs))

    @property
    def same_animal(self) -> bool:
        """True when a pair called the same animal is among the pairs (an identity candidate
        that was not called one is not a pair here)."""
        return any(pair["relationship"] == "same_animal" for pair in self.pairs)

    @property
    def max_log10_lr(self) -> float | None:
        values = [pair["log10_lr"] for pair in self.pairs
                  if pair.get("log10_lr") not in (None, "")]
        return max(values) if values else None

    @property
    def weight(self) -> float:
        """Summed log10 LR of the linking pairs (pairs without an LR count as 0)."""
        return sum(pair.get("log10_lr") or 0.0 for pair in self.pairs)

    def as_dict(self) -> dict:
        return {
            "seizure1": self.seizure1,
            "seizure2": self.seizure2,
            "n_pairs": self.n_pairs,
            "same_animal": self.same_animal,
            "relationships": self.relationships,
            "max_log10_lr": self.max_log10_lr,
            "weight": self.weight,
            "pairs": self.pairs,
        }


@dataclass
class SeizureGraph:
    """Seizures as nodes, :class:`SeizureLink` edges, and the connected components."""

    links: list[SeizureLink]
    components: list[list[str]]
    within_seizure: list[dict]

    def as_dict(self) -> dict:
        return {
            "links": [link.as_dict() for link in self.links],
            "components": self.components,
            "within_seizure_pairs": self.within_seizure,
        }

    def link_rows(self) -> list[dict]:
        """One flat row per edge for a CSV."""
        component_of = {s: k for k, members in enumerate(self.components) for s in members}
        return [
            {
                "seizure1": link.seizure1,
                "seizure2": link.seizure2,
                "n_pairs": link.n_pairs,
                "same_animal": link.same_animal,
                "relationships": ";".join(f"{r}:{n}" for r, n in
                                          sorted(link.relationships.items())),
                "max_log10_lr": "" if link.max_log10_lr is None else link.max_log10_lr,
                "weight": round(link.weight, 6),
                "component": component_of[link.seizure1],
            }
            for link in self.links
        ]


def link_seizures(pairs: Iterable[Mapping], seizure_of: Mapping[str, str]) -> SeizureGraph:
    """Build the seizure graph from matching pairs.

    Parameters
    ----------
    pairs : iterable of mappings
        Each with ``sample1``, ``sample2``, ``relationship`` and optionally ``log10_lr`` (the
        rows a search writes).
    seizure_of : mapping of str to str
        Seizure of every sample named in ``pairs``.

    Returns
    -------
    SeizureGraph
        Edges sorted by seizure names; components (of two or more seizures) sorted by size
        then name; pairs inside one seizure listed apart.
    """
    edges: dict[tuple[str, str], SeizureLink] = {}
    within = []
    for pair in pairs:
        record = dict(pair)
        try:
            s1, s2 = seizure_of[record["sample1"]], seizure_of[record["sample2"]]
        except KeyError as missing:
            raise ValueError(f"no seizure known for sample {missing.args[0]!r}") from None
        if s1 == s2:
            within.append({**record, "seizure": s1})
            continue
        key = (s1, s2) if s1 < s2 else (s2, s1)
        edges.setdefault(key, SeizureLink(*key)).pairs.append(record)

    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for s1, s2 in edges:
        parent[root(s1)] = root(s2)
    groups: dict[str, list[str]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    components = sorted((sorted(members) for members in groups.values()),
                        key=lambda members: (-len(members), members[0]))
    return SeizureGraph([edges[key] for key in sorted(edges)], components, within)
