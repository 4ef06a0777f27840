"""``dnatrack aitr export`` and ``dnatrack aitr import``: the CITES AITR seizure table of the
instance's coded seizures, from the command line.

Both act as a named LIMS user (``--user``), with that user's need-to-know and permissions,
and call the same functions as the API (:func:`lims.intelligence.aitr_rows`,
:func:`lims.intelligence.import_aitr`): the export holds the coded seizures the user may read
(permission ``intelligence.read``); the import codes seizures of one agency the user may change
(``evidence.write``), all or nothing, every problem listed by row and column, and the changes
are in the audit trail under the user's name. The database is the LIMS's (``--database-url``,
else ``DNATRACK_DATABASE_URL``, else the instance folder's SQLite file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dnatrack.cli.lims_commands import (
    _add_database_option,
    _app,
    _command_error,
    _database_error,
    _database_errors,
)

logger = logging.getLogger("lims.intelligence")
FORMATS = ("csv", "xlsx")


def register(subparsers) -> None:
    aitr = subparsers.add_parser(
        "aitr", help="CITES Annual Illegal Trade Report seizure tables (export, import)")
    actions = aitr.add_subparsers(dest="aitr_action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export", help="write the AITR seizure table of the coded seizures a user may read",
        description="One row per seizure and species, as GET /api/v1/intelligence/aitr.csv "
        "and .xlsx write it.")
    _add_database_option(export)
    _add_user_option(export, "intelligence.read")
    export.add_argument("--year", type=int, help="seizures of this calendar year")
    export.add_argument("--agency", metavar="CODE", help="seizures held by this agency")
    export.add_argument("--format", choices=FORMATS,
                        help="csv or xlsx (default: from the suffix of --out)")
    export.add_argument("--out", required=True, type=Path, help="file to write")
    export.set_defaults(func=_export)
    load = actions.add_parser(
        "import", help="code seizures from an AITR table (.csv or .xlsx): all rows or none",
        description="Rows name seizures by reference within the agency; each seizure's coded "
        "record is replaced by the table's. A refused table changes nothing and every problem "
        "is listed as 'row N, column C: message'.")
    load.add_argument("file", type=Path, help="the AITR table, .csv or .xlsx")
    _add_database_option(load)
    _add_user_option(load, "evidence.write")
    load.add_argument("--agency", metavar="CODE",
                      help="agency whose seizure references the table uses (default: the "
                      "user's)")
    load.set_defaults(func=_import)


def _add_user_option(parser: argparse.ArgumentParser, permission: str) -> None:
    parser.add_argument("--user", required=True, metavar="USERNAME",
                        help=f"act as this LIMS user (needs {permission}; their need-to-know "
                        "applies)")


def _user(session, username: str, permission: str):
    import sqlalchemy as sa

    from lims.models import User
    from lims.permissions import permissions_of

    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None or not user.is_active:
        raise _command_error(f"--user: no active user {username!r}")
    if permission not in permissions_of(user.roles):
        raise _command_error(f"--user: {username} lacks the permission {permission}")
    session.info["actor_id"] = user.id  # the audit trail names them
    return user


def _agency_id(session, code: str | None, default: int | None) -> int | None:
    import sqlalchemy as sa

    from lims.models import Agency

    if code is None:
        return default
    agency_id = session.scalar(sa.select(Agency.id).where(Agency.code == code))
    if agency_id is None:
        raise _command_error(f"--agency: no agency {code!r}")
    return agency_id


def _export(args: argparse.Namespace) -> int:
    from lims import aitr, intelligence
    from lims.extensions import db

    table_format = args.format or args.out.suffix.lower().lstrip(".")
    if table_format not in FORMATS:
        raise _command_error(f"--format: give csv or xlsx (the suffix of {args.out} is "
                             f"{args.out.suffix or 'empty'})")
    with _app(args) as app, app.app_context():
        try:
            user = _user(db.session, args.user, "intelligence.read")
            agency_id = _agency_id(db.session, args.agency, None)
            rows = intelligence.aitr_rows(db.session, user, year=args.year, agency_id=agency_id)
        except _database_errors() as error:
            raise _database_error(error) from None
    content = (aitr.write_xlsx if table_format == "xlsx" else aitr.write_csv)(rows)
    args.out.write_bytes(content)
    logger.info("AITR table exported as %s by user %s from the command line: year %s, "
                "agency %s, %d rows, to %s", table_format, args.user, args.year, args.agency,
                len(rows), args.out)
    print(f"{len(rows)} rows written to {args.out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from lims import intelligence
    from lims.extensions import db

    try:
        content = args.file.read_bytes()
    except OSError as error:
        raise _command_error(f"cannot read {args.file}: {error.strerror or error}") from None
    with _app(args) as app, app.app_context():
        session = db.session
        try:
            user = _user(session, args.user, "evidence.write")
            agency_id = _agency_id(session, args.agency, user.agency_id)
            saved, problems = intelligence.import_aitr(session, user, content,
                                                       args.file.name, agency_id)
            if problems:
                session.rollback()
            else:
                session.commit()
        except _database_errors() as error:
            session.rollback()
            raise _database_error(error) from None
    if problems:
        for problem in problems:
            where = ", ".join(part for part in (
                f"row {problem['row']}" if problem["row"] is not None else "",
                f"column {problem['column']}" if problem["column"] else "") if part)
            print(f"{args.file}: {where + ': ' if where else ''}{problem['message']}",
                  file=sys.stderr)
        raise _command_error(f"{args.file} was not imported: {len(problems)} problem"
                             f"{'' if len(problems) == 1 else 's'}; nothing was changed")
    print(f"{saved} seizure records coded from {args.file}")
    return 0
