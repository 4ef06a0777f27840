"""The audit trail, read-only."""

from __future__ import annotations

import sqlalchemy as sa

from lims.api.routing import QueryParam, Resource, equals
from lims.api.schema import Schema, read_only
from lims.models import AuditRecord, User

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
    ),
)


def _changes_by_colleagues(model, user, for_writing):
    # The trail of one agency's work is that agency's business.
    return AuditRecord.actor_id.in_(sa.select(User.id).where(User.agency_id == user.agency_id))


Resource(
    "/audit-records",
    "audit record",
    AuditRecord,
    AUDIT_RECORD,
    "audit",
    (),
    read_permission=("audit.read",),
    scope=_changes_by_colleagues,
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
