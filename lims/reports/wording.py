"""How reports put numbers into words: the ENFSI verbal scale, propositions, number formats,
places.

The verbal scale is the one of the ENFSI Guideline for Evaluative Reporting in Forensic
Science (2015) as DESIGN 6 gives it. Likelihood ratios are handled as ``log10 LR`` throughout,
so LRs beyond the range of a float (``10^400``) are still placed on the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lims.reports.figures import country_at
from matching.geo import great_circle_km

#: A most likely point at most this far from a reference site is said to be near it.
NEAR_SITE_KM = 50.0

#: ``(lowest log10 LR, words)`` of each step of the ENFSI scale, from the top. A value on a
#: boundary belongs to the higher step (LR = 10 is moderate support).
ENFSI_SCALE: tuple[tuple[float, str], ...] = (
    (6.0, "extremely strong support"),
    (4.0, "very strong support"),
    (3.0, "strong support"),
    (2.0, "moderately strong support"),
    (1.0, "moderate support"),
    (math.log10(2.0), "weak support"),
)
NO_SUPPORT = "no support"

#: What each relationship means, as a proposition about two items.
RELATIONSHIP_PHRASES = {
    "same_animal": "come from the same {animal}",
    "parent_offspring": "come from a parent {animal} and its offspring",
    "full_sibling": "come from two {animals} that are full siblings",
    "half_sibling": "come from two {animals} that are half siblings",
}
RELATIONSHIP_LABELS = {
    "same_animal": "same animal",
    "parent_offspring": "parent–offspring",
    "full_sibling": "full siblings",
    "half_sibling": "half siblings",
}


@dataclass(frozen=True)
class VerbalEquivalent:
    """Where a likelihood ratio sits on the ENFSI scale.

    Attributes
    ----------
    words : str
        ``"no support"``, ``"weak support"`` … ``"extremely strong support"``.
    favours : str
        ``"first"`` when the LR exceeds one (the findings support the first proposition),
        ``"second"`` when it is below one (the scale is then read on ``1 / LR``), ``"neither"``
        for no support.
    """

    words: str
    favours: str

    def sentence(self, first: str, second: str) -> str:
        """The conclusion in words, e.g. "The findings provide very strong support for the
        proposition that … rather than that …"."""
        if self.favours == "neither":
            return ("The findings provide no support for either proposition over the other: "
                    f"that {first}, or that {second}.")
        supported, other = (first, second) if self.favours == "first" else (second, first)
        return (f"The findings provide {self.words} for the proposition that {supported} "
                f"rather than that {other}.")


def verbal_equivalent(log10_lr: float) -> VerbalEquivalent:
    """The ENFSI verbal equivalent of a likelihood ratio given as ``log10 LR``.

    LRs from 2 up to 10 give weak support, 10 to 100 moderate, 100 to 1,000 moderately strong,
    1,000 to 10,000 strong, 10,000 to 1,000,000 very strong and above that extremely strong
    support; below 2 (and above 1/2) the findings support neither proposition. An LR below one
    supports the second proposition, read on the same scale as ``1 / LR``.

    >>> verbal_equivalent(6.2).words
    'extremely strong support'
    >>> verbal_equivalent(-1.5)
    VerbalEquivalent(words='moderate support', favours='second')
    """
    if math.isnan(log10_lr):
        raise ValueError(f"a likelihood ratio must be a number, got log10 LR = {log10_lr}")
    magnitude = abs(log10_lr)
    for lowest, words in ENFSI_SCALE:
        if magnitude >= lowest:
            return VerbalEquivalent(words, "first" if log10_lr > 0 else "second")
    return VerbalEquivalent(NO_SUPPORT, "neither")


def animal_nouns(species: str) -> tuple[str, str]:
    """``(singular, plural)`` naming animals of ``species`` in propositions."""
    lowered = species.lower()
    if "elephant" in lowered or "loxodonta" in lowered:
        return "elephant", "elephants"
    if "rhino" in lowered or "ceratotherium" in lowered or "diceros" in lowered:
        return "rhinoceros", "rhinoceroses"
    return "animal", "animals"


