"""The demo installation: a SQLite LIMS filled with a simulated, known-truth casework scenario.

:func:`create_demo` makes (or reuses) a demo folder with a migrated SQLite database;
:func:`load_demo` fills an empty LIMS database through the LIMS's own functions — the models,
the custody ledger (:func:`lims.custody.record_event`), the genotype import
(:func:`lims.genotype_import.import_genotypes`) and the review workflow — so the demo holds
nothing the LIMS itself could not have recorded.

The scenario (fixed seed :data:`DEMO_SEED`, made with :func:`dnatrack.simulate.simulate`):

* four ivory seizures from the bundled ``savanna_elephant_simulated`` reference set, three held
  by the demo laboratory and one by a second laboratory (need-to-know), with four tusk pairs
  split across seizures, two parent–offspring and two full-sibling pairs across them;
* a rhino horn seizure from ``black_rhino_simulated`` with three horns matching carcasses
  registered in a carcass case;
* custody events for every seizure and sample, genotypes imported per seizure, reviewed and
  released by a reviewer who is not the analyst; and two replicate aliquots whose profiles wait
  in the review queue.

Every demo user's password is :data:`DEMO_PASSWORD`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from dnatrack.formats import write_genotypes
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import ReferenceSet, load_reference_set
from dnatrack.simulate import Scenario, ScenarioSpec, SeizureSpec, simulate
from lims.auth import hash_password
from lims.custody import record_event
from lims.extensions import db
from lims.genotype_import import import_genotypes
from lims.genotyping import release_profile, resolve_panel, review_profile
from lims.migrate import upgrade
from lims.models import (
    Agency,
    Case,
    CustodyEvent,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    SourceAnimal,
    StorageLocation,
    User,
)
from lims.quality.demo import confirm_tusk_pairs, load_quality

DEMO_SEED = 20240685
DEMO_PASSWORD = "dnatrack-demo"
IVORY_REFERENCE = "savanna_elephant_simulated"
RHINO_REFERENCE = "black_rhino_simulated"
#: The scenario seizure whose items are carcasses, not seized horns.
CARCASS_GROUP = "CARCASS"

DATABASE_FILE = "dnatrack-demo.sqlite"
MARKER_FILE = ".dnatrack-demo"
MARKER_TEXT = "A dnatrack demo folder: `dnatrack demo` may delete and rebuild what is in it.\n"


class DemoFolderError(ValueError):
    """A folder that cannot hold the demo (it holds something else)."""


@dataclass(frozen=True)
class DemoAgency:
    code: str
    name: str
    kind: str
    country: str


@dataclass(frozen=True)
class DemoUser:
    """A demo login: ``username`` with :data:`DEMO_PASSWORD`."""

    username: str
    full_name: str
    agency: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class DemoCase:
    reference: str
    title: str
    agency: str
    description: str


@dataclass(frozen=True)
class DemoSeizure:
    """How a scenario seizure appears in the LIMS."""

    group: str
    reference: str
    case: str
    seized_on: dt.date
    place: str
    country: str
    latitude: float
    longitude: float
    route: str
    seizing_agency: str


AGENCIES = (
    DemoAgency("DEMO-LAB", "Demo Wildlife Forensics Laboratory", "laboratory", "Kenya"),
    DemoAgency("DEMO-EAST", "Demo Eastern Forensic Laboratory", "laboratory", "Tanzania"),
    DemoAgency("DEMO-CUSTOMS", "Demo Customs Service", "enforcement", "Kenya"),
    DemoAgency("DEMO-PARKS", "Demo Wildlife Authority", "wildlife_authority", "South Africa"),
)

USERS = (
    DemoUser("admin", "Ada Admin", "DEMO-LAB", ("admin",)),
    DemoUser("custodian", "Cleo Custodian", "DEMO-LAB", ("custodian",)),
    DemoUser("analyst", "Ana Analyst", "DEMO-LAB", ("analyst",)),
    DemoUser("reviewer", "Rui Reviewer", "DEMO-LAB", ("reviewer",)),
    DemoUser("investigator", "Ines Investigator", "DEMO-LAB", ("investigator",)),
    DemoUser("researcher", "Remy Researcher", "DEMO-LAB", ("researcher",)),
    DemoUser("east-analyst", "Eli East-Analyst", "DEMO-EAST", ("analyst", "custodian")),
    DemoUser("east-reviewer", "Eva East-Reviewer", "DEMO-EAST", ("reviewer",)),
)

CASES = (
    DemoCase(
        "DEMO-2024-IVORY",
        "Ivory trafficking through the East African ports",
        "DEMO-LAB",
        "Three ivory seizures suspected to be linked (simulated demo data).",
    ),
    DemoCase(
        "DEMO-2024-EAST",
        "Ivory seizure at Zanzibar",
        "DEMO-EAST",
        "A seizure held by another laboratory (simulated demo data).",
    ),
    DemoCase(
        "DEMO-2024-RHINO",
        "Rhino horns in passenger luggage",
        "DEMO-LAB",
        "Six horns found in two suitcases (simulated demo data).",
    ),
    DemoCase(
        "DEMO-2024-CARCASSES",
        "Poached black rhino carcasses",
        "DEMO-LAB",
        "Tissue from carcasses found in two parks (simulated demo data).",
    ),
)

IVORY_SEIZURES = (
    DemoSeizure("SZ01", "KE-MBA-2401", "DEMO-2024-IVORY", dt.date(2024, 3, 14),
                "Port of Mombasa, container terminal", "Kenya", -4.0435, 39.6682,
                "Mombasa → Port Klang, declared as plastic scrap", "DEMO-CUSTOMS"),
    DemoSeizure("SZ02", "TZ-DAR-2402", "DEMO-2024-IVORY", dt.date(2024, 5, 2),
                "Port of Dar es Salaam", "Tanzania", -6.8235, 39.2695,
                "Dar es Salaam → Haiphong, declared as sesame seeds", "DEMO-CUSTOMS"),
    DemoSeizure("SZ03", "KE-NBO-2403", "DEMO-2024-IVORY", dt.date(2024, 6, 20),
                "Jomo Kenyatta International Airport, cargo", "Kenya", -1.3192, 36.9278,
                "Nairobi → Bangkok air cargo, declared as handicrafts", "DEMO-CUSTOMS"),
    DemoSeizure("SZ04", "TZ-ZNZ-2404", "DEMO-2024-EAST", dt.date(2024, 8, 9),
                "Zanzibar port", "Tanzania", -6.1574, 39.1866,
                "Zanzibar → Mombasa by dhow", "DEMO-CUSTOMS"),
)
RHINO_SEIZURES = (
    DemoSeizure("RH01", "ZA-JNB-2405", "DEMO-2024-RHINO", dt.date(2024, 9, 17),
                "O. R. Tambo International Airport, passenger luggage", "South Africa",
                -26.1367, 28.2411, "Johannesburg → Doha → Hanoi, two suitcases", "DEMO-CUSTOMS"),
)
CARCASS_CASE = "DEMO-2024-CARCASSES"

IVORY_SPEC = ScenarioSpec(
    seizures=(
        SeizureSpec("SZ01", {"Tsavo": 2, "Amboseli": 1}, 14),
        SeizureSpec("SZ02", {"Selous": 2, "Ruaha": 1}, 12),
        SeizureSpec("SZ03", {"Niassa": 1, "Selous": 1}, 10),
        SeizureSpec("SZ04", {"Tsavo": 1, "Samburu": 1}, 10),
    ),
    same_animal_pairs=4,
    parent_offspring_pairs=2,
    full_sibling_pairs=2,
    half_sibling_pairs=0,
    item_prefix="T",
)
RHINO_SPEC = ScenarioSpec(
    seizures=(
        SeizureSpec("RH01", {"Kruger": 2, "Hluhluwe_iMfolozi": 1}, 6),
        SeizureSpec(CARCASS_GROUP, {"Kruger": 2, "Hluhluwe_iMfolozi": 1}, 5),
    ),
    same_animal_pairs=3,
    parent_offspring_pairs=0,
    full_sibling_pairs=0,
    half_sibling_pairs=0,
    item_prefix="H",
)
# Aliquots of these ivory items are typed again (replicates) and left for review.
REPLICATED_ITEMS = ("SZ01-T001", "SZ01-T002")

# Storage of each laboratory: (path of names, kind of the last one).
STORAGE = {
    "DEMO-LAB": (
        (("Main laboratory",), "site"),
        (("Main laboratory", "Evidence room"), "room"),
        (("Main laboratory", "Evidence room", "Vault shelf 1"), "shelf"),
        (("Main laboratory", "DNA unit"), "room"),
        (("Main laboratory", "DNA unit", "Freezer F1"), "freezer"),
        (("Main laboratory", "DNA unit", "Freezer F1", "Rack A"), "rack"),
        (("Main laboratory", "DNA unit", "Freezer F1", "Rack A", "Box A1"), "box"),
        (("Main laboratory", "DNA unit", "Freezer F1", "Rack A", "Box A2"), "box"),
        (("Main laboratory", "DNA unit", "Freezer F1", "Rack B"), "rack"),
        (("Main laboratory", "DNA unit", "Freezer F1", "Rack B", "Box B1"), "box"),
    ),
    "DEMO-EAST": (
        (("Eastern laboratory",), "site"),
        (("Eastern laboratory", "Freezer E1"), "freezer"),
        (("Eastern laboratory", "Freezer E1", "Box E1"), "box"),
    ),
}


@dataclass
class DemoContents:
    """What :func:`load_demo` put in the database, with the truth behind it.

    Attributes
    ----------
    ivory, rhino : Scenario
        The simulated scenarios (truth: animals, relationships, genotyping errors).
    years : Scenario, optional
        The simulated earlier years (``--years``), when loaded.
    barcodes : dict of str to str
        Scenario item id (``SZ01-T003``, ``CARCASS-H002``) → barcode of its sample.
    counts : dict of str to int
        Records made, by kind.
    """

    ivory: Scenario
    rhino: Scenario
    years: Scenario | None = None
    barcodes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def simulate_scenarios(seed: int = DEMO_SEED) -> tuple[Scenario, Scenario, ReferenceSet,
                                                      ReferenceSet]:
    """The ivory and rhino scenarios of the demo and the reference sets they come from."""
    ivory_reference = load_reference_set(IVORY_REFERENCE)
    rhino_reference = load_reference_set(RHINO_REFERENCE)
    return (
        simulate(ivory_reference, IVORY_SPEC, seed=seed),
        simulate(rhino_reference, RHINO_SPEC, seed=seed),
        ivory_reference,
        rhino_reference,
    )


def _at(day: dt.date, hour: int, minute: int = 0, *, days: int = 0) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time(hour, minute), dt.UTC)


class _Loader:
    """Builds the demo records in one session (one transaction, committed by the caller)."""

    def __init__(self, session: Session, password_hash: str, seed: int) -> None:
        self.session = session
        self.rng = np.random.default_rng(seed)
        self.agencies = {
            spec.code: Agency(code=spec.code, name=spec.name, kind=spec.kind,
                              country=spec.country)
            for spec in AGENCIES
        }
        session.add_all(self.agencies.values())
        self.users: dict[str, User] = {}
        for spec in USERS:
            user = User(agency=self.agencies[spec.agency], username=spec.username,
                        full_name=spec.full_name, password_hash=password_hash)
            user.set_roles(set(spec.roles))
            self.users[spec.username] = user
        session.add_all(self.users.values())
        self.cases = {}
        for spec in CASES:
            case = Case(agency=self.agencies[spec.agency], reference=spec.reference,
                        title=spec.title, kind="investigation", status="open",
                        description=spec.description)
            self.cases[spec.reference] = case
        session.add_all(self.cases.values())
        session.flush()
        for case, spec in zip(self.cases.values(), CASES, strict=True):
            case.created_by_id = self._staff(spec.agency, "custodian").id
        self.storage = {}
        for agency_code, locations in STORAGE.items():
            for path, kind in locations:
                location = StorageLocation(
                    agency_id=self.agencies[agency_code].id,
                    parent=self.storage.get(path[:-1]),
                    name=path[-1],
                    kind=kind,
                )
                self.storage[path] = location
        session.add_all(self.storage.values())
        session.flush()
        self.barcodes: dict[str, str] = {}

    def _staff(self, agency_code: str, role: str) -> User:
        """The agency's first demo user holding ``role``."""
        for spec in USERS:
            if spec.agency == agency_code and role in spec.roles:
                return self.users[spec.username]
        raise LookupError(f"no demo user of {agency_code} has the role {role}")

    def _box(self, agency_code: str, index: int) -> StorageLocation:
        """One of the agency's storage boxes, taken in turn by ``index``."""
        boxes = [self.storage[path] for path, kind in STORAGE[agency_code] if kind == "box"]
        return boxes[index % len(boxes)]

    # ---------------------------------------------------------------- seizures and items
    def seizure(self, spec: DemoSeizure, scenario: Scenario, item_kind: str) -> list[Sample]:
        """The seizure, its custody up to opening at the laboratory, its items and a sample
        of each with the sample's custody."""
        case = self.cases[spec.case]
        agency_code = case.agency.code
        custodian = self._staff(agency_code, "custodian")
        analyst = self._staff(agency_code, "analyst")
        laboratory = self.agencies[agency_code].name
        seizing_agency = self.agencies[spec.seizing_agency]
        item_ids = [item.item_id for item in scenario.items if item.seizure == spec.group]
        measurements = [self._measure(item_kind) for _ in item_ids]
        seizure = Seizure(
            case=case, reference=spec.reference, seized_on=spec.seized_on, place=spec.place,
            country=spec.country, latitude=spec.latitude, longitude=spec.longitude,
            route=spec.route, seizing_agency_id=seizing_agency.id,
            declared_pieces=len(item_ids),
            declared_weight_kg=round(sum(m["weight_kg"] for m in measurements), 1),
            description=f"{len(item_ids)} {item_kind}s (simulated demo data).",
        )
        self.session.add(seizure)
        self.session.flush()
        officer = f"Seizing officer, {seizing_agency.name}"
        courier = f"Evidence courier, {laboratory}"
        day = spec.seized_on
        transcribed = "Transcribed from the seizing agency's seizure form."
        seals = [f"{spec.reference}-SEAL-{n}" for n in (1, 2)]
        for event in (
            dict(event_type="collect", to_holder=officer, place=spec.place,
                 occurred_at=_at(day, 9, 30), signature_meaning="approved", notes=transcribed),
            dict(event_type="seal", seal_numbers=seals, place=spec.place,
                 occurred_at=_at(day, 11), signature_meaning="approved", notes=transcribed),
            dict(event_type="transfer", from_holder=officer, to_holder=courier,
                 place=spec.place, occurred_at=_at(day, 8, days=2),
                 signature_meaning="witnessed"),
            dict(event_type="receive", from_holder=courier, to_holder=custodian.full_name,
                 place=laboratory, occurred_at=_at(day, 14, days=2),
                 signature_meaning="received", seal_numbers=seals,
                 notes="Seals intact on arrival."),
            dict(event_type="open", place=laboratory, occurred_at=_at(day, 9, days=3),
                 signature_meaning="performed", seal_numbers=seals,
                 notes="Opened for inventory and sampling."),
        ):
            record_event(self.session, subject=seizure, actor=custodian, **event)
        items = []
        for item_id, measure in zip(item_ids, measurements, strict=True):
            label = item_id.removeprefix(f"{spec.group}-")
            items.append(Item(seizure=seizure, label=label, kind=item_kind, **measure))
        self.session.add_all(items)
        self.session.flush()
        samples = []
        for index, (item_id, item) in enumerate(zip(item_ids, items, strict=True)):
            sample = Sample(
                barcode=f"{spec.reference}-{item.label}-S1", case=case, item=item,
                sample_type="powder", collected_at=_at(day, 10, index % 50, days=4),
                description=f"Powder drilled from the base of {item_kind} {item.label}.",
            )
            self.session.add(sample)
            self.session.flush()
            self.barcodes[item_id] = sample.barcode
            self._sample_custody(sample, agency_code, custodian, analyst, day, index)
            samples.append(sample)
        return samples

    def _measure(self, item_kind: str) -> dict[str, float]:
        if item_kind == "tusk":
            length = self.rng.uniform(45, 175)
            return {"length_cm": round(length, 1),
                    "circumference_cm": round(length * self.rng.uniform(0.22, 0.3), 1),
                    "weight_kg": round(length**2 * self.rng.uniform(6e-4, 9e-4), 1)}
        length = self.rng.uniform(18, 55)
        return {"length_cm": round(length, 1),
                "circumference_cm": round(length * self.rng.uniform(1.2, 1.6), 1),
                "weight_kg": round(length * self.rng.uniform(0.04, 0.08), 2)}

    def _sample_custody(self, sample: Sample, agency_code: str, custodian: User, analyst: User,
                        day: dt.date, index: int, *, first: str = "subsample") -> None:
        laboratory = self.agencies[agency_code].name
        seal = f"S-{sample.barcode}"
        box = self._box(agency_code, index // 20)
        for actor, event in (
            (analyst, dict(event_type=first, place=f"{laboratory}, sampling room",
                           occurred_at=_at(day, 10, index % 50, days=4),
                           signature_meaning="performed")),
            (custodian, dict(event_type="seal", seal_numbers=[seal],
                             occurred_at=_at(day, 16, days=4), signature_meaning="performed")),
            (custodian, dict(event_type="store", storage_location=box,
                             occurred_at=_at(day, 17, days=4), signature_meaning="performed")),
            (custodian, dict(event_type="transfer", from_holder=custodian.full_name,
                             to_holder=analyst.full_name, seal_numbers=[seal],
                             occurred_at=_at(day, 9, days=11), signature_meaning="released",
                             notes="For DNA extraction and genotyping.")),
            (analyst, dict(event_type="receive", from_holder=custodian.full_name,
                           to_holder=analyst.full_name, seal_numbers=[seal],
                           occurred_at=_at(day, 9, 15, days=11), signature_meaning="received",
                           notes="Seal intact.")),
        ):
            record_event(self.session, subject=sample, actor=actor, **event)

    def carcasses(self, scenario: Scenario, reference: ReferenceSet) -> list[Sample]:
        """Carcasses as source animals (found where their population lives), a tissue
        sample of each, and its custody."""
        case = self.cases[CARCASS_CASE]
        custodian = self._staff("DEMO-LAB", "custodian")
        analyst = self._staff("DEMO-LAB", "analyst")
        localities = {population.name: population for population in reference.populations}
        parks = self.agencies["DEMO-PARKS"].name
        samples = []
        items = [item for item in scenario.items if item.seizure == CARCASS_GROUP]
        for index, item in enumerate(items):
            locality = localities[item.population]
            found_on = dt.date(2024, 7, 1) + dt.timedelta(days=9 * index)
            animal = SourceAnimal(
                case=case, identifier=f"ZA-CARC-{index + 1:02d}", kind="carcass",
                species=reference.species, population=item.population,
                latitude=locality.lat, longitude=locality.lon, found_on=found_on,
                description=f"Dehorned carcass found in {locality.locality}.",
            )
            sample = Sample(
                barcode=f"{animal.identifier}-S1", case=case, source_animal=animal,
                sample_type="tissue", collected_at=_at(found_on, 12),
                description="Ear tissue in ethanol.",
            )
            self.session.add_all([animal, sample])
            self.session.flush()
            self.barcodes[item.item_id] = sample.barcode
            ranger = f"Field ranger, {parks}"
            record_event(self.session, subject=sample, actor=custodian, event_type="collect",
                         to_holder=ranger, place=locality.locality,
                         occurred_at=_at(found_on, 12), signature_meaning="approved",
                         notes="Transcribed from the carcass sampling form.")
            record_event(self.session, subject=sample, actor=custodian, event_type="transfer",
                         from_holder=ranger, to_holder=custodian.full_name,
                         occurred_at=_at(found_on, 10, days=3), signature_meaning="received")
            self._sample_custody(sample, "DEMO-LAB", custodian, analyst, found_on, index + 40,
                                 first="open")
            samples.append(sample)
        return samples

    def replicates(self, scenario: Scenario) -> list[Sample]:
        """Aliquots of a few ivory samples, typed a second time (clean replicates)."""
        custodian = self._staff("DEMO-LAB", "custodian")
        analyst = self._staff("DEMO-LAB", "analyst")
        aliquots = []
        for index, item_id in enumerate(REPLICATED_ITEMS):
            parent = self.session.scalar(
                sa.select(Sample).where(Sample.barcode == self.barcodes[item_id])
            )
            aliquot = Sample(barcode=f"{parent.barcode}-A1", case_id=parent.case_id,
                             parent=parent, sample_type="powder",
                             description="Replicate aliquot for a confirmation typing.")
            self.session.add(aliquot)
            self.session.flush()
            # Taken once the analyst holds the parent (its transfer comes a week after sampling).
            day = parent.collected_at.date() + dt.timedelta(days=10)
            self._sample_custody(aliquot, "DEMO-LAB", custodian, analyst, day, index)
            aliquots.append(aliquot)
        return aliquots

    # ---------------------------------------------------------------- genotypes
    def genotypes(self, table: GenotypeTable, barcodes: list[str], agency_code: str,
                  panel_name: str, run: str, *, release: bool = True) -> list[GenotypeProfile]:
        """Import ``table`` (rows in ``barcodes`` order) as the agency's analyst; review and
        release each profile as its reviewer."""
        table = table.replace(profile_ids=barcodes, group=None, population=None)
        with tempfile.TemporaryDirectory(prefix="dnatrack-demo-") as folder:
            path = Path(folder) / f"{run}.csv"
            write_genotypes(table, path, format="long")
            content = path.read_bytes()
        _, profiles = import_genotypes(
            self.session, content, filename=path.name, panel=resolve_panel(panel_name),
            analyst=self._staff(agency_code, "analyst"), file_format="long", run=run,
        )
        if release:
            reviewer = self._staff(agency_code, "reviewer")
            for profile in profiles:
                review_profile(profile, reviewer)
                release_profile(profile, reviewer)
        self.session.flush()
        return profiles


# ------------------------------------------------------------------- simulated years
YEARS_CASE = DemoCase(
    "DEMO-YEARS-IVORY",
    "Ivory seizures of earlier years",
    "DEMO-LAB",
    "Coded ivory seizures over several years, with tusk pairs and relatives planted across "
    "them (simulated demo data, `dnatrack demo --years N`).",
)
#: Seizure points of the simulated years: place, country, ISO code, latitude, longitude,
#: transport mode, concealment and the destination of the route.
YEAR_PORTS = (
    ("Port of Mombasa", "Kenya", "KE", -4.0435, 39.6682, "sea_cargo", "container", "VN"),
    ("Port of Dar es Salaam", "Tanzania", "TZ", -6.8235, 39.2695, "sea_cargo", "container",
     "MY"),
    ("Jomo Kenyatta International Airport", "Kenya", "KE", -1.3192, 36.9278, "air_cargo",
     "false_declaration", "TH"),
)
YEAR_ORIGINS = (("TZ", "Selous"), ("KE", "Tsavo"), ("MZ", "Niassa"), ("KE", "Amboseli"))
SEIZURES_PER_YEAR = 3
ITEMS_PER_YEAR_SEIZURE = 4


def years_spec(years: int) -> ScenarioSpec:
    """The scenario of ``years`` simulated years: three seizures a year of four tusks each,
    one tusk pair per year and a parent–offspring pair every second year, placed across
    seizures (any years). Full siblings are left out: with 16 STRs a search calibrated for
    the network misses some of them (power below one), so the network could not hold
    exactly what was planted."""
    seizures = tuple(
        SeizureSpec(f"Y{year}{k}", {YEAR_ORIGINS[(year + k) % len(YEAR_ORIGINS)][1]: 1},
                    ITEMS_PER_YEAR_SEIZURE)
        for year in range(years) for k in range(SEIZURES_PER_YEAR)
    )
    return ScenarioSpec(seizures=seizures, same_animal_pairs=years,
                        parent_offspring_pairs=(years + 1) // 2,
                        full_sibling_pairs=0, half_sibling_pairs=0,
                        item_prefix="T")


def _year_record(port: tuple, origin: str, pieces: int, weight: float) -> dict:
    _, _, country, _, _, transport, concealment, destination = port
    return {
        "discovery_country": country,
        "origins": [{"country": origin, "share": None}],
        "export_country": country,
        "transits": [{"country": "AE", "seizure_opportunity": True}],
        "destination_country": destination,
        "commodity": "ivory", "commodity_form": "raw",
        "species": [{"name": "Loxodonta africana", "quantity_kg": weight, "pieces": pieces}],
        "detecting_agency": "customs", "detection_method": "x_ray",
        "transport_mode": transport, "concealment": concealment,
        "offender_nationalities": [country], "validation_status": "validated",
    }


def load_years(session: Session, loader: _Loader, years: int, seed: int,
               reference: ReferenceSet) -> Scenario:
    """Add ``years`` years of simulated, coded ivory seizures (the years before the demo's
    2024), their genotypes released; the scenario (its truth holds the planted links)."""
    from lims.trade_records import check_record, save_record
    from lims.vocabularies import Vocabularies

    scenario = simulate(reference, years_spec(years), seed=seed)
    case = Case(agency=loader.agencies[YEARS_CASE.agency], reference=YEARS_CASE.reference,
                title=YEARS_CASE.title, kind="investigation", status="open",
                description=YEARS_CASE.description,
                created_by_id=loader._staff(YEARS_CASE.agency, "custodian").id)
    session.add(case)
    loader.cases[YEARS_CASE.reference] = case
    session.flush()
    vocabularies = Vocabularies(session)
    first_year = 2024 - years
    for index, seizure_spec in enumerate(scenario.spec.seizures):
        year, k = divmod(index, SEIZURES_PER_YEAR)
        port = YEAR_PORTS[k % len(YEAR_PORTS)]
        place, country, code, latitude, longitude = port[:5]
        day = dt.date(first_year + year, 2 + 4 * k, 10 + year % 15)
        spec = DemoSeizure(seizure_spec.name, f"{code}-Y{first_year + year}-{k + 1}",
                           YEARS_CASE.reference, day, place, country, latitude, longitude,
                           f"{place} → {port[7]}", "DEMO-CUSTOMS")
        loader.seizure(spec, scenario, "tusk")
        seizure = session.scalar(sa.select(Seizure).where(Seizure.case_id == case.id,
                                                          Seizure.reference == spec.reference))
        origin = YEAR_ORIGINS[(year + k) % len(YEAR_ORIGINS)][0]
        values, problems = check_record(
            _year_record(port, origin, seizure.declared_pieces,
                         float(seizure.declared_weight_kg)), vocabularies)
        if problems:
            raise AssertionError(f"demo record of {spec.reference}: {problems}")
        save_record(seizure, values, loader._staff("DEMO-LAB", "analyst").id, session)
        item_ids = [item.item_id for item in scenario.items if item.seizure == spec.group]
        loader.genotypes(_rows(scenario.observed, item_ids),
                         [loader.barcodes[item_id] for item_id in item_ids], "DEMO-LAB",
                         reference.panel, f"RUN-{spec.reference}")
    return scenario


def _rows(scenario_table: GenotypeTable, item_ids: list[str]) -> GenotypeTable:
    return scenario_table.take([scenario_table.index_of(item_id) for item_id in item_ids])


def load_demo(session: Session, *, seed: int = DEMO_SEED, years: int = 0) -> DemoContents:
    """Fill an empty, migrated LIMS database with the demo (not committed); with ``years``,
    also that many earlier years of simulated coded seizures (:func:`load_years`).

    Needs an application context: passwords are hashed with the application's method.

    Raises
    ------
    ValueError
        When the database already holds agencies.
    """
    if session.scalar(sa.select(sa.func.count()).select_from(Agency)):
        raise ValueError("the database is not empty: the demo loads into a new database only")
    ivory, rhino, ivory_reference, rhino_reference = simulate_scenarios(seed)
    loader = _Loader(session, hash_password(DEMO_PASSWORD), seed)
    for spec in IVORY_SEIZURES:
        agency_code = next(c.agency for c in CASES if c.reference == spec.case)
        loader.seizure(spec, ivory, "tusk")
        item_ids = [item.item_id for item in ivory.items if item.seizure == spec.group]
        loader.genotypes(_rows(ivory.observed, item_ids),
                         [loader.barcodes[item_id] for item_id in item_ids], agency_code,
                         ivory_reference.panel, f"RUN-{spec.reference}")
    for spec in RHINO_SEIZURES:
        loader.seizure(spec, rhino, "horn")
    loader.carcasses(rhino, rhino_reference)
    rhino_ids = list(rhino.observed.profile_ids)
    loader.genotypes(rhino.observed, [loader.barcodes[item_id] for item_id in rhino_ids],
                     "DEMO-LAB", rhino_reference.panel, "RUN-RHINO-2409")
    aliquots = loader.replicates(ivory)
    loader.genotypes(_rows(ivory.true_genotypes, list(REPLICATED_ITEMS)),
                     [aliquot.barcode for aliquot in aliquots], "DEMO-LAB",
                     ivory_reference.panel, "RUN-REPLICATES", release=False)
    # A run with controls, and one flagged contamination on it (lims.quality.demo).
    lab_analyst, day = loader._staff("DEMO-LAB", "analyst"), dt.date(2024, 10, 1)
    load_quality(session, reference=ivory_reference, analyst=lab_analyst,
                 parent=aliquots[0].parent, run_on=day,
                 custody=lambda sample: loader._sample_custody(
                     sample, "DEMO-LAB", loader._staff("DEMO-LAB", "custodian"), lab_analyst,
                     sample.parent.collected_at.date() + dt.timedelta(days=12), 30))
    # Both sides of every same-animal hit across seizures (or a horn and its carcass) are
    # confirmed, as an evidential report needs.
    confirm_tusk_pairs(session, ivory, loader.barcodes, lab_analyst)
    confirm_tusk_pairs(session, rhino, loader.barcodes, lab_analyst)
    extension = load_years(session, loader, years, seed, ivory_reference) if years else None
    session.flush()
    counts = {
        name: session.scalar(sa.select(sa.func.count()).select_from(model))
        for name, model in (
            ("agencies", Agency), ("users", User), ("cases", Case), ("seizures", Seizure),
            ("items", Item), ("source_animals", SourceAnimal), ("samples", Sample),
            ("profiles", GenotypeProfile), ("custody_events", CustodyEvent),
            ("storage_locations", StorageLocation),
        )
    }
    return DemoContents(ivory=ivory, rhino=rhino, barcodes=loader.barcodes, counts=counts,
                        years=extension)


# -------------------------------------------------------------------------------- the folder
@dataclass(frozen=True)
class DemoFolder:
    """A prepared demo folder: where its migrated database and instance folder are."""

    path: Path
    database_url: str
    instance_path: Path


def prepare_folder(folder: str | os.PathLike, *, reset: bool = False) -> DemoFolder:
    """Make ``folder`` a demo folder with a migrated database.

    A missing or empty folder becomes a demo folder (marked by :data:`MARKER_FILE`). A demo
    folder's database is kept (and migrated to the newest schema), or with ``reset`` deleted
    and made again. Any other folder is refused, so the demo never overwrites anyone's files.

    Raises
    ------
    DemoFolderError
        For a non-empty folder that is not a demo folder, or a path that is a file.
    """
    path = Path(folder).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise DemoFolderError(f"{path} is a file, not a folder")
    marker = path / MARKER_FILE
    if path.is_dir() and any(path.iterdir()) and not marker.is_file():
        raise DemoFolderError(
            f"{path} is not empty and is not a dnatrack demo folder (no {MARKER_FILE}); "
            "choose another folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text(MARKER_TEXT)
    database = path / DATABASE_FILE
    if reset:
        database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    upgrade(url)
    return DemoFolder(path, url, path / "instance")


def open_demo(
    folder: str | os.PathLike, *, reset: bool = False, config: Mapping[str, Any] | None = None,
    years: int = 0,
) -> tuple[Flask, DemoFolder, DemoContents | None]:
    """The LIMS application on the demo folder's database, loading the demo into a new one.

    Returns the application, the folder, and what was loaded (``None`` when an earlier demo
    database was reused). A load that fails leaves no half-filled database behind.
    """
    from lims import create_app

    prepared = prepare_folder(folder, reset=reset)
    app = create_app(
        {
            "DATABASE_URL": prepared.database_url,
            "INSTANCE_PATH": str(prepared.instance_path),
            "DEMO": True,
            # The network search's cutoffs for the demo's scale: at most ~140 profiles of a
            # panel (the default is for a database of ~1,400).
            "NETWORK_PAIRS_COMPARED": 1e4,
            **(config or {}),
        }
    )
    with app.app_context():
        if db.session.scalar(sa.select(sa.func.count()).select_from(Agency)):
            return app, prepared, None
        contents = load_demo(db.session, years=years)
        db.session.commit()
    return app, prepared, contents
