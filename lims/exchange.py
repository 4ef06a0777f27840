"""Exchange between laboratories: signed packages of released profiles and hit/no-hit search
across dnatrack instances (DESIGN 9).

Profiles leave an instance without names: a package or a search carries the panel, the
alleles, the sample type, the species and the seizure's country and year, and an *opaque
reference* per profile that only the sender can resolve (an HMAC of the sample and panel under a
key derived from the instance's signing key, different for every partner so two partners cannot
join their copies). Case details follow only on a follow-up request that an admin of the holding
agency approves, and then only for the one record asked about.

Packages
    JSON ``{"payload": {...}, "signature": <base64 Ed25519 signature>}``; the signature is over
    the canonical JSON of the payload (sorted keys, no spaces: :func:`lims.custody.canonical_json`).
    The payload names the sender's and the recipient's public keys, a random ``package_id``,
    ``created_at`` and ``expires_at``, the panel definition with its SHA-256, the content hashes
    of the bundled reference sets of the panel, and the profiles. :func:`import_package` checks,
    in this order, and refuses with :class:`ExchangeError` (importing nothing) a package that is
    not a package (``malformed``), whose signer is no registered partner (``unknown_signer``),
    whose signature does not verify against the *registered* key (``bad_signature``), that is
    meant for another instance (``wrong_recipient``), expired or not yet valid (``expired``),
    already imported (``replayed``), or whose profiles do not fit the panel (``invalid_profile``).

Search
    A partner's search names profiles and a reference set; each is searched against the released
    profiles this instance shares with that partner, with the reference set's pooled allele
    frequencies, its species' θ, the default error model and the cutoff that bounds the expected
    false matches of the whole search by one without simulating
    (:func:`matching.pair_search.markov_cutoff`; same animal also by identity search at moderate
    stringency; see :func:`matching.pair_search.find_pairs`). The answer per profile is
    ``hit`` and, for each match, the relationship, its log10 LR and our opaque reference —
    nothing else.

The instance signing key is an Ed25519 private key in PEM (PKCS 8) in the instance folder,
``exchange_signing_key.pem``, created on first use with owner-only permissions, or the file named
by ``EXCHANGE_SIGNING_KEY_FILE``. ``dnatrack exchange key`` prints its public half for partners to
register. The tokens partners issued us are kept encrypted (Fernet) under a second key beside it,
``exchange_token_key`` (or ``EXCHANGE_TOKEN_KEY_FILE``), also owner-only: the database alone does
not give them away.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from dnatrack.errors import GenotypeFormatError, UnwritableValueError
from dnatrack.formats import interchange
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel
from dnatrack.reference import ReferenceSet, load_reference_set
from lims.custody import canonical_json, format_time
from lims.database import utcnow
from lims.genotyping import ProfileError, normalise_alleles
from lims.models import (
    Agency,
    Case,
    ExchangeEvent,
    ExchangeFollowUp,
    ExchangePackage,
    ExchangePartner,
    ExchangeProfile,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    hash_token,
)
from lims.permissions import permissions_of
from lims.release import _origins
from matching.identity import IdentityCriteria
from matching.kinship import KinshipSearch
from matching.pair_search import Scoring, find_pairs, markov_cutoff, theta_for
from matching.relationships import RELATIONSHIPS, ErrorModel
from reference_data import list_reference_sets

log = logging.getLogger(__name__)

PACKAGE_FORMAT = "dnatrack-exchange-package"
PACKAGE_VERSION = 1
SIGNING_KEY_FILE = "exchange_signing_key.pem"
TOKEN_KEY_FILE = "exchange_token_key"
#: A package's validity when the exporter does not say (days).
DEFAULT_VALID_DAYS = 30
#: Clock difference between instances tolerated on ``created_at`` (seconds).
CLOCK_SKEW_SECONDS = 300
PARTNER_TOKEN_PREFIX = "dtx_"


class ExchangeError(ValueError):
    """An exchange refused: ``code`` names the reason (documented in the module docstring),
    ``status`` is the HTTP status it maps to, ``problems`` lists ``{"field", "message"}``."""

    def __init__(self, code: str, message: str, status: int = 422,
                 problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.problems = problems or []


# --- the instance signing key ------------------------------------------------------------------


def signing_key_path(config: Mapping, instance_path: str | os.PathLike) -> Path:
    return Path(config.get("EXCHANGE_SIGNING_KEY_FILE") or Path(instance_path) / SIGNING_KEY_FILE)


def _owner_only_file(path: Path, content: bytes, what: str) -> None:
    """Create ``path`` with ``content`` and owner-only permissions unless it exists; a
    concurrent creator wins the race."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    log.info("%s created: %s", what, path)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The instance's Ed25519 key from ``path`` (PEM, PKCS 8), created there on first use with
    owner-only permissions."""
    if not path.is_file():
        _owner_only_file(path, Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), "exchange signing key")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def app_signing_key(app) -> Ed25519PrivateKey:
    return load_signing_key(signing_key_path(app.config, app.instance_path))


def token_key_path(config: Mapping, instance_path: str | os.PathLike) -> Path:
    return Path(config.get("EXCHANGE_TOKEN_KEY_FILE") or Path(instance_path) / TOKEN_KEY_FILE)


def load_token_key(path: str | os.PathLike) -> Fernet:
    """The key that encrypts the tokens partners issued us, at rest (Fernet: AES-128-CBC with
    an HMAC-SHA256), from ``path``, created there on first use with owner-only permissions."""
    path = Path(path)
    _owner_only_file(path, Fernet.generate_key(), "exchange token key")
    try:
        return Fernet(path.read_bytes().strip())
    except ValueError:
        raise ValueError(f"{path}: not a Fernet key (32 bytes, url-safe base64)") from None


def app_token_key(app) -> Fernet:
    return load_token_key(token_key_path(app.config, app.instance_path))


def encrypt_token(key: Fernet, token: str | None) -> str | None:
    """``token`` as stored: Fernet ciphertext (``None`` stays ``None``)."""
    return None if token is None else key.encrypt(token.encode()).decode("ascii")


def decrypt_token(key: Fernet, stored: str | None) -> str | None:
    """The token behind :func:`encrypt_token`'s ciphertext; ``ValueError`` when it was made
    with another key or altered."""
    if stored is None:
        return None
    try:
        return key.decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise ValueError("the stored partner token does not decrypt with this instance's "
                         "token key") from None


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64: what partners register."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from :func:`public_key_text`'s form; ``ValueError`` saying what is wrong."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("must be a base64 Ed25519 public key") from None
    if len(raw) != 32:
        raise ValueError(f"must be 32 bytes of Ed25519 public key, base64 (got {len(raw)} bytes)")
    return Ed25519PublicKey.from_public_bytes(raw)


def _reference_secret(key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return hashlib.sha256(b"dnatrack exchange opaque references\x00" + raw).digest()


def opaque_reference(key: Ed25519PrivateKey, partner_id: int, sample_id: int, panel: str) -> str:
    """The reference a partner sees for one sample's profile on ``panel``: stable across exports
    and corrections, different per partner, meaningless without our key."""
    message = f"{partner_id}:{sample_id}:{panel}".encode()
    return "x" + hmac.new(_reference_secret(key), message, hashlib.sha256).hexdigest()[:31]


def new_partner_token() -> str:
    """A token we issue to a partner (shown once; we keep :func:`lims.models.hash_token` of it)."""
    return PARTNER_TOKEN_PREFIX + secrets.token_urlsafe(32)


def partner_by_token(session: Session, token: str | None) -> ExchangePartner | None:
    if not token:
        return None
    return session.execute(
        sa.select(ExchangePartner).where(ExchangePartner.inbound_token_hash == hash_token(token),
                                         ExchangePartner.active.is_(True))
    ).scalar_one_or_none()


def record_event(session: Session, kind: str, partner: ExchangePartner | None,
                 actor_id: int | None = None, **detail: Any) -> ExchangeEvent:
    """Add one exchange event (kept in the audit trail with the transaction) and log it."""
    event = ExchangeEvent(kind=kind, partner_id=partner.id if partner else None,
                          actor_id=actor_id, detail=detail)
    session.add(event)
    log.info("exchange %s: partner %s, actor %s, %s", kind,
             partner.name if partner else "-", actor_id,
             json.dumps(detail, sort_keys=True, default=str))
    return event


# --- what is shared ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SharedProfile:
    """One released profile a partner may receive, with the facts a package carries."""

    sample_id: int
    reference: str
    alleles: dict
    sample_type: str | None
    seizure_country: str | None
    seizure_year: int | None


def shared_case_condition(partner: ExchangePartner) -> sa.ColumnElement[bool]:
    """Cases whose released profiles ``partner`` may receive: its agency's, all or the chosen."""
    condition = Case.agency_id == partner.agency_id
    if not partner.share_all_cases:
        condition = condition & Case.id.in_([int(i) for i in partner.shared_case_ids or []])
    return condition