def propositions(relationship: str, first: str, second: str, species: str) -> dict[str, str]:
    """The pair of propositions a kinship or identity LR weighs.

    Returns ``{"first": …, "second": …}``: that the two items ``relationship`` (e.g. "come
    from the same elephant"), and that they come from two different, unrelated animals.

    >>> propositions("same_animal", "tusk A", "tusk B", "African savanna elephant")["second"]
    'they come from two different, unrelated elephants'
    """
    animal, animals = animal_nouns(species)
    phrase = RELATIONSHIP_PHRASES[relationship].format(animal=animal, animals=animals)
    return {
        "first": f"{first} and {second} {phrase}",
        "second": f"they come from two different, unrelated {animals}",
    }


def format_decimal(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, in plain or ``a × 10^b`` notation
    (returned as text with a caret, see :func:`power_parts`)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)))
    if -3 <= exponent < 6:
        # Round to the significant digits first: 20,994 is shown as 21,000.
        rounded = round(value, digits - 1 - exponent)
        return f"{rounded:,.{max(digits - 1 - exponent, 0)}f}"
    mantissa = value / 10.0**exponent
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f} × 10^{exponent}"


def format_likelihood_ratio(log10_lr: float, digits: int = 3) -> str:
    """An LR given as ``log10 LR``, as :func:`format_decimal` writes it (also beyond float
    range)."""
    exponent = math.floor(log10_lr)
    if -3 <= exponent < 6:
        return format_decimal(10.0**log10_lr, digits)
    mantissa = 10.0 ** (log10_lr - exponent)
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f} × 10^{exponent}"


def power_parts(text: str) -> tuple[str, str | None]:
    """Split ``"1.20 × 10^18"`` into ``("1.20 × 10", "18")`` for a superscript; plain numbers
    give ``(text, None)``."""
    head, caret, exponent = text.partition("^")
    return (head, exponent) if caret else (text, None)


def genotype_text(alleles: list[int] | tuple[int, int] | None) -> str:
    """``"230/238"``, or ``"–"`` for an untyped locus."""
    if not alleles or min(alleles) < 0:
        return "–"
    return f"{alleles[0]}/{alleles[1]}"


def format_coordinates(lat: float, lon: float) -> str:
    """``"2.35° S, 37.12° E"``: degrees with the hemisphere, as a map reader expects."""
    return (f"{abs(lat):.2f}° {'N' if lat >= 0 else 'S'}, "
            f"{abs(lon):.2f}° {'E' if lon >= 0 else 'W'}")


def origin_text(geographic: dict, surface: dict) -> str:
    """The most likely origin of a surface in words: its coordinates, the country of the map
    outline holding it and the nearest reference site, e.g. ``"2.65° S, 37.26° E, near
    Amboseli (Kenya)"`` or ``"1.20° S, 35.10° E, in Kenya, 140 km from Amboseli"``.

    Parameters
    ----------
    geographic : dict
        The ``geographic`` record of a result (its ``sites``: name, lat, lon).
    surface : dict
        One of its ``surfaces`` (``best_lat``, ``best_lon``).
    """
    lat, lon = surface["best_lat"], surface["best_lon"]
    words = [format_coordinates(lat, lon)]
    country = country_at(lat, lon)
    sites = geographic.get("sites") or []
    if sites:
        distance = great_circle_km(lat, lon, np.array([s["lat"] for s in sites]),
                                   np.array([s["lon"] for s in sites]))
        nearest = int(np.argmin(distance))
        site = sites[nearest]["name"].replace("_", " ")
        if distance[nearest] <= NEAR_SITE_KM:
            words.append(f"near {site}" + (f" ({country})" if country else ""))
        else:
            words.extend(([f"in {country}"] if country else [])
                         + [f"{distance[nearest]:,.0f} km from {site}"])
    elif country:
        words.append(f"in {country}")
    return ", ".join(words)
