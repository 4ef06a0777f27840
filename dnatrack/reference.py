"""Reference sets: genotypes of animals of known origin, with population metadata.

A reference set on disk is a folder with three files:

``meta.json``
    name, species, panel, version, whether it is simulated, description, the default
    reporting-unit level, and free-form provenance (``metadata``).
``populations.csv``
    one row per population: ``population, locality, lat, lon`` and one column per
    reporting-unit level (e.g. ``species, region, country``).
``genotypes.csv``
    the genotypes in the project's wide CSV format (``indiv``, ``collection`` = population,
    two columns per locus).

Reports cite a reference set by name, version and :attr:`ReferenceSet.content_hash`, a SHA-256
over the genotypes and metadata (not over file bytes, so reformatting a file does not change it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from dnatrack.genotypes import GenotypeTable

_POPULATION_COLUMNS = ("population", "locality", "lat", "lon")


@dataclass(frozen=True)
class PopulationInfo:
    """A reference population: its sampling locality and reporting units.

    ``repunits`` maps a reporting-unit level (``"species"``, ``"region"``, ``"country"``…) to
    this population's unit at that level.
    """

    name: str
    locality: str = ""
    lat: float = math.nan
    lon: float = math.nan
    repunits: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class ReferenceSet:
    """A :class:`GenotypeTable` of reference animals with population labels and metadata."""

    name: str
    species: str
    table: GenotypeTable
    populations: tuple[PopulationInfo, ...]
    version: str = "1"
    panel: str | None = None
    simulated: bool = False
    description: str = ""
    default_repunit_level: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.table.population is None:
            raise ValueError(f"reference set {self.name!r}: every animal needs a population")
        known = {p.name for p in self.populations}
        if len(known) != len(self.populations):
            raise ValueError(f"reference set {self.name!r} lists a population twice")
        missing = [p for p in self.table.unique_populations() if p not in known]
        if missing:
            raise ValueError(
                f"reference set {self.name!r}: populations {missing} have genotypes but no "
                "entry in the population list"
            )
        levels = {level for p in self.populations for level in p.repunits}
        if self.default_repunit_level is not None and self.default_repunit_level not in levels:
            raise ValueError(
                f"reference set {self.name!r}: default reporting-unit level "
                f"{self.default_repunit_level!r} is not one of {sorted(levels)}"
            )
        if self.simulated and "simulated" not in self.name:
            raise ValueError(f"simulated reference set {self.name!r} must say so in its name")

    # ------------------------------------------------------------------ population metadata
    def population_info(self, name: str) -> PopulationInfo:
        for info in self.populations:
            if info.name == name:
                return info
        raise KeyError(f"reference set {self.name!r} has no population {name!r}")

    @property
    def repunit_levels(self) -> list[str]:
        return list(dict.fromkeys(level for p in self.populations for level in p.repunits))

    def repunit_of(self, level: str | None = None) -> dict[str, str]:
        """Population → reporting unit at ``level`` (default level if ``None``)."""
        level = level or self.default_repunit_level
        if level is None:
            return {p.name: p.name for p in self.populations}
        if level not in self.repunit_levels:
            raise ValueError(f"no reporting-unit level {level!r}; have {self.repunit_levels}")
        return {p.name: p.repunits.get(level, "") for p in self.populations}

    def table_with_sites(self) -> GenotypeTable:
        """The genotypes with default reporting units and each population's coordinates."""
        by_name = {p.name: p for p in self.populations}
        units = self.repunit_of()
        pops = self.table.population
        return self.table.replace(
            repunit=[units[p] for p in pops],
            lat=[by_name[p].lat for p in pops],
            lon=[by_name[p].lon for p in pops],
        )

    # ------------------------------------------------------------------ identity
    def _meta_dict(self) -> dict:
        return {
            "name": self.name,
            "species": self.species,
            "version": self.version,
            "panel": self.panel,
            "simulated": self.simulated,
            "description": self.description,
            "default_repunit_level": self.default_repunit_level,
            "metadata": self.metadata,
        }

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the genotypes, labels, populations and metadata."""
        digest = hashlib.sha256()
        header = {
            "meta": self._meta_dict(),
            "loci": list(self.table.loci),
            "profile_ids": list(self.table.profile_ids),
            "population": list(self.table.population),
            "populations": [
                {
                    "name": p.name,
                    "locality": p.locality,
                    "lat": None if math.isnan(p.lat) else p.lat,
                    "lon": None if math.isnan(p.lon) else p.lon,
                    "repunits": p.repunits,
                }
                for p in self.populations
            ],
        }
        digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
        digest.update(np.ascontiguousarray(self.table.alleles, dtype="<i2").tobytes())
        return digest.hexdigest()

    def citation(self) -> str:
        """One line naming the set for reports: name, version and content hash."""
        flag = " (simulated)" if self.simulated else ""
        return f"{self.name} v{self.version}{flag}, sha256 {self.content_hash}"

    # ------------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``meta.json``, ``populations.csv`` and ``genotypes.csv`` into ``folder``."""
        from dnatrack.formats import write_genotypes

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(json.dumps(self._meta_dict(), indent=2) + "\n")
        levels = self.repunit_levels
        with open(folder / "populations.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*_POPULATION_COLUMNS, *levels])
            for p in self.populations:
                writer.writerow(
                    [p.name, p.locality, p.lat, p.lon, *(p.repunits.get(lv, "") for lv in levels)]
                )
        units = self.repunit_of()
        table = self.table.replace(repunit=[units[p] for p in self.table.population])
        write_genotypes(table, folder / "genotypes.csv", format="wide")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ReferenceSet:
        """Read a reference-set folder written by :meth:`save`."""
        from dnatrack.formats import read_genotypes

        folder = Path(folder)
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{folder}: not a reference set (no meta.json)") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{meta_path}: not valid JSON ({error})") from None
        populations = _read_populations(folder / "populations.csv")
        table = read_genotypes(folder / "genotypes.csv", format="wide")
        try:
            return cls(
                name=meta["name"],
                species=meta["species"],
                table=table.replace(repunit=None),
                populations=populations,
                version=str(meta.get("version", "1")),
                panel=meta.get("panel"),
                simulated=bool(meta.get("simulated", False)),
                description=meta.get("description", ""),
                default_repunit_level=meta.get("default_repunit_level"),
                metadata=meta.get("metadata", {}),
            )
        except KeyError as missing:
            raise ValueError(f"{meta_path}: lacks the field {missing}") from None

    @classmethod
    def from_table(cls, table: GenotypeTable, name: str) -> ReferenceSet:
        """A reference set made from any genotype table with population labels.

        Reporting units come from the table's ``repunit`` column when it has one; coordinates
        are the mean of each population's profile coordinates when the table has them.
        """
        if table.population is None:
            raise ValueError(f"{name}: the genotypes have no population column")
        populations = []
        for pop in table.unique_populations():
            rows = table.population == pop
            repunits = {}
            if table.repunit is not None:
                units = list(dict.fromkeys(table.repunit[rows]))
                if len(units) > 1:
                    raise ValueError(f"{name}: population {pop!r} is in reporting units {units}")
                repunits["repunit"] = units[0]
            lat = lon = math.nan
            if table.lat is not None and np.isfinite(table.lat[rows]).any():
                lat = float(np.nanmean(table.lat[rows]))
                lon = float(np.nanmean(table.lon[rows]))
            populations.append(PopulationInfo(pop, lat=lat, lon=lon, repunits=repunits))
        return cls(
            name=name,
            species="unknown",
            table=table.replace(repunit=None),
            populations=tuple(populations),
            version="file",
            default_repunit_level="repunit" if table.repunit is not None else None,
        )