def shared_profiles(session: Session, partner: ExchangePartner, panel: str,
                    key: Ed25519PrivateKey) -> list[SharedProfile]:
    """The current released profiles on ``panel`` in the partner's shared scope (none when the
    panel is not shared with it), in profile order."""
    if panel not in (partner.shared_panels or []):
        return []
    rows = session.execute(
        sa.select(GenotypeProfile.sample_id, GenotypeProfile.alleles, Sample.sample_type)
        .join(Sample, Sample.id == GenotypeProfile.sample_id)
        .join(Case, Case.id == Sample.case_id)
        .where(GenotypeProfile.panel == panel, GenotypeProfile.state == "released",
               GenotypeProfile.superseded.is_(False), shared_case_condition(partner))
        .order_by(GenotypeProfile.id)
    ).all()
    origins = _origins(session, {row.sample_id for row in rows})
    item_ids = {item for item, _ in origins.values() if item is not None}
    seizures = {
        item_id: (country, seized_on)
        for item_id, country, seized_on in session.execute(
            sa.select(Item.id, Seizure.country, Seizure.seized_on)
            .join(Seizure, Seizure.id == Item.seizure_id).where(Item.id.in_(item_ids)))
    }
    shared = []
    for row in rows:
        country, seized_on = seizures.get(origins[row.sample_id][0], (None, None))
        shared.append(SharedProfile(
            row.sample_id, opaque_reference(key, partner.id, row.sample_id, panel),
            row.alleles, row.sample_type, country, seized_on.year if seized_on else None))
    return shared


