"""Helpers for the page tests: browsers (test clients) logged in through the login form, CSRF
tokens read from pages, and a small world of records to look at."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from html import unescape

from lims.auth import hash_password
from lims.custody import record_event
from lims.extensions import db
from lims.models import (
    Case,
    CaseShare,
    GenotypeImport,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    SourceAnimal,
    StorageLocation,
    User,
)

PASSWORD = "correct horse battery"
_USER_NUMBERS = itertools.count(1)
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(html: str) -> str:
    """The page's CSRF token (every page carries it in a meta tag)."""
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@dataclass
class Browser:
    """A test client logged in as one user through the login form."""

    client: object
    user_id: int
    username: str

    def get(self, url: str, **options):
        return self.client.get(url, **options)

    def token(self) -> str:
        return csrf_token(self.client.get("/").get_data(as_text=True))

    def post(self, url: str, data: dict | None = None, *, csrf: bool = True, **options):
        """Submit a form, with the CSRF token unless ``csrf`` is false."""
        fields = dict(data or {})
        if csrf:
            fields["csrf_token"] = self.token()
        return self.client.post(url, data=fields, **options)


def make_browser(app, agencies: dict[str, int], *roles: str, agency: str = "A",
                 username: str | None = None) -> Browser:
    """A new user with ``roles`` in ``agency``, logged in through ``/login``."""
    username = username or f"{'-'.join(roles) or 'nobody'}-{agency}-{next(_USER_NUMBERS)}"
    with app.app_context():
        user = User(agency_id=agencies[agency], username=username, full_name=username.title(),
                    password_hash=hash_password(PASSWORD))
        user.set_roles(set(roles))
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return Browser(client, user_id, username)


@dataclass
class World:
    """Ids of one agency's records: a case with a seizure, two tusks (paired), a sample of
    each, an aliquot, a carcass with a sample, a storage location, an import with a profile,
    and custody events on the seizure and the first sample."""

    case_id: int
    seizure_id: int
    item_ids: list[int]
    sample_ids: list[int]
    barcodes: list[str]
    aliquot_id: int
    animal_id: int
    animal_sample_id: int
    location_id: int
    import_id: int
    profile_id: int
    analyst_id: int


def make_world(app, agency_id: int, prefix: str) -> World:
    """Records of agency ``agency_id`` with references starting with ``prefix``."""
    with app.app_context():
        session = db.session
        analyst = User(agency_id=agency_id, username=f"{prefix}-analyst",
                       full_name=f"{prefix} Analyst")
        analyst.set_roles({"analyst", "custodian"})
        case = Case(agency_id=agency_id, reference=f"{prefix}-CASE", title=f"Case {prefix}",
                    kind="investigation")
        seizure = Seizure(case=case, reference=f"{prefix}-SZ", country="Kenya",
                          place="Mombasa", seized_on=dt.date(2024, 3, 1))
        location = StorageLocation(agency_id=agency_id, name=f"{prefix} freezer",
                                   kind="freezer")
        session.add_all([analyst, case, seizure, location])
        session.flush()
        record_event(session, event_type="collect", subject=seizure, actor=analyst,
                     signature_meaning="performed", to_holder="Officer One", place="Mombasa")
        items = [Item(seizure=seizure, label=f"T{i}", kind="tusk") for i in (1, 2)]
        session.add_all(items)
        session.flush()
        items[0].paired_item_id, items[1].paired_item_id = items[1].id, items[0].id
        samples = [
            Sample(barcode=f"{prefix}-S{i}", case=case, sample_type="powder", item=item,
                   storage_location_id=location.id)
            for i, item in enumerate(items, start=1)
        ]
        animal = SourceAnimal(case=case, identifier=f"{prefix}-CARC", kind="carcass")
        session.add_all([*samples, animal])
        session.flush()
        aliquot = Sample(barcode=f"{prefix}-S1-A1", case=case, sample_type="powder",
                         parent=samples[0])
        animal_sample = Sample(barcode=f"{prefix}-C1", case=case, sample_type="tissue",
                               source_animal=animal)
        session.add_all([aliquot, animal_sample])
        session.flush()
        record_event(session, event_type="store", subject=samples[0], actor=analyst,
                     signature_meaning="performed", storage_location=location)
        batch = GenotypeImport(filename="run.csv", file_format="long", panel="test_str4",
                               sha256="0" * 64, content=b"", n_profiles=1,
                               imported_by_id=analyst.id)
        session.add(batch)
        session.flush()
        profile = GenotypeProfile(sample_id=samples[0].id, panel="test_str4",
                                  alleles={"FH67": [120, 124]}, n_loci_typed=1,
                                  import_id=batch.id, state="pending", analyst_id=analyst.id)
        session.add(profile)
        session.commit()
        return World(case.id, seizure.id, [item.id for item in items],
                     [sample.id for sample in samples], [sample.barcode for sample in samples],
                     aliquot.id, animal.id, animal_sample.id, location.id, batch.id, profile.id,
                     analyst.id)


def share_case(app, case_id: int, agency_id: int, access: str) -> None:
    with app.app_context():
        db.session.add(CaseShare(case_id=case_id, agency_id=agency_id, access=access))
        db.session.commit()


def count(app, model) -> int:
    import sqlalchemy as sa

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def field_errors(html: str, field_id: str) -> list[str]:
    """The error messages shown beside form field ``field_id`` (empty when none)."""
    match = re.search(rf'<ul class="errors" id="{re.escape(field_id)}-errors">(.*?)</ul>', html,
                      re.S)
    if match is None:
        return []
    return [unescape(text) for text in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def input_tag(html: str, field_id: str) -> str:
    """The ``<input>`` tag of form field ``field_id``."""
    match = re.search(rf'<input[^>]*\bid="{re.escape(field_id)}"[^>]*>', html)
    assert match, f"no input {field_id}"
    return match.group(0)


def input_value(html: str, field_id: str) -> str:
    """The value shown in text input ``field_id``."""
    match = re.search(r'\bvalue="([^"]*)"', input_tag(html, field_id))
    return unescape(match.group(1)) if match else ""