def _read_populations(path: Path) -> tuple[PopulationInfo, ...]:
    try:
        handle = open(path, newline="")
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        absent = [c for c in _POPULATION_COLUMNS if c not in columns]
        if absent:
            raise ValueError(f"{path.name}, line 1: missing columns {absent}")
        levels = [c for c in columns if c not in _POPULATION_COLUMNS]
        populations = []
        for line, row in enumerate(reader, start=2):
            try:
                lat = float(row["lat"]) if row["lat"] else math.nan
                lon = float(row["lon"]) if row["lon"] else math.nan
            except ValueError:
                raise ValueError(f"{path.name}, line {line}: lat/lon must be numbers") from None
            populations.append(
                PopulationInfo(
                    name=row["population"],
                    locality=row["locality"],
                    lat=lat,
                    lon=lon,
                    repunits={level: row[level] for level in levels},
                )
            )
    return tuple(populations)


def load_reference_set(name_or_path: str | os.PathLike, **read_options) -> ReferenceSet:
    """A bundled reference set by name, a reference-set folder, or a genotype file.

    A genotype file must carry population labels (a GENEPOP ``Pop`` block, a ``collection``
    column…); its reporting units come from a ``repunit`` column if it has one.
    """
    from reference_data import list_reference_sets, reference_set_path

    path = Path(name_or_path)
    if path.is_dir():
        return ReferenceSet.load(path)
    if path.is_file():
        from dnatrack.formats import read_genotypes

        return ReferenceSet.from_table(read_genotypes(path, **read_options), name=path.stem)
    if str(name_or_path) in list_reference_sets():
        return ReferenceSet.load(reference_set_path(str(name_or_path)))
    raise ValueError(
        f"{name_or_path}: neither a file nor a bundled reference set "
        f"({', '.join(list_reference_sets()) or 'none bundled'})"
    )