def resolve_reference(session: Session, partner: ExchangePartner, panel: str, reference: str,
                      key: Ed25519PrivateKey) -> SharedProfile | None:
    """The shared profile behind one of our opaque references given to ``partner``."""
    for profile in shared_profiles(session, partner, panel, key):
        if hmac.compare_digest(profile.reference, reference):
            return profile
    return None


# --- packages ----------------------------------------------------------------------------------


def panel_record(panel: Panel) -> dict:
    definition = panel.to_dict()
    return {"definition": definition,
            "sha256": hashlib.sha256(canonical_json(definition)).hexdigest()}


def reference_set_hashes(panel: Panel) -> list[dict]:
    """Name and content hash of each bundled reference set typed on ``panel``."""
    hashes = []
    for name in list_reference_sets():
        reference = load_reference_set(name)
        if reference.panel == panel.name:
            hashes.append({"name": reference.name, "content_hash": reference.content_hash})
    return hashes


def sign_payload(payload: dict, key: Ed25519PrivateKey) -> bytes:
    """The package file: payload and Ed25519 signature over its canonical JSON."""
    signature = key.sign(canonical_json(payload))
    return json.dumps({"payload": payload, "signature": base64.b64encode(signature).decode()},
                      sort_keys=True, indent=1).encode()


def export_package(session: Session, partner: ExchangePartner, panel: Panel,
                   key: Ed25519PrivateKey, *, actor_id: int | None = None,
                   valid_days: float = DEFAULT_VALID_DAYS, now: dt.datetime | None = None
                   ) -> bytes:
    """A signed package for ``partner`` of the released profiles it may receive on ``panel``.

    Raises :class:`ExchangeError` when the panel is not shared with the partner. Records an
    ``export`` event (the caller commits).
    """
    if panel.name not in (partner.shared_panels or []):
        raise ExchangeError("not_shared", f"panel {panel.name} is not shared with partner "
                                          f"{partner.name}", 422,
                            [{"field": "panel", "message": "not shared with this partner"}])
    if not 0 < valid_days <= 365:
        raise ExchangeError("invalid", "valid_days must be in (0, 365]", 422,
                            [{"field": "valid_days", "message": "must be in (0, 365]"}])
    now = now or utcnow()
    profiles = shared_profiles(session, partner, panel.name, key)
    payload = {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "package_id": uuid.uuid4().hex,
        "sender_key": public_key_text(key),
        "recipient_key": partner.public_key,
        "created_at": format_time(now),
        "expires_at": format_time(now + dt.timedelta(days=valid_days)),
        "panel": panel_record(panel),
        "species": panel.species,
        "reference_sets": reference_set_hashes(panel),
        "profiles": [
            {"reference": p.reference, "alleles": p.alleles, "sample_type": p.sample_type,
             "species": panel.species, "seizure_country": p.seizure_country,
             "seizure_year": p.seizure_year}
            for p in profiles
        ],
    }
    content = sign_payload(payload, key)
    record_event(session, "export", partner, actor_id, package_id=payload["package_id"],
                 panel=panel.name, profiles=len(profiles),
                 sha256=hashlib.sha256(content).hexdigest())
    return content


