"""The LIMS data model (SQLAlchemy 2.0 declarative classes), one module per concern."""

from lims.models.custody import (
    APPEND_ONLY_TABLES,
    EVENT_TYPES,
    SIGNATURE_MEANINGS,
    AuditRecord,
    CustodyAppendLock,
    CustodyEvent,
)
from lims.models.evidence import (
    CASE_KINDS,
    CASE_STATUSES,
    ITEM_KINDS,
    SAMPLE_TYPES,
    SHARE_ACCESS,
    SOURCE_ANIMAL_KINDS,
    STORAGE_KINDS,
    Attachment,
    Case,
    CaseShare,
    Extract,
    Item,
    Sample,
    Seizure,
    SourceAnimal,
    StorageLocation,
)
from lims.models.genetics import PROFILE_STATES, GenotypeImport, GenotypeProfile
from lims.models.idempotency import IdempotencyKey
from lims.models.intelligence import SeizureLink, SeizureRecord, VocabularyTerm
from lims.models.matching import (
    ANALYSES,
    MATCH_STATUSES,
    REPORT_KINDS,
    REPORT_STATUSES,
    SIGNATURE_ROLES,
    MatchRequest,
    Report,
    ReportSignature,
)
from lims.models.people import (
    AGENCY_KINDS,
    LOCKOUT_SCOPES,
    Agency,
    ApiToken,
    LoginFailure,
    LoginLockout,
    User,
    UserRole,
    UserSession,
    hash_token,
)

__all__ = [
    "AGENCY_KINDS",
    "ANALYSES",
    "APPEND_ONLY_TABLES",
    "CASE_KINDS",
    "CASE_STATUSES",
    "EVENT_TYPES",
    "ITEM_KINDS",
    "MATCH_STATUSES",
    "PROFILE_STATES",
    "REPORT_KINDS",
    "REPORT_STATUSES",
    "SAMPLE_TYPES",
    "SHARE_ACCESS",
    "SIGNATURE_ROLES",
    "SIGNATURE_MEANINGS",
    "SOURCE_ANIMAL_KINDS",
    "STORAGE_KINDS",
    "LOCKOUT_SCOPES",
    "Agency",
    "ApiToken",
    "Attachment",
    "AuditRecord",
    "Case",
    "CaseShare",
    "CustodyAppendLock",
    "CustodyEvent",
    "Extract",
    "GenotypeImport",
    "GenotypeProfile",
    "IdempotencyKey",
    "Item",
    "LoginFailure",
    "LoginLockout",
    "MatchRequest",
    "Report",
    "ReportSignature",
    "Sample",
    "Seizure",
    "SeizureLink",
    "SeizureRecord",
    "SourceAnimal",
    "StorageLocation",
    "User",
    "UserRole",
    "UserSession",
    "VocabularyTerm",
    "hash_token",
]

# Every session that writes these models keeps the audit trail.
from lims import audit as _audit  # noqa: E402

_audit.install()
