"""The statistical settings of an analysis (a match request's ``parameters``, the options of
``dnatrack analyze``), checked field by field."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matching.geo import DEFAULT_CELLS
from matching.identity import STRINGENCIES, IdentityCriteria
from matching.relationships import RELATIONSHIPS, ErrorModel

#: The analyses an analysis may run, in the order they run.
ANALYSES = ("identity", "kinship", "assignment", "mixture", "geographic")


class AnalysisError(ValueError):
    """A match request that cannot be run; ``problems`` lists ``{"field", "message"}``."""

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AnalysisSettings:
    """The statistical settings of a match request (its ``parameters``), with defaults.

    Attributes
    ----------
    theta : float or str, optional
        θ override, a number or a species name; default the reference species' published
        value (:func:`matching.pair_search.theta_for`).
    dropout_rate, miscall_rate : float
        Genotyping error rates folded into the kinship LRs.
    relationships : tuple of str
        Relationships the kinship search tests.
    min_loci : int
        Minimum loci compared for a pair to be reported.
    stringency : {"high", "moderate"}
        Identity search stringency; ``max_mismatches`` and ``max_dropouts`` as in
        :class:`~matching.identity.IdentityCriteria`.
    exclusion_simulations : int
        Simulated genotypes per sample for the exclusion test of population assignment.
    mixture_sweeps, mixture_burn_in : int
        Gibbs sweeps of the mixture estimate, and how many are discarded.
    geo_cells : int
        Map grid cells along the longer side of the reference region.
    seed : int
        Seed of every simulation (calibration excepted, which has its own fixed seed).
    """

    theta: float | str | None = None
    dropout_rate: float = ErrorModel().dropout_rate
    miscall_rate: float = ErrorModel().miscall_rate
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS)
    min_loci: int = 8
    stringency: str = "moderate"
    max_mismatches: int | None = None
    max_dropouts: int | None = None
    exclusion_simulations: int = 10_000
    mixture_sweeps: int = 2_000
    mixture_burn_in: int = 100
    geo_cells: int = DEFAULT_CELLS
    seed: int = 1

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any] | None) -> AnalysisSettings:
        """Settings from a request's ``parameters``; :class:`AnalysisError` naming every
        unknown or unfitting field (``parameters.<name>``)."""
        parameters = dict(parameters or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        problems = []
        values: dict[str, Any] = {}
        for name, value in parameters.items():
            field = f"parameters.{name}"
            if name not in known:
                problems.append({"field": field, "message": "unknown setting"})
                continue
            try:
                values[name] = _setting(name, value)
            except ValueError as error:
                problems.append({"field": field, "message": str(error)})
        if not problems:
            try:
                settings = cls(**values)
                settings.error_model()
                settings.identity_criteria()
            except ValueError as error:
                problems.append({"field": "parameters", "message": str(error)})
        if problems:
            raise AnalysisError("invalid match request parameters", problems)
        return settings

    def error_model(self) -> ErrorModel:
        return ErrorModel(self.dropout_rate, self.miscall_rate)

    def identity_criteria(self) -> IdentityCriteria:
        return IdentityCriteria(self.stringency, max_mismatches=self.max_mismatches,
                                min_loci=self.min_loci, max_dropouts=self.max_dropouts)

    def as_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["relationships"] = list(self.relationships)
        return values


def _whole(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    if value < minimum:
        raise ValueError(f"must be at least {minimum}")
    return value


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number")
    if not 0.0 <= value < 0.5:
        raise ValueError("must be at least 0 and below 0.5")
    return float(value)


def _setting(name: str, value: Any) -> Any:
    """One setting checked and converted; ``ValueError`` saying why it does not fit."""
    if name == "theta":
        if value is None or (isinstance(value, str) and value.strip()):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number or a species name")
        if not 0.0 <= value < 1.0:
            raise ValueError("must be at least 0 and below 1")
        return float(value)
    if name in ("dropout_rate", "miscall_rate"):
        return _rate(value)
    if name == "relationships":
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list")
        unknown = [r for r in value if r not in RELATIONSHIPS]
        if unknown:
            raise ValueError(f"unknown relationship {unknown[0]!r}; one of "
                             f"{', '.join(RELATIONSHIPS)}")
        return tuple(dict.fromkeys(value))
    if name == "stringency":
        if value not in STRINGENCIES:
            raise ValueError(f"must be one of {', '.join(STRINGENCIES)}")
        return value
    if name in ("max_mismatches", "max_dropouts"):
        return None if value is None else _whole(value, 0)
    minimum = {"min_loci": 1, "exclusion_simulations": 0, "mixture_sweeps": 2,
               "mixture_burn_in": 0, "geo_cells": 2, "seed": 0}[name]
    return _whole(value, minimum)