def _time(payload: dict, field: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(payload[field])
    except (KeyError, TypeError, ValueError):
        raise _malformed(field, "must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _malformed(field, "must include a time zone")
    return moment


def _malformed(field: str, message: str) -> ExchangeError:
    return ExchangeError("malformed", f"not a valid exchange package: {field} {message}", 422,
                         [{"field": field, "message": message}])


def verify_package(session: Session, content: bytes, key: Ed25519PrivateKey,
                   now: dt.datetime | None = None) -> tuple[ExchangePartner, dict]:
    """The registered partner that signed ``content`` and the payload; :class:`ExchangeError`
    for every reason a package is refused (see the module docstring)."""
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _malformed("package", f"is not JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise _malformed("payload", "is missing")
    payload = document["payload"]
    if payload.get("format") != PACKAGE_FORMAT or payload.get("version") != PACKAGE_VERSION:
        raise _malformed("format", f"must be {PACKAGE_FORMAT} version {PACKAGE_VERSION}")
    sender_key = payload.get("sender_key")
    partner = session.execute(
        sa.select(ExchangePartner).where(ExchangePartner.public_key == sender_key,
                                         ExchangePartner.active.is_(True))
    ).scalar_one_or_none() if isinstance(sender_key, str) else None
    if partner is None:
        raise ExchangeError("unknown_signer", "the package is signed by a key that belongs to no "
                            "registered partner; register the partner and its public key first",
                            422, [{"field": "sender_key", "message": "not a registered partner"}])
    try:
        signature = base64.b64decode(document.get("signature", ""), validate=True)
        parse_public_key(partner.public_key).verify(signature, canonical_json(payload))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        raise ExchangeError("bad_signature", f"the signature does not verify against partner "
                            f"{partner.name}'s registered key: the package was altered or not "
                            "signed by it", 422,
                            [{"field": "signature", "message": "does not verify"}]) from None
    if payload.get("recipient_key") != public_key_text(key):
        raise ExchangeError("wrong_recipient", "the package was made for another instance", 422,
                            [{"field": "recipient_key", "message": "is not this instance's key"}])
    now = now or utcnow()
    created, expires = _time(payload, "created_at"), _time(payload, "expires_at")
    if expires <= now:
        raise ExchangeError("expired", f"the package expired at {payload['expires_at']}", 422,
                            [{"field": "expires_at", "message": "is past"}])
    if created > now + dt.timedelta(seconds=CLOCK_SKEW_SECONDS):
        raise ExchangeError("expired", f"the package is dated in the future "
                            f"({payload['created_at']})", 422,
                            [{"field": "created_at", "message": "is in the future"}])
    package_id = payload.get("package_id")
    if not isinstance(package_id, str) or not 1 <= len(package_id) <= 64:
        raise _malformed("package_id", "must be a string of at most 64 characters")
    if session.scalar(sa.select(ExchangePackage.id).where(
            ExchangePackage.package_id == package_id)) is not None:
        raise ExchangeError("replayed", f"package {package_id} was already imported", 409,
                            [{"field": "package_id", "message": "already imported"}])
    return partner, payload


def _package_panel(payload: dict, panels) -> Panel:
    record = payload.get("panel")
    if not isinstance(record, dict) or not isinstance(record.get("definition"), dict):
        raise _malformed("panel", "is missing")
    try:
        sent = Panel.from_dict(record["definition"])
    except (KeyError, TypeError, ValueError) as error:
        raise _malformed("panel", f"is not a panel definition ({error})") from None
    try:
        ours = panels(sent.name)
    except ValueError:
        raise ExchangeError("unknown_panel", f"this instance has no panel {sent.name}", 422,
                            [{"field": "panel", "message": "unknown here"}]) from None
    if canonical_json(ours.to_dict()) != canonical_json(sent.to_dict()):
        raise ExchangeError("panel_mismatch", f"panel {sent.name} is defined differently here "
                            "(loci or allele ranges differ)", 422,
                            [{"field": "panel", "message": "differs from ours"}])
    return ours


def _checked_profiles(panel: Panel, records: Any, field: str = "profiles") -> list[dict]:
    """Every profile of a package or search checked (identifier, alleles on the panel); one
    :class:`ExchangeError` listing every problem, by ``profiles[i].field``."""
    if not isinstance(records, list):
        raise _malformed(field, "must be a list")
    problems, checked, seen = [], [], set()
    for i, record in enumerate(records):
        where = f"{field}[{i}]"
        if not isinstance(record, dict):
            problems.append({"field": where, "message": "must be an object"})
            continue
        reference = record.get("reference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 64 \
                or not reference.isprintable():
            problems.append({"field": f"{where}.reference",
                             "message": "must be 1 to 64 printable characters"})
            continue
        if reference in seen:
            problems.append({"field": f"{where}.reference", "message": "is given twice"})
            continue
        seen.add(reference)
        try:
            alleles = normalise_alleles(panel, record.get("alleles") or {}) \
                if isinstance(record.get("alleles") or {}, dict) else None
        except ProfileError as error:
            problems += [{"field": f"{where}.{p['field']}", "message": p["message"]}
                         for p in error.problems]
            continue
        if alleles is None:
            problems.append({"field": f"{where}.alleles", "message": "must be an object"})
            continue
        year = record.get("seizure_year")
        if year is not None and (isinstance(year, bool) or not isinstance(year, int)
                                 or not 1900 <= year <= 2200):
            problems.append({"field": f"{where}.seizure_year", "message": "must be a year"})
            continue
        texts = {name: record.get(name) for name in ("species", "sample_type",
                                                     "seizure_country")}
        bad = [name for name, value in texts.items()
               if value is not None and (not isinstance(value, str) or len(value) > 100)]
        if bad:
            problems.append({"field": f"{where}.{bad[0]}",
                             "message": "must be text of at most 100 characters"})
            continue
        checked.append({"reference": reference, "alleles": alleles, "seizure_year": year,
                        **texts})
    if problems:
        raise ExchangeError("invalid_profile", f"{len(problems)} profile problem(s), e.g. "
                            f"{problems[0]['field']}: {problems[0]['message']}", 422, problems)
    return checked


def import_package(session: Session, content: bytes, key: Ed25519PrivateKey, panels, *,
                   actor_id: int | None = None, now: dt.datetime | None = None
                   ) -> ExchangePackage:
    """Verify and store a package and its profiles; all or nothing (the caller commits, and
    nothing is added to the session when this raises).

    ``panels(name)`` returns our panel of that name (``ValueError`` when there is none). A
    profile whose reference was imported before from the same partner with the same alleles is
    kept once; with other alleles the package is refused (``conflict``), as an imported record
    is never changed.
    """
    try:
        partner, payload = verify_package(session, content, key, now)
        panel = _package_panel(payload, panels)
        profiles = _checked_profiles(panel, payload.get("profiles"))
        new = _new_profiles(session, partner, panel, profiles)
    except ExchangeError as error:
        log.warning("exchange import refused (%s): %s", error.code, error)
        raise
    return _store_package(session, partner, panel, profiles, new, content, actor_id,
                          package_id=payload["package_id"],
                          created_at=_time(payload, "created_at"),
                          expires_at=_time(payload, "expires_at"))


def _new_profiles(session: Session, partner: ExchangePartner, panel: Panel,
                  profiles: list[dict]) -> list[dict]:
    """The profiles not imported before from ``partner``; :class:`ExchangeError` ``conflict``
    when one of its references was imported with other alleles (imported records never
    change)."""
    held = dict(session.execute(
        sa.select(ExchangeProfile.reference, ExchangeProfile.alleles).where(
            ExchangeProfile.partner_id == partner.id, ExchangeProfile.panel == panel.name)
    ).all())
    conflicts = [p["reference"] for p in profiles
                 if p["reference"] in held and held[p["reference"]] != p["alleles"]]
    if conflicts:
        raise ExchangeError("conflict", f"reference {conflicts[0]} was imported before with "
                            "other alleles; imported profiles are never changed", 409,
                            [{"field": "profiles", "message": f"{len(conflicts)} conflict(s)"}])
    return [p for p in profiles if p["reference"] not in held]


def _store_package(session: Session, partner: ExchangePartner, panel: Panel,
                   profiles: list[dict], new: list[dict], content: bytes,
                   actor_id: int | None, **package_fields: Any) -> ExchangePackage:
    format = package_fields.pop("format", PACKAGE_FORMAT)
    package = ExchangePackage(
        partner_id=partner.id, panel=panel.name, sha256=hashlib.sha256(content).hexdigest(),
        content=content, n_profiles=len(profiles), imported_by_id=actor_id, **package_fields)
    session.add(package)
    session.flush()
    if new:
        # Core insert: the package row (kept byte for byte, audited) is the record of these.
        session.execute(sa.insert(ExchangeProfile), [
            {"package_id": package.id, "partner_id": partner.id, "panel": panel.name,
             "n_loci_typed": len(p["alleles"]), **p} for p in new])
    record_event(session, "import", partner, actor_id, package_id=package.package_id,
                 panel=panel.name, profiles=len(profiles), new_profiles=len(new),
                 sha256=package.sha256, format=format)
    return package


# --- interchange formats (CODIS-style XML, ANSI/NIST-ITL Type-18) ------------------------------


def _kit(panel: Panel) -> interchange.KitMapping:
    try:
        return interchange.load_kit_mapping(panel)
    except ValueError as error:
        raise ExchangeError("no_kit_mapping", str(error), 422,
                            [{"field": "panel", "message": "has no exchange kit mapping"}]
                            ) from None


def _interchange_format(name: str) -> str:
    if name not in interchange.FORMATS:
        raise ExchangeError("unknown_format", f"format must be one of "
                            f"{', '.join(interchange.FORMATS)}", 422,
                            [{"field": "format", "message": "unknown"}])
    return name


def export_interchange(session: Session, partner: ExchangePartner, panel: Panel,
                       key: Ed25519PrivateKey, format: str, *, part: int | None = 1,
                       actor_id: int | None = None) -> tuple[list[bytes], int]:
    """The released profiles ``partner`` may receive on ``panel`` (the scope of a package) as
    CODIS-style XML or Type-18 files, named by our opaque references and the panel's kit
    mapping: file ``part`` (1-based; every file when ``None``) of the number they take (at most
    :data:`dnatrack.formats.interchange.PROFILES_PER_FILE` profiles a file), and that number.
    Unsigned: these files are for systems that do not read dnatrack packages. Records an
    ``export`` event per file (the caller commits)."""
    format = _interchange_format(format)
    if panel.name not in (partner.shared_panels or []):
        raise ExchangeError("not_shared", f"panel {panel.name} is not shared with partner "
                                          f"{partner.name}", 422,
                            [{"field": "panel", "message": "not shared with this partner"}])
    kit = _kit(panel)
    profiles = shared_profiles(session, partner, panel.name, key)
    table = genotype_table(panel, [p.reference for p in profiles], [p.alleles for p in profiles])
    parts = interchange.file_parts(table, format)
    if part is not None and not 1 <= part <= len(parts):
        raise ExchangeError("invalid", f"part must be 1 to {len(parts)}", 422,
                            [{"field": "part", "message": f"not in 1..{len(parts)}"}])
    files = []
    for number in [part] if part is not None else range(1, len(parts) + 1):
        try:
            content = interchange.dumps(format, parts[number - 1], kit)
        except UnwritableValueError as error:
            raise ExchangeError("unwritable", str(error), 422,
                                [{"field": error.field, "message": str(error)}]) from None
        record_event(session, "export", partner, actor_id, format=format, panel=panel.name,
                     part=number, parts=len(parts), profiles=len(parts[number - 1]),
                     sha256=hashlib.sha256(content).hexdigest())
        files.append(content)
    return files, len(parts)


def import_interchange(session: Session, partner: ExchangePartner, panel: Panel,
                       content: bytes, format: str, *, name: str = "upload",
                       actor_id: int | None = None, now: dt.datetime | None = None
                       ) -> ExchangePackage:
    """Profiles of a CODIS-style XML or Type-18 file from ``partner`` stored as an imported
    package (kept byte for byte; its id is the file's SHA-256, so the same file twice is a
    replay). These files carry no signature: their origin is the admin's word, recorded with
    the import. All or nothing, as for packages."""
    try:
        format = _interchange_format(format)
        if not partner.active:
            raise ExchangeError("inactive", f"partner {partner.name} is not active", 422)
        kit = _kit(panel)
        try:
            table = interchange.loads(format, content, kit, name=name)
        except GenotypeFormatError as error:
            raise ExchangeError("invalid_profile", str(error), 422,
                                [{"field": error.field or "file", "message": error.reason}]
                                ) from None
        package_id = hashlib.sha256(content).hexdigest()
        if session.scalar(sa.select(ExchangePackage.id).where(
                ExchangePackage.package_id == package_id)) is not None:
            raise ExchangeError("replayed", f"this file (SHA-256 {package_id}) was already "
                                "imported", 409,
                                [{"field": "file", "message": "already imported"}])
        records = [{"reference": reference, "alleles": alleles, "species": panel.species}
                   for reference, alleles in interchange.table_as_profiles(table)]
        profiles = _checked_profiles(panel, records)
        new = _new_profiles(session, partner, panel, profiles)
    except ExchangeError as error:
        log.warning("exchange %s import refused (%s): %s", format, error.code, error)
        raise
    now = now or utcnow()
    return _store_package(session, partner, panel, profiles, new, content, actor_id,
                          package_id=package_id, created_at=now, expires_at=now,
                          format=format)


# --- searching ---------------------------------------------------------------------------------


def genotype_table(panel: Panel, ids: Sequence[str], alleles: Sequence[Mapping]) -> GenotypeTable:
    """Profiles (``{locus: [a, b]}``) as a table at the panel's loci."""
    loci = panel.locus_names
    column = {locus: j for j, locus in enumerate(loci)}
    array = np.full((len(ids), len(loci), 2), MISSING, dtype=np.int16)
    for i, profile in enumerate(alleles):
        for locus, pair in profile.items():
            array[i, column[locus]] = pair
    return GenotypeTable(array, list(ids), loci)


def reference_for(panel: Panel, name: str | None) -> ReferenceSet:
    """The bundled reference set ``name`` typed on ``panel`` (the only one when ``name`` is
    ``None``); :class:`ExchangeError` naming the choices otherwise."""
    available = {entry["name"]: entry for entry in reference_set_hashes(panel)}
    if name is None and len(available) == 1:
        name = next(iter(available))
    if name not in available:
        raise ExchangeError("unknown_reference_set", f"name a reference set of panel "
                            f"{panel.name}: {', '.join(sorted(available)) or 'none here'}", 422,
                            [{"field": "reference_set", "message": "unknown for this panel"}])
    return load_reference_set(name)


@dataclass(frozen=True)
class Match:
    query: str
    target: str
    relationship: str
    log10_lr: float


def search_matches(panel: Panel, reference: ReferenceSet, queries: GenotypeTable,
                   targets: GenotypeTable) -> list[Match]:
    """Pairs between ``queries`` and ``targets`` (not within either) that are the same animal or
    related, scored by :func:`matching.pair_search.find_pairs` with ``reference``'s pooled
    frequencies and its species' θ, the default error model and one cutoff for every
    relationship that keeps the expected false matches of the search within one whatever the
    frequencies (:func:`matching.pair_search.markov_cutoff`: a fixed cutoff would let hundreds
    of unrelated pairs through a search of a million profiles)."""
    if not len(queries) or not len(targets):
        return []
    reference_table = reference.table.select_loci(panel.locus_names)
    # Pooled frequencies with the species' θ: the searching laboratory does not know which
    # population a partner's profile comes from (NRC II 4.10), and one table set per search.
    scoring = Scoring.for_reference(reference_table, theta_for(reference).value, ErrorModel(),
                                    frequencies="pooled")
    relationships = tuple(RELATIONSHIPS)
    cutoff = markov_cutoff(len(queries) * len(targets), len(relationships))
    search = KinshipSearch.from_reference(
        reference_table, queries, targets, **scoring.search_options(),
        relationships=relationships, cutoffs=dict.fromkeys(relationships, cutoff))
    found = find_pairs(search, queries, targets, criteria=IdentityCriteria("moderate"))
    query_ids = {str(i) for i in queries.profile_ids}
    target_ids = {str(i) for i in targets.profile_ids}
    matches = []
    for row in found.rows:
        one, other = row["sample1"], row["sample2"]
        if one in target_ids and other in query_ids:
            one, other = other, one
        if one in query_ids and other in target_ids:
            matches.append(Match(one, other, row["relationship"], float(row["log10_lr"])))
    return matches


def _recent_searches(session: Session, partner: ExchangePartner, now: dt.datetime) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(ExchangeEvent).where(
        ExchangeEvent.partner_id == partner.id, ExchangeEvent.kind == "search_received",
        ExchangeEvent.occurred_at > now - dt.timedelta(seconds=60)))


def answer_search(session: Session, partner: ExchangePartner, request: Mapping, panels,
                  key: Ed25519PrivateKey, *, max_profiles: int) -> dict:
    """A partner's hit/no-hit search: ``{"results": [{"reference", "hit", "matches":
    [{"relationship", "log10_lr", "partner_reference"}]}]}`` — the requester's references, and
    ours for the matches; nothing else about our records. Records a ``search_received`` event.

    ``request`` is ``{"panel", "reference_set"?, "profiles": [...]}``; :class:`ExchangeError`
    429 when the partner spent its searches per minute.
    """
    now = utcnow()
    if partner.searches_per_minute is not None and \
            _recent_searches(session, partner, now) >= partner.searches_per_minute:
        log.warning("exchange search refused: partner %s over %d searches per minute",
                    partner.name, partner.searches_per_minute)
        raise ExchangeError("rate_limited", f"at most {partner.searches_per_minute} searches "
                            "per minute; try again later", 429)
    panel_name = request.get("panel")
    if not isinstance(panel_name, str) or panel_name not in (partner.shared_panels or []):
        raise ExchangeError("not_shared", "name a panel shared with you", 422,
                            [{"field": "panel", "message": "not shared with you"}])
    panel = panels(panel_name)
    profiles = request.get("profiles")
    if isinstance(profiles, list) and len(profiles) > max_profiles:
        raise ExchangeError("too_many", f"at most {max_profiles} profiles per search", 422,
                            [{"field": "profiles", "message": f"more than {max_profiles}"}])
    queries = _checked_profiles(panel, profiles)
    reference = reference_for(panel, request.get("reference_set"))
    ours = shared_profiles(session, partner, panel.name, key)
    query_table = genotype_table(panel, [f"q{i}" for i in range(len(queries))],
                                 [q["alleles"] for q in queries])
    target_table = genotype_table(panel, [p.reference for p in ours], [p.alleles for p in ours])
    by_query: dict[str, list[dict]] = {}
    for match in search_matches(panel, reference, query_table, target_table):
        by_query.setdefault(match.query, []).append(
            {"relationship": match.relationship, "log10_lr": round(match.log10_lr, 3),
             "partner_reference": match.target})
    results = [{"reference": q["reference"], "hit": f"q{i}" in by_query,
                "matches": sorted(by_query.get(f"q{i}", []), key=lambda m: -m["log10_lr"])}
               for i, q in enumerate(queries)]
    record_event(session, "search_received", partner, panel=panel.name,
                 reference_set=reference.name, profiles=len(queries),
                 searched=len(ours), hits=sum(r["hit"] for r in results))
    return {"results": results}


# --- talking to partners -----------------------------------------------------------------------


class PartnerUnreachable(Exception):
    """A partner that did not answer (down, timed out, or answered something that is not JSON)."""


def call_partner(partner: ExchangePartner, method: str, path: str, body: dict | None,
                 timeout: float, token: str | None) -> tuple[int, dict]:
    """``(status, JSON body)`` of one request to a partner's API with ``token``, the one it
    issued us (:func:`decrypt_token`); :class:`PartnerUnreachable` when it does not answer
    within ``timeout`` seconds."""
    url = partner.base_url.rstrip("/") + "/api/v1" + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token or ''}",
        "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
        raise PartnerUnreachable(f"{partner.name} did not answer: "
                                 f"{getattr(error, 'reason', error)}") from None
    try:
        return status, json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PartnerUnreachable(f"{partner.name} answered HTTP {status} without JSON") from None


def search_partners(partners: Iterable[ExchangePartner], requests: Mapping[int, dict],
                    timeout: float, tokens: Mapping[int, str]) -> dict[int, dict]:
    """Send each partner its search (``requests``: partner id → body) at once; per partner id
    ``{"status": "answered", "results"}``, ``{"status": "refused", "error", "message"}`` or
    ``{"status": "unreachable", "message"}``. A partner that is down costs at most ``timeout``
    and does not hold up the others."""
    partners = list(partners)

    def one(partner: ExchangePartner) -> dict:
        try:
            status, body = call_partner(partner, "POST", "/exchange/search",
                                        requests[partner.id], timeout, tokens[partner.id])
        except PartnerUnreachable as error:
            return {"status": "unreachable", "message": str(error)}
        if status == 200 and isinstance(body.get("results"), list):
            return {"status": "answered", "results": body["results"]}
        return {"status": "refused", "http_status": status,
                "error": body.get("error"), "message": body.get("message")}

    if not partners:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(partners))) as pool:
        answers = list(pool.map(one, partners))
    return {partner.id: answer for partner, answer in zip(partners, answers, strict=True)}


