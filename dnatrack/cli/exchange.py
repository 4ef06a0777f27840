"""``dnatrack exchange``: the instance's public signing key, and signed packages of released
profiles to and from partner instances (see :mod:`lims.exchange`).

``exchange key`` prints the public key partners register; ``exchange export`` writes a package
for a registered partner; ``exchange import`` verifies and imports one, or refuses it (tampered,
expired, replayed, unknown signer, profiles that do not fit the panel) importing nothing. The
database and instance folder are those of the LIMS (``--database-url``, else
``DNATRACK_DATABASE_URL``, else the instance folder's SQLite file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatrack.cli.lims_commands import _add_database_option, _app, _command_error


def register(subparsers) -> None:
    parser = subparsers.add_parser("exchange", help="signed profile packages for partner labs")
    actions = parser.add_subparsers(dest="exchange_action", metavar="ACTION", required=True)
    key = actions.add_parser("key", help="print this instance's public signing key (base64)")
    _add_database_option(key)
    key.set_defaults(func=_key)
    export = actions.add_parser(
        "export", help="write a signed package of the released profiles shared with a partner")
    _add_database_option(export)
    export.add_argument("--partner", required=True, help="the partner's registered name")
    export.add_argument("--panel", required=True, help="marker panel, e.g. elephant_16str")
    export.add_argument("--valid-days", type=float, default=30.0,
                        help="days the package stays valid (default 30)")
    export.add_argument("-o", "--output", required=True, type=Path, help="package file to write")
    export.set_defaults(func=_export)
    imported = actions.add_parser("import", help="verify and import a partner's signed package")
    _add_database_option(imported)
    imported.add_argument("package", type=Path, help="package file")
    imported.set_defaults(func=_import)


def _panels(app):
    from lims.genotyping import resolve_panel

    return lambda name: resolve_panel(name, app.config.get("PANEL_DIRECTORY"))


def _key(args: argparse.Namespace) -> int:
    from lims import exchange

    with _app(args) as app:
        print(exchange.public_key_text(exchange.app_signing_key(app)))
    return 0


def _export(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from lims import exchange
    from lims.extensions import db
    from lims.models import ExchangePartner

    with _app(args) as app, app.app_context():
        partner = db.session.scalar(
            sa.select(ExchangePartner).where(ExchangePartner.name == args.partner))
        if partner is None:
            raise _command_error(f"no partner {args.partner!r} is registered")
        try:
            panel = _panels(app)(args.panel)
            content = exchange.export_package(db.session, partner, panel,
                                              exchange.app_signing_key(app),
                                              valid_days=args.valid_days)
        except exchange.ExchangeError as error:
            raise _command_error(f"{error.code}: {error}") from None
        args.output.write_bytes(content)
        db.session.commit()
    print(f"package for {args.partner} written to {args.output}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    from lims import exchange
    from lims.extensions import db

    content = args.package.read_bytes()
    with _app(args) as app, app.app_context():
        try:
            package = exchange.import_package(db.session, content, exchange.app_signing_key(app),
                                              _panels(app))
        except exchange.ExchangeError as error:
            db.session.rollback()
            raise _command_error(f"{args.package}: {error.code}: {error}") from None
        db.session.commit()
        print(f"package {package.package_id} from {package.partner.name}: "
              f"{package.n_profiles} profiles on {package.panel} imported")
    return 0
