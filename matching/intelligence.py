"""Statistics over coded seizure records: counts over time by commodity and weight class,
country roles in the trade chain, and a Ward clustering of those roles.

Inputs are plain :class:`SeizureFacts`; the LIMS decides which seizures a user may count
(need-to-know) before calling these functions. Raw seizure counts reflect law-enforcement
effort and reporting as much as trafficking: every result says how many seizures and which
years it rests on, and :data:`COUNTS_CAVEAT` says so in words.

Country roles follow ETIS's framing (Underwood et al., ETIS analyses for CITES CoP): a
country's seizures *in* are those made in it; its seizures *out* are those made elsewhere whose
trade chain (origin, export, transit, destination) names it. The law-enforcement ratio is
``in / (in + out)``. The clustering uses counts split at 500 kg (ETIS's class cut for large
seizures) and weights in and out, each taken as ``log1p`` and standardised, then Ward linkage.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

COUNTS_CAVEAT = (
    "Raw seizure counts are not trends in trafficking: they reflect where and how hard "
    "agencies look and what they report as much as the trade itself."
)
#: Weight classes of a seizure (kg, lower bound inclusive), as ETIS groups raw ivory.
WEIGHT_CLASSES = (
    ("< 10 kg", 0.0, 10.0),
    ("10 to < 100 kg", 10.0, 100.0),
    ("100 to < 500 kg", 100.0, 500.0),
    ("500 to < 1,000 kg", 500.0, 1000.0),
    (">= 1,000 kg", 1000.0, math.inf),
)
UNKNOWN_WEIGHT = "weight unknown"
LARGE_SEIZURE_KG = 500.0


@dataclass(frozen=True)
class SeizureFacts:
    """What the statistics need of one coded seizure."""

    seizure_id: int
    seized_on: dt.date | None
    discovery_country: str | None
    commodity: str | None
    quantity_kg: float | None
    #: Countries of the trade chain other than discovery (origins, export, transits,
    #: destination), each once.
    chain_countries: tuple[str, ...] = ()


def weight_class(quantity_kg: float | None) -> str:
    """The weight class of a seizure of ``quantity_kg``.

    >>> weight_class(9.99), weight_class(500), weight_class(None)
    ('< 10 kg', '500 to < 1,000 kg', 'weight unknown')
    """
    if quantity_kg is None:
        return UNKNOWN_WEIGHT
    if quantity_kg < 0 or not math.isfinite(quantity_kg):
        raise ValueError(f"quantity_kg must be a finite weight >= 0, not {quantity_kg!r}")
    for name, low, high in WEIGHT_CLASSES:
        if low <= quantity_kg < high:
            return name
    raise AssertionError("weight classes cover [0, inf)")


def data_statement(facts: Sequence[SeizureFacts]) -> dict:
    """How many seizures a figure rests on and which years, with the caveat."""
    years = sorted({fact.seized_on.year for fact in facts if fact.seized_on})
    return {
        "seizures": len(facts),
        "undated": sum(fact.seized_on is None for fact in facts),
        "years": years,
        "caveat": COUNTS_CAVEAT,
    }


def trends(facts: Sequence[SeizureFacts]) -> dict:
    """Seizures and weight per year, commodity and weight class (undated seizures are left
    out of the rows and counted in ``data.undated``).

    Returns ``{"rows": [{year, commodity, weight_class, seizures, weight_kg}], "data": ...}``
    with rows sorted by year, commodity and class order.
    """
    counts: Counter = Counter()
    weights: defaultdict = defaultdict(float)
    for fact in facts:
        if fact.seized_on is None:
            continue
        key = (fact.seized_on.year, fact.commodity or "unknown", weight_class(fact.quantity_kg))
        counts[key] += 1
        weights[key] += fact.quantity_kg or 0.0
    order = {name: index for index, (name, _, _) in enumerate(WEIGHT_CLASSES)}
    order[UNKNOWN_WEIGHT] = len(order)
    rows = [
        {"year": year, "commodity": commodity, "weight_class": klass,
         "seizures": counts[(year, commodity, klass)],
         "weight_kg": weights[(year, commodity, klass)]}
        for year, commodity, klass in sorted(counts, key=lambda k: (k[0], k[1], order[k[2]]))
    ]
    return {"rows": rows, "data": data_statement(facts)}


@dataclass(frozen=True)
class CountryRole:
    country: str
    seizures_in: int
    seizures_out: int
    weight_in_kg: float
    weight_out_kg: float
    large_in: int
    large_out: int

    @property
    def le_ratio(self) -> float | None:
        """``in / (in + out)``; ``None`` for a country with neither."""
        total = self.seizures_in + self.seizures_out
        return self.seizures_in / total if total else None

    def to_json(self) -> dict:
        return {
            "country": self.country,
            "seizures_in": self.seizures_in,
            "seizures_out": self.seizures_out,
            "weight_in_kg": self.weight_in_kg,
            "weight_out_kg": self.weight_out_kg,
            "large_in": self.large_in,
            "large_out": self.large_out,
            "le_ratio": self.le_ratio,
        }


def country_roles(
    facts: Sequence[SeizureFacts], exclude: Collection[str] = ()
) -> list[CountryRole]:
    """Each country's seizures and weights in and out (see the module notes), sorted by
    country code. Codes in ``exclude`` (pseudo-codes for regions) get no row."""
    tallies: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0, 0, 0])
    for fact in facts:
        weight = fact.quantity_kg or 0.0
        large = fact.quantity_kg is not None and fact.quantity_kg >= LARGE_SEIZURE_KG
        if fact.discovery_country and fact.discovery_country not in exclude:
            tally = tallies[fact.discovery_country]
            tally[0] += 1
            tally[2] += weight
            tally[4] += large
        for country in set(fact.chain_countries) - {fact.discovery_country} - set(exclude):
            tally = tallies[country]
            tally[1] += 1
            tally[3] += weight
            tally[5] += large
    return [
        CountryRole(country, int(t[0]), int(t[1]), float(t[2]), float(t[3]), int(t[4]),
                    int(t[5]))
        for country, t in sorted(tallies.items())
    ]


def role_features(roles: Sequence[CountryRole]) -> np.ndarray:
    """float64, shape ``(n_countries, 6)``: small and large seizures in and out, weight in and
    out, each ``log1p`` then standardised per column (a constant column becomes 0)."""
    raw = np.array(
        [
            [r.seizures_in - r.large_in, r.large_in, r.seizures_out - r.large_out, r.large_out,
             r.weight_in_kg, r.weight_out_kg]
            for r in roles
        ],
        dtype=np.float64,
    ).reshape(len(roles), 6)
    logged = np.log1p(raw)
    spread = logged.std(axis=0)
    centred = logged - logged.mean(axis=0)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def ward_clusters(roles: Sequence[CountryRole], n_clusters: int) -> list[int]:
    """Cluster labels 1..k of ``roles`` (Ward linkage on :func:`role_features`, cut into at
    most ``n_clusters``); clusters are numbered by their first country in ``roles``."""
    if n_clusters < 1:
        raise ValueError("n_clusters must be at least 1")
    if len(roles) < 2:
        return [1] * len(roles)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(role_features(roles), method="ward")
    labels = fcluster(tree, t=min(n_clusters, len(roles)), criterion="maxclust")
    renumber: dict[int, int] = {}
    return [renumber.setdefault(int(label), len(renumber) + 1) for label in labels]