# --- follow-up requests ------------------------------------------------------------------------


def receive_follow_up(session: Session, partner: ExchangePartner, request: Mapping,
                      key: Ed25519PrivateKey) -> ExchangeFollowUp:
    """Queue a partner's request for the details behind one of our references."""
    reference, panel, reason = (request.get(name) for name in ("reference", "panel", "reason"))
    problems = [{"field": name, "message": "is required text"}
                for name, value in (("reference", reference), ("panel", panel),
                                    ("reason", reason))
                if not isinstance(value, str) or not value.strip() or len(value) > 2000]
    if problems:
        raise ExchangeError("invalid", "invalid follow-up request", 422, problems)
    if resolve_reference(session, partner, panel, reference, key) is None:
        raise ExchangeError("not_found", f"no record {reference} on panel {panel} for you", 404)
    follow_up = ExchangeFollowUp(partner_id=partner.id, reference=reference, panel=panel,
                                 reason=reason.strip())
    session.add(follow_up)
    session.flush()
    record_event(session, "follow_up_received", partner, follow_up_id=follow_up.id,
                 reference=reference, panel=panel)
    return follow_up


def decide_follow_up(session: Session, follow_up: ExchangeFollowUp, user, approve: bool,
                     note: str | None) -> None:
    """An admin of the holding agency approves or refuses a pending follow-up request."""
    if follow_up.status != "pending":
        raise ExchangeError("decided", f"follow-up request {follow_up.id} was already "
                            f"{follow_up.status}", 409)
    follow_up.status = "approved" if approve else "refused"
    follow_up.decided_by_id = user.id
    follow_up.decided_at = utcnow()
    follow_up.decision_note = note
    record_event(session, "follow_up_decided", follow_up.partner, user.id,
                 follow_up_id=follow_up.id, decision=follow_up.status)


