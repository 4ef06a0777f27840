"""The audit trail, read-only, by need-to-know on the records it describes.

A user sees the trail of the records they may see (:mod:`lims.access`), whoever made the
changes: a change made by agency A to a case shared with agency B shows in B's trail, and
nothing of an unshared case of A ever does. Users, their roles and tokens, storage locations
and the agency's own record are the agency's business. A deleted record can no longer be
looked up, so its trail is judged by the record that owned it, as its deletion entry names
it (a withdrawn share by its case, a withdrawn draft report by its match request).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from lims.access import case_ids, visible
from lims.api.routing import QueryParam, Resource, equals
from lims.api.schema import Schema, read_only
from lims.audit import record_key
from lims.models import (
    Agency,
    ApiToken,
    Attachment,
    AuditRecord,
    Case,
    CaseShare,
    ContaminationFlag,
    EliminationProfile,
    ExchangeEvent,
    ExchangeFollowUp,
    ExchangePackage,
    ExchangePartner,
    ExchangeProfile,
    Extract,
    ExtractionBatch,
    ExtractionBatchExtract,
    GenotypeImport,
    GenotypeProfile,
    GenotypingRun,
    HitConfirmation,
    Item,
    LinkSearch,
    LoginFailure,
    LoginLockout,
    MatchRequest,
    PlateWell,
    PositiveControl,
    ProfileLink,
    ProfileScreen,
    QualityRecord,
    Report,
    ReportSignature,
    Sample,
    SearchedProfile,
    Seizure,
    SeizureLink,
    SeizureOrigin,
    SeizureRecord,
    SourceAnimal,
    SpeciesTest,
    StorageLocation,
    User,
    UserRole,
    UserSession,
    VocabularyTerm,
)
from lims.reports.access import report_scope, request_scope

AUDIT_RECORD = Schema(
    "audit_record",
    (
        read_only("id", "integer", nullable=False),
        read_only("occurred_at", "date-time", nullable=False),
        read_only("actor_id", "integer", "The user who made the change (null: the system)."),
        read_only("table_name", "string", nullable=False),
        read_only("record_id", "string", "Primary key of the changed record.", nullable=False),
        read_only("action", "string", "insert, update or delete.", nullable=False),
        read_only("changes", "object", "{field: {old, new}} (secrets redacted).", nullable=False),
        read_only("seq", "integer", "Place in the hash-chained trail (1, 2, 3…).",
                  nullable=False),
        read_only("prev_hash", "string", "Hash of the record before.", nullable=False),
        read_only("hash", "string", "SHA-256 over prev_hash and this record's canonical JSON.",
                  nullable=False),
    ),
)


def _colleagues(user: User) -> sa.Select:
    return sa.select(User.id).where(visible(User, user))


def _colleague_names(user: User) -> sa.Select:
    return sa.select(User.username).where(visible(User, user))


def _visible_ids(model, user: User) -> sa.Select:
    return sa.select(model.id).where(visible(model, user))


def _own_agency(model):
    return lambda user: model.agency_id == user.agency_id


def _partners(user: User) -> sa.Select:
    return sa.select(ExchangePartner.id).where(ExchangePartner.agency_id == user.agency_id)


def _runs(user: User) -> sa.Select:
    return sa.select(GenotypingRun.id).where(GenotypingRun.agency_id == user.agency_id)


def _batches(user: User) -> sa.Select:
    return sa.select(ExtractionBatch.id).where(ExtractionBatch.agency_id == user.agency_id)


def _reports(user: User) -> sa.Select:
    return sa.select(Report.id).where(report_scope(Report, user, False))


# The rows of each audited table a user may see, where lims.access has no rule of its own.
_OWN_RULES = {
    Agency: lambda user: Agency.id == user.agency_id,
    UserRole: lambda user: UserRole.user_id.in_(_colleagues(user)),
    ApiToken: lambda user: ApiToken.user_id.in_(_colleagues(user)),
    UserSession: lambda user: UserSession.user_id.in_(_colleagues(user)),
    # Refused logins and lockouts of colleagues' account names; those of unknown names and
    # of client addresses belong to no agency and are shown to none.
    LoginFailure: lambda user: LoginFailure.username.in_(_colleague_names(user)),
    LoginLockout: lambda user: sa.and_(
        LoginLockout.scope == "account", LoginLockout.subject.in_(_colleague_names(user))
    ),
    CaseShare: lambda user: CaseShare.case_id.in_(case_ids(user)),
    MatchRequest: lambda user: request_scope(MatchRequest, user, False),
    Report: lambda user: report_scope(Report, user, False),
    ReportSignature: lambda user: ReportSignature.report_id.in_(_reports(user)),
    # The quality system: the agency's own runs, batches, controls and records; the checks
    # and confirmations of profiles and samples the user may see.
    GenotypingRun: _own_agency(GenotypingRun),
    ExtractionBatch: _own_agency(ExtractionBatch),
    PositiveControl: _own_agency(PositiveControl),
    EliminationProfile: _own_agency(EliminationProfile),
    QualityRecord: _own_agency(QualityRecord),
    PlateWell: lambda user: PlateWell.run_id.in_(_runs(user)),
    ExtractionBatchExtract: lambda user: ExtractionBatchExtract.batch_id.in_(_batches(user)),
    ContaminationFlag: lambda user: ContaminationFlag.profile_id.in_(
        _visible_ids(GenotypeProfile, user)),
    ProfileScreen: lambda user: ProfileScreen.profile_id.in_(
        _visible_ids(GenotypeProfile, user)),
    HitConfirmation: lambda user: HitConfirmation.profile_id.in_(
        _visible_ids(GenotypeProfile, user)),
    SpeciesTest: lambda user: SpeciesTest.sample_id.in_(_visible_ids(Sample, user)),
    # Exchange: the agency's own partners and what passed with them.
    ExchangePartner: _own_agency(ExchangePartner),
    ExchangeEvent: lambda user: ExchangeEvent.partner_id.in_(_partners(user)),
    ExchangeFollowUp: lambda user: ExchangeFollowUp.partner_id.in_(_partners(user)),
    ExchangePackage: lambda user: ExchangePackage.partner_id.in_(_partners(user)),
    ExchangeProfile: lambda user: ExchangeProfile.partner_id.in_(_partners(user)),
    # Intelligence: coded records and links of seizures the user may see (a link: both ends);
    # the vocabularies are the whole instance's.
    SeizureRecord: lambda user: SeizureRecord.seizure_id.in_(_visible_ids(Seizure, user)),
    SeizureLink: lambda user: sa.and_(
        SeizureLink.seizure1_id.in_(_visible_ids(Seizure, user)),
        SeizureLink.seizure2_id.in_(_visible_ids(Seizure, user))),
    VocabularyTerm: lambda user: sa.true(),
    SeizureOrigin: lambda user: SeizureOrigin.seizure_id.in_(_visible_ids(Seizure, user)),
    # The growing network's searches (a panel and counts, no case data) are the instance's;
    # the profiles they covered and the pairs they found, of profiles the user may see.
    LinkSearch: lambda user: sa.true(),
    SearchedProfile: lambda user: SearchedProfile.profile_id.in_(
        _visible_ids(GenotypeProfile, user)),
    ProfileLink: lambda user: sa.and_(
        ProfileLink.profile1_id.in_(_visible_ids(GenotypeProfile, user)),
        ProfileLink.profile2_id.in_(_visible_ids(GenotypeProfile, user))),
}
_ACCESS_RULES = (
    User,
    StorageLocation,
    Case,
    Seizure,
    Item,
    SourceAnimal,
    Sample,
    Extract,
    Attachment,
    GenotypeImport,
    GenotypeProfile,
)
AUDITED_MODELS = (*_OWN_RULES, *_ACCESS_RULES)

# For deleted rows: the column naming the record that owned them, and that record's model.
_OWNERS = {
    User: ("agency_id", Agency),
    UserRole: ("user_id", User),
    ApiToken: ("user_id", User),
    StorageLocation: ("agency_id", Agency),
    Case: ("agency_id", Agency),
    CaseShare: ("case_id", Case),
    Seizure: ("case_id", Case),
    Item: ("seizure_id", Seizure),
    SourceAnimal: ("case_id", Case),
    Sample: ("case_id", Case),
    Extract: ("sample_id", Sample),
    GenotypeImport: ("imported_by_id", User),
    GenotypeProfile: ("sample_id", Sample),
    MatchRequest: ("case_id", Case),
    Report: ("match_request_id", MatchRequest),
    ReportSignature: ("report_id", Report),
}


def _live_rows(model: type, user: User) -> ColumnElement[bool]:
    if model in _OWN_RULES:
        return _OWN_RULES[model](user)
    return visible(model, user)


def visible_record_ids(model: type, user: User) -> sa.Select:
    """The ``record_id`` values (as the trail writes them) of the rows of ``model`` that
    ``user`` may see: existing rows, and deleted rows whose owner they may see."""
    live = sa.select(record_key(model)).where(_live_rows(model, user))
    if model not in _OWNERS:
        return live
    owner_column, owner_model = _OWNERS[model]
    deletion = aliased(AuditRecord)
    owner_id = sa.cast(deletion.changes[(owner_column, "old")].as_integer(), sa.String)
    deleted = sa.select(deletion.record_id).where(
        deletion.table_name == model.__tablename__,
        deletion.action == "delete",
        owner_id.in_(visible_record_ids(owner_model, user)),
    )
    return sa.union(live, deleted)


def _changes_to_visible_records(model, user, for_writing):
    return sa.or_(
        *(
            sa.and_(
                AuditRecord.table_name == audited.__tablename__,
                AuditRecord.record_id.in_(visible_record_ids(audited, user)),
            )
            for audited in AUDITED_MODELS
        )
    )


Resource(
    "/audit-records",
    "audit record",
    AuditRecord,
    AUDIT_RECORD,
    "audit",
    (),
    read_permission=("audit.read",),
    scope=_changes_to_visible_records,
    filters=(
        equals(AuditRecord, "table_name", "string", "Changes to records of this table."),
        equals(AuditRecord, "record_id", "string", "Changes to the record with this key."),
        equals(AuditRecord, "actor_id", "integer", "Changes made by this user."),
        QueryParam(
            "since",
            "date-time",
            "Changes at or after this time.",
            apply=lambda statement, moment: statement.where(AuditRecord.occurred_at >= moment),
        ),
    ),
).register()
