"""The genotype table: profiles × loci × 2 alleles, and dense allele coding against a reference.

A :class:`GenotypeTable` is what every reader produces, every writer consumes and every engine
function takes. Alleles are allele sizes in base pairs (STRs) or small positive allele codes
(SNPs); ``MISSING`` (-1) marks an untyped locus.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MISSING = -1
ALLELE_DTYPE = np.int16
_MAX_ALLELE = int(np.iinfo(ALLELE_DTYPE).max)

_PROFILE_FIELDS = ("population", "repunit", "group")


def _as_str_array(values: Iterable, name: str, n: int) -> np.ndarray:
    array = np.array([str(v) for v in values], dtype=object)
    if array.shape != (n,):
        raise ValueError(f"{name} has {array.shape[0]} entries for {n} profiles")
    return array


def _as_coordinate_array(values: Iterable, name: str, n: int, limit: float) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} has {array.size} entries for {n} profiles")
    bad = np.abs(array) > limit
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} of profile {i} is {array[i]}, outside ±{limit:g}")
    return array


def _first_duplicate(values: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


@dataclass(eq=False)
class GenotypeTable:
    """Diploid genotypes of many profiles at the same loci.

    Parameters
    ----------
    alleles : array_like of int, shape (n_profiles, n_loci, 2)
        Allele sizes or codes, ``-1`` for missing. Stored as C-contiguous int16. A locus with
        one allele missing is untyped, so both alleles are set to missing; the two alleles of a
        genotype are stored smaller first (genotypes are unordered).
    profile_ids : sequence of str, length n_profiles
        Unique profile (sample) identifiers.
    loci : sequence of str, length n_loci
        Unique locus names.
    population, repunit, group : sequence of str, length n_profiles, optional
        Reference population (collection), reporting unit, and group (e.g. seizure).
    lat, lon : array_like of float, length n_profiles, optional
        Sampling coordinates in decimal degrees (NaN where unknown).

    Examples
    --------
    >>> table = GenotypeTable([[[152, 148], [-1, 200]]], ["tusk-1"], ["FH67", "FH71"])
    >>> table.alleles.tolist()
    [[[148, 152], [-1, -1]]]
    """

    alleles: np.ndarray
    profile_ids: np.ndarray
    loci: tuple[str, ...]
    population: np.ndarray | None = None
    repunit: np.ndarray | None = None
    group: np.ndarray | None = None
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    _typed: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        raw = np.asarray(self.alleles)
        if raw.ndim != 3 or raw.shape[2] != 2:
            raise ValueError(
                f"alleles must have shape (n_profiles, n_loci, 2), got {raw.shape}"
            )
        if raw.size and not np.issubdtype(raw.dtype, np.integer):
            if not np.all(np.equal(np.mod(raw, 1), 0)):
                raise ValueError("alleles must be whole numbers")
        if raw.size and (raw.min() < MISSING or raw.max() > _MAX_ALLELE):
            raise ValueError(
                f"alleles must lie in 1..{_MAX_ALLELE} or be {MISSING} (missing); "
                f"found {raw.min() if raw.min() < MISSING else raw.max()}"
            )
        alleles = np.array(raw, dtype=ALLELE_DTYPE, order="C", copy=True)
        if alleles.size:
            if (alleles == 0).any():
                raise ValueError("allele value 0 is not allowed (use -1 for missing)")
            untyped = (alleles < 0).any(axis=2)
            alleles[untyped] = MISSING
            alleles.sort(axis=2)
        self.alleles = alleles
        n, n_loci, _ = alleles.shape

        self.profile_ids = _as_str_array(self.profile_ids, "profile_ids", n)
        duplicate = _first_duplicate(self.profile_ids)
        if duplicate is not None:
            raise ValueError(f"duplicate profile id {duplicate!r}")

        self.loci = tuple(str(locus) for locus in self.loci)
        if len(self.loci) != n_loci:
            raise ValueError(f"{len(self.loci)} locus names for {n_loci} loci")
        duplicate = _first_duplicate(self.loci)
        if duplicate is not None:
            raise ValueError(f"duplicate locus {duplicate!r}")

        for name in _PROFILE_FIELDS:
            values = getattr(self, name)
            if values is not None:
                setattr(self, name, _as_str_array(values, name, n))
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if self.lat is not None:
            self.lat = _as_coordinate_array(self.lat, "lat", n, 90.0)
            self.lon = _as_coordinate_array(self.lon, "lon", n, 180.0)

    # ------------------------------------------------------------------ shape and masks
    @property
    def n_profiles(self) -> int:
        return self.alleles.shape[0]

    @property
    def n_loci(self) -> int:
        return self.alleles.shape[1]

    def __len__(self) -> int:
        return self.n_profiles

    def __repr__(self) -> str:
        extras = [name for name in (*_PROFILE_FIELDS, "lat") if getattr(self, name) is not None]
        return (
            f"GenotypeTable({self.n_profiles} profiles × {self.n_loci} loci"
            + (f", with {', '.join(extras)}" if extras else "")
            + ")"
        )

    @property
    def typed(self) -> np.ndarray:
        """Boolean array (n_profiles, n_loci): True where the locus is typed."""
        if self._typed is None:
            self._typed = self.alleles[:, :, 0] >= 0
        return self._typed

    @property
    def n_typed(self) -> np.ndarray:
        """Number of typed loci per profile, int64 array (n_profiles,)."""
        return self.typed.sum(axis=1)

    # ------------------------------------------------------------------ lookups
    def index_of(self, profile_id: str) -> int:
        """Row index of a profile id; ``KeyError`` if absent."""
        hits = np.flatnonzero(self.profile_ids == profile_id)
        if hits.size == 0:
            raise KeyError(f"no profile {profile_id!r}")
        return int(hits[0])

    def locus_index(self, locus: str) -> int:
        try:
            return self.loci.index(locus)
        except ValueError:
            raise KeyError(f"no locus {locus!r}") from None

    def unique_populations(self) -> list[str]:
        """Population labels in order of first appearance."""
        if self.population is None:
            return []
        return list(dict.fromkeys(self.population))

    def alleles_at(self, locus: str | int) -> np.ndarray:
        """Sorted distinct alleles observed at a locus (int16)."""
        j = locus if isinstance(locus, int) else self.locus_index(locus)
        values = self.alleles[:, j, :].ravel()
        return np.unique(values[values >= 0])

    # ------------------------------------------------------------------ derived tables
    def replace(self, **changes) -> GenotypeTable:
        """A copy with some fields replaced (validated again)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        current.update(changes)
        return GenotypeTable(**current)

    def take(self, rows: Sequence[int] | np.ndarray) -> GenotypeTable:
        """The profiles at ``rows`` (integer indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        elif rows.size == 0:
            rows = rows.astype(np.intp)

        def pick(values):
            return None if values is None else values[rows]

        return GenotypeTable(
            self.alleles[rows],
            self.profile_ids[rows],
            self.loci,
            population=pick(self.population),
            repunit=pick(self.repunit),
            group=pick(self.group),
            lat=pick(self.lat),
            lon=pick(self.lon),
        )

    def select_loci(self, loci: Sequence[str]) -> GenotypeTable:
        """The same profiles at ``loci`` (in that order); ``KeyError`` for an unknown locus."""
        columns = [self.locus_index(locus) for locus in loci]
        return self.replace(alleles=self.alleles[:, columns, :], loci=tuple(loci))

    @classmethod
    def concat(cls, tables: Sequence[GenotypeTable]) -> GenotypeTable:
        """Stack tables typed at the same loci (same order); profile ids must stay unique."""
        if not tables:
            raise ValueError("no tables to concatenate")
        loci = tables[0].loci
        for table in tables[1:]:
            if table.loci != loci:
                raise ValueError("tables have different loci; use select_loci first")

        def joined(name):
            parts = [getattr(t, name) for t in tables]
            if all(p is None for p in parts):
                return None
            filler = np.nan if name in ("lat", "lon") else ""
            return np.concatenate(
                [np.full(len(t), filler, dtype=object) if p is None else p
                 for t, p in zip(tables, parts, strict=True)]
            )

        lat, lon = joined("lat"), joined("lon")
        return cls(
            np.concatenate([t.alleles for t in tables]),
            np.concatenate([t.profile_ids for t in tables]),
            loci,
            population=joined("population"),
            repunit=joined("repunit"),
            group=joined("group"),
            lat=None if lat is None else lat.astype(np.float64),
            lon=None if lon is None else lon.astype(np.float64),
        )

    def same_genotypes(self, other: GenotypeTable) -> bool:
        """True when both tables hold the same ids, loci and genotypes."""
        return (
            self.loci == other.loci
            and np.array_equal(self.profile_ids, other.profile_ids)
            and np.array_equal(self.alleles, other.alleles)
        )

    def to_allel(self, coding: AlleleCoding | None = None):
        """scikit-allel ``GenotypeArray`` (n_loci, n_profiles, 2) of dense allele indices."""
        import allel

        coding = coding or AlleleCoding.from_tables(self)
        return allel.GenotypeArray(np.ascontiguousarray(coding.encode(self).transpose(1, 0, 2)))


@dataclass(frozen=True, eq=False)
class AlleleCoding:
    """Maps allele sizes at each locus to dense indices ``0..A_l-1``.

    The alleles of the reference come first, sorted; alleles added later with :meth:`extend`
    (seen only in query profiles) are appended, so indices of existing alleles never change and
    count arrays built against the old coding stay valid after padding with zeros.
    """

    loci: tuple[str, ...]
    alleles: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.loci) != len(self.alleles):
            raise ValueError("one allele list per locus is needed")
        for locus, values in zip(self.loci, self.alleles, strict=True):
            if len(np.unique(values)) != len(values):
                raise ValueError(f"locus {locus!r}: allele list has repeats")

    @classmethod
    def from_tables(cls, *tables: GenotypeTable) -> AlleleCoding:
        """Coding of every allele observed in ``tables`` (same loci), sorted per locus."""
        if not tables:
            raise ValueError("at least one table is needed")
        loci = tables[0].loci
        alleles = []
        for locus in loci:
            present = np.zeros(_MAX_ALLELE + 1, dtype=bool)
            for table in tables:
                values = table.alleles[:, table.locus_index(locus), :]
                present[values[values >= 0]] = True
            alleles.append(np.flatnonzero(present).astype(ALLELE_DTYPE))
        return cls(loci, tuple(alleles))

    @property
    def n_alleles(self) -> np.ndarray:
        """Number of alleles per locus, int32 array (n_loci,)."""
        return np.array([len(a) for a in self.alleles], dtype=np.int32)

    @property
    def max_alleles(self) -> int:
        return int(self.n_alleles.max()) if self.loci else 0

    def extend(self, table: GenotypeTable) -> AlleleCoding:
        """This coding plus the alleles of ``table`` it lacks, appended per locus."""
        extended = []
        for j, locus in enumerate(self.loci):
            seen = table.alleles_at(locus)
            new = np.setdiff1d(seen, self.alleles[j])
            extended.append(np.concatenate([self.alleles[j], new]).astype(ALLELE_DTYPE))
        return AlleleCoding(self.loci, tuple(extended))

    def encode(self, table: GenotypeTable) -> np.ndarray:
        """Dense allele indices of ``table``: int16 (n_profiles, n_loci, 2), -1 missing.

        Raises ``ValueError`` naming the profile, locus and allele when an allele is not in the
        coding, and ``KeyError`` when the table lacks one of the coding's loci.
        """
        codes = np.full((table.n_profiles, len(self.loci), 2), MISSING, dtype=ALLELE_DTYPE)
        # Alleles are int16, so a dense lookup array maps every possible value at once.
        lookup = np.full(_MAX_ALLELE + 2, MISSING, dtype=ALLELE_DTYPE)
        for j, locus in enumerate(self.loci):
            observed = table.alleles[:, table.locus_index(locus), :]
            values = self.alleles[j]
            lookup[values] = np.arange(len(values), dtype=ALLELE_DTYPE)
            # MISSING (-1) indexes the last entry, which stays MISSING.
            encoded = lookup[observed]
            lookup[values] = MISSING
            unknown = (encoded < 0) & (observed >= 0)
            if unknown.any():
                row, col = np.argwhere(unknown)[0]
                raise ValueError(
                    f"profile {table.profile_ids[row]!r}, locus {locus!r}: allele "
                    f"{observed[row, col]} is not in the allele coding"
                )
            codes[:, j, :] = encoded
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Allele sizes for dense indices (inverse of :meth:`encode`)."""
        codes = np.asarray(codes)
        sizes = np.full(codes.shape, MISSING, dtype=ALLELE_DTYPE)
        for j, values in enumerate(self.alleles):
            typed = codes[:, j, :] >= 0
            sizes[:, j, :][typed] = values[codes[:, j, :][typed]]
        return sizes