def follow_up_details(session: Session, follow_up: ExchangeFollowUp,
                      key: Ed25519PrivateKey) -> dict:
    """What the requesting partner may see of its follow-up request: the status, and once
    approved the details of the one record asked about (sample, seizure, case reference and
    holding agency) — never any other record."""
    answer = {"id": follow_up.id, "reference": follow_up.reference, "panel": follow_up.panel,
              "status": follow_up.status, "decision_note": follow_up.decision_note}
    if follow_up.status != "approved":
        return answer
    profile = resolve_reference(session, follow_up.partner, follow_up.panel,
                                follow_up.reference, key)
    if profile is None:
        answer["details"] = None
        answer["message"] = "the record is no longer shared or released"
        return answer
    sample = session.get(Sample, profile.sample_id)
    item_id = _origins(session, {sample.id})[sample.id][0]
    item = session.get(Item, item_id) if item_id is not None else None
    seizure = item and session.get(Seizure, item.seizure_id)
    case = session.get(Case, sample.case_id)
    agency = session.get(Agency, case.agency_id)
    answer["details"] = {
        "sample_barcode": sample.barcode, "sample_type": sample.sample_type,
        "item": {"label": item.label, "kind": item.kind} if item else None,
        "seizure": {"reference": seizure.reference, "country": seizure.country,
                    "place": seizure.place,
                    "seized_on": seizure.seized_on.isoformat() if seizure.seized_on else None}
        if seizure else None,
        "case_reference": case.reference,
        "holding_agency": {"code": agency.code, "name": agency.name},
    }
    record_event(session, "details_released", follow_up.partner, follow_up_id=follow_up.id,
                 reference=follow_up.reference)
    return answer


