"""Marker panels: which loci a species is typed at, and which allele sizes are plausible."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dnatrack.genotypes import GenotypeTable


@dataclass(frozen=True)
class Locus:
    """One marker of a panel.

    ``min_size``/``max_size`` bound the allele sizes (bp for STRs, codes for SNPs) accepted on
    import; ``repeat_unit`` is the STR motif length (``None`` for SNPs).
    """

    name: str
    min_size: int
    max_size: int
    repeat_unit: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("locus name must not be empty")
        if not 0 < self.min_size <= self.max_size:
            raise ValueError(
                f"locus {self.name!r}: size range {self.min_size}..{self.max_size} is invalid"
            )
        if self.repeat_unit is not None and self.repeat_unit < 1:
            raise ValueError(f"locus {self.name!r}: repeat unit must be positive")


@dataclass(frozen=True)
class Panel:
    """A named set of loci for one species and marker type (``"STR"`` or ``"SNP"``)."""

    name: str
    species: str
    marker_type: str
    loci: tuple[Locus, ...]
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.marker_type not in ("STR", "SNP"):
            raise ValueError(f"panel {self.name!r}: marker type must be STR or SNP")
        names = [locus.name for locus in self.loci]
        if len(set(names)) != len(names):
            raise ValueError(f"panel {self.name!r} lists a locus twice")
        if not names:
            raise ValueError(f"panel {self.name!r} has no loci")

    @property
    def locus_names(self) -> tuple[str, ...]:
        return tuple(locus.name for locus in self.loci)

    def __contains__(self, locus_name: str) -> bool:
        return locus_name in self.locus_names

    def locus(self, name: str) -> Locus:
        for locus in self.loci:
            if locus.name == name:
                return locus
        raise KeyError(f"locus {name!r} is not in panel {self.name!r}")

    def allele_problem(self, locus_name: str, allele: int) -> str | None:
        """Why ``allele`` is not acceptable at ``locus_name``, or ``None`` if it is."""
        if locus_name not in self:
            return f"unknown locus {locus_name!r} (not in panel {self.name!r})"
        locus = self.locus(locus_name)
        if not locus.min_size <= allele <= locus.max_size:
            return (
                f"allele {allele} outside the range {locus.min_size}..{locus.max_size} "
                f"of {locus_name} in panel {self.name!r}"
            )
        return None

    def problems(self, table: GenotypeTable) -> list[str]:
        """Every way ``table`` disagrees with the panel (empty when it conforms)."""
        found = []
        for j, locus_name in enumerate(table.loci):
            if locus_name not in self:
                found.append(f"unknown locus {locus_name!r} (not in panel {self.name!r})")
                continue
            for allele in table.alleles_at(j):
                problem = self.allele_problem(locus_name, int(allele))
                if problem:
                    rows = (table.alleles[:, j, :] == allele).any(axis=1)
                    found.append(f"profile {table.profile_ids[rows][0]!r}: {problem}")
        return found

    def validate(self, table: GenotypeTable) -> None:
        """Raise ``ValueError`` listing every disagreement between ``table`` and the panel."""
        found = self.problems(table)
        if found:
            raise ValueError("; ".join(found))

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "species": self.species,
            "marker_type": self.marker_type,
            "description": self.description,
            "source": self.source,
            "loci": [
                {
                    "name": locus.name,
                    "repeat_unit": locus.repeat_unit,
                    "min_size": locus.min_size,
                    "max_size": locus.max_size,
                }
                for locus in self.loci
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Panel:
        try:
            loci = tuple(
                Locus(
                    name=str(item["name"]),
                    min_size=int(item["min_size"]),
                    max_size=int(item["max_size"]),
                    repeat_unit=item.get("repeat_unit"),
                )
                for item in data["loci"]
            )
            return cls(
                name=str(data["name"]),
                species=str(data["species"]),
                marker_type=str(data.get("marker_type", "STR")),
                loci=loci,
                description=str(data.get("description", "")),
                source=str(data.get("source", "")),
            )
        except KeyError as missing:
            raise ValueError(f"panel definition lacks the field {missing}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Panel:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path.name}: not valid JSON ({error})") from None
        try:
            return cls.from_dict(data)
        except ValueError as error:
            raise ValueError(f"{path.name}: {error}") from None


def load_panel(name_or_path: str | os.PathLike) -> Panel:
    """A bundled panel by name (e.g. ``"elephant_16str"``) or a panel JSON file."""
    from reference_data import panel_path

    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return Panel.from_file(path)
    return Panel.from_file(panel_path(str(name_or_path)))
