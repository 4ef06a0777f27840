"""LIMS commands: ``dnatrack db upgrade``, ``dnatrack serve``, ``dnatrack verify`` (every hash
chain), ``dnatrack custody verify`` (the custody ledger alone) and ``dnatrack admin create`` (the
first agency and administrator of a new installation).

The database is the one the LIMS itself would use: ``--database-url``, else the
``DNATRACK_DATABASE_URL`` environment variable, else the SQLite file in the instance folder.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys


def _add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: "
        "DNATRACK_DATABASE_URL, else the instance folder's SQLite file)",
    )


@contextlib.contextmanager
def _app(args: argparse.Namespace):
    """The LIMS application for the command's database; its connections closed after."""
    from lims import create_app
    from lims.extensions import db

    app = create_app({"DATABASE_URL": args.database_url} if args.database_url else None)
    try:
        yield app
    finally:
        db.engine_for(app).dispose()


def _command_error(message: str) -> Exception:
    from dnatrack.cli import CommandError

    return CommandError(message)


def _database_errors():
    from sqlalchemy.exc import SQLAlchemyError

    return SQLAlchemyError


def register(subparsers) -> None:
    database = subparsers.add_parser("db", help="LIMS database schema")
    actions = database.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser(
        "upgrade", help="create the schema or migrate it to the newest version"
    )
    _add_database_option(upgrade)
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(func=_db_upgrade)

    serve = subparsers.add_parser(
        "serve",
        help="run the LIMS web application (development server)",
        description="Run the LIMS with Werkzeug's server, for one machine or development. "
        "In production run 'lims:create_app()' under a WSGI server (e.g. gunicorn) instead.",
    )
    _add_database_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    serve.add_argument("--debug", action="store_true", help="reload on changes, show tracebacks")
    serve.set_defaults(func=_serve)

    verify_all = subparsers.add_parser(
        "verify",
        help="replay every hash chain (custody ledger, audit trail, issued reports) and name "
        "the first broken link of each, missing and truncated rows included",
    )
    _add_database_option(verify_all)
    _add_known_head_option(verify_all)
    verify_all.set_defaults(func=_verify)

    custody = subparsers.add_parser("custody", help="the custody ledger")
    custody_actions = custody.add_subparsers(dest="custody_action", metavar="ACTION", required=True)
    verify = custody_actions.add_parser(
        "verify",
        help="replay the hash chain of every custody event and name the first broken link; "
        "compare the number of events with the append counter (events cut off the end)",
    )
    _add_database_option(verify)
    _add_known_head_option(verify)
    verify.set_defaults(func=_custody_verify)

    admin = subparsers.add_parser("admin", help="LIMS administration from the command line")
    admin_actions = admin.add_subparsers(dest="admin_action", metavar="ACTION", required=True)
    create = admin_actions.add_parser(
        "create",
        help="create an administrator (and their agency, if new); the password is asked for",
    )
    _add_database_option(create)
    create.add_argument("--agency-code", required=True, help="agency code, e.g. KWS-FL")
    create.add_argument("--agency-name", help="agency name (needed when the agency is new)")
    create.add_argument(
        "--agency-kind",
        default="laboratory",
        help="laboratory, enforcement, wildlife_authority or other",
    )
    create.add_argument("--username", required=True)
    create.add_argument("--full-name", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of asking",
    )
    create.set_defaults(func=_admin_create)


def _add_known_head_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--known-head",
        action="append",
        default=[],
        metavar="HASH",
        help="a custody-ledger head hash printed earlier (e.g. on a report); it must still be "
        "in the chain, which catches a cut the counter was lowered to hide (repeatable)",
    )


def _database_error(error: Exception) -> Exception:
    """One line from a driver error (psycopg's span several)."""
    text = " ".join(str(getattr(error, "orig", None) or error).split())
    return _command_error(f"database error: {text}")


def _db_upgrade(args: argparse.Namespace) -> int:
    from lims.exchange import token_key_path
    from lims.migrate import upgrade

    with _app(args) as app:
        url = app.config["DATABASE_URL"]
        token_key = token_key_path(app.config, app.instance_path)
    try:
        upgrade(url, revision=args.revision, token_key_file=token_key)
    except _database_errors() as error:
        raise _database_error(error) from None
    print(f"database at revision {args.revision}: {_masked(url)}")
    return 0


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _serve(args: argparse.Namespace) -> int:
    from matching.warmup import ENGINE

    with _app(args) as app:
        ENGINE.start_in_background()
        app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


def _verify_chains(args: argparse.Namespace, chains: dict) -> int:
    """Replay ``chains`` (title -> chain), print each intact one, fail naming every break."""
    from lims.custody import CUSTODY_LEDGER, verify_chain
    from lims.extensions import db

    with _app(args) as app, app.app_context():
        try:
            results = {
                title: verify_chain(
                    db.session,
                    chain,
                    known_heads=args.known_head if chain is CUSTODY_LEDGER else (),
                )
                for title, chain in chains.items()
            }
        except _database_errors() as error:
            raise _database_error(error) from None
    broken = []
    for title, result in results.items():
        if result.ok:
            print(
                f"{title} intact: {result.n_events} {chains[title].short}s; head "
                f"{result.head.seq} {result.head.hash}"
            )
        else:
            broken.append(f"{title}: chain broken at {result.first_break}")
    if broken:
        raise _command_error("; ".join(broken))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from lims.audit import AUDIT_TRAIL
    from lims.custody import CUSTODY_LEDGER
    from lims.reports.issue import ISSUED_REPORTS

    return _verify_chains(
        args,
        {
            "custody ledger": CUSTODY_LEDGER,
            "audit trail": AUDIT_TRAIL,
            "issued reports": ISSUED_REPORTS,
        },
    )


def _custody_verify(args: argparse.Namespace) -> int:
    from lims.custody import CUSTODY_LEDGER

    return _verify_chains(args, {"custody ledger": CUSTODY_LEDGER})


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise _command_error("the passwords differ")
    return password


def _admin_create(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from lims.auth import MIN_PASSWORD_LENGTH, hash_password
    from lims.extensions import db
    from lims.models import AGENCY_KINDS, Agency, User

    if args.agency_kind not in AGENCY_KINDS:
        raise _command_error(f"--agency-kind must be one of {', '.join(AGENCY_KINDS)}")
    password = _read_password(args.password_stdin)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _command_error(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    with _app(args) as app, app.app_context():
        session = db.session
        try:
            agency = session.scalar(sa.select(Agency).where(Agency.code == args.agency_code))
            if agency is None:
                if not args.agency_name:
                    raise _command_error(
                        f"no agency {args.agency_code!r} yet: give --agency-name to create it"
                    )
                agency = Agency(code=args.agency_code, name=args.agency_name, kind=args.agency_kind)
                session.add(agency)
            if session.scalar(sa.select(User.id).where(User.username == args.username)):
                raise _command_error(f"user {args.username!r} exists already")
            user = User(
                agency=agency,
                username=args.username,
                full_name=args.full_name,
                password_hash=hash_password(password),
            )
            user.set_roles({"admin"})
            session.add(user)
            session.commit()
        except _database_errors() as error:
            raise _database_error(error) from None
    print(f"administrator {args.username} of agency {args.agency_code} created")
    return 0