def imported_profiles(session: Session, panel: Panel, agency_id: int) -> list:
    """The profiles imported on ``panel`` from the partners of agency ``agency_id`` (need-to-know:
    a partner's profiles are its registering agency's), with their origin, in import order."""
    return session.execute(
        sa.select(ExchangePartner.name.label("partner"), ExchangePartner.id.label("partner_id"),
                  ExchangeProfile.reference,
                  ExchangeProfile.alleles, ExchangeProfile.species, ExchangeProfile.sample_type,
                  ExchangeProfile.seizure_country, ExchangeProfile.seizure_year)
        .join(ExchangePartner, ExchangePartner.id == ExchangeProfile.partner_id)
        .where(ExchangeProfile.panel == panel.name, ExchangePartner.agency_id == agency_id)
        .order_by(ExchangeProfile.id)).all()


def imported_table(panel: Panel, rows: Sequence) -> GenotypeTable:
    """:func:`imported_profiles` as a table, ids ``<partner name>:<its reference>`` (unique:
    partner names are) and groups ``partner <name>``."""
    table = genotype_table(panel, [imported_id(row) for row in rows],
                           [row.alleles for row in rows])
    return table.replace(group=np.array([f"partner {row.partner}" for row in rows],
                                        dtype=object))


def imported_id(row) -> str:
    return f"{row.partner}:{row.reference}"


def may_see_imported(user) -> bool:
    """Whether ``user``'s roles let them see their agency's imported profiles."""
    return "exchange.read" in permissions_of(user.roles)
