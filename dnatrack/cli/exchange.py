"""``dnatrack exchange``: the instance's public signing key, and signed packages of released
profiles to and from partner instances (see :mod:`lims.exchange`).

``exchange key`` prints the public key partners register; ``exchange export`` writes a package
for a registered partner; ``exchange import`` verifies and imports one, or refuses it (tampered,
expired, replayed, unknown signer, profiles that do not fit the panel) importing nothing.
``--format codis-xml`` or ``--format type18`` exports or imports the same profiles in the
CODIS-style XML import layout or as ANSI/NIST-ITL Type-18 records instead
(:mod:`dnatrack.formats.interchange`; unsigned, so an import names the partner it comes from). The
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
    export.add_argument("--format", choices=FORMATS, default="package",
                        help="package (signed, default), codis-xml or type18; codis-xml files "
                        "hold 5,000 profiles and type18 files 100: more are written as "
                        "OUTPUT-001.xml, …")
    export.set_defaults(func=_export)
    imported = actions.add_parser("import", help="verify and import a partner's signed package")
    _add_database_option(imported)
    imported.add_argument("package", type=Path, help="package file")
    imported.add_argument("--format", choices=FORMATS, default="package",
                          help="package (signed, default), codis-xml or type18")
    imported.add_argument("--partner", help="codis-xml and type18: the registered partner the "
                          "file comes from (these files are not signed)")
    imported.add_argument("--panel", help="codis-xml and type18: the panel of the profiles")
    imported.set_defaults(func=_import)


FORMATS = ("package", "codis-xml", "type18")


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
        key = exchange.app_signing_key(app)
        try:
            panel = _panels(app)(args.panel)
            if args.format == "package":
                files = {args.output: exchange.export_package(
                    db.session, partner, panel, key, valid_days=args.valid_days)}
            else:
                contents, parts = exchange.export_interchange(db.session, partner, panel, key,
                                                              args.format, part=None)
                files = {args.output if parts == 1 else _part_path(args.output, number): content
                         for number, content in enumerate(contents, 1)}
        except (exchange.ExchangeError, ValueError) as error:
            raise _command_error(f"{getattr(error, 'code', 'invalid')}: {error}") from None
        for path, content in files.items():
            path.write_bytes(content)
        db.session.commit()
    print(f"{args.format} for {args.partner} written to "
          f"{', '.join(str(path) for path in files)}", file=sys.stderr)
    return 0


def _part_path(path: Path, part: int) -> Path:
    return path.with_name(f"{path.stem}-{part:03d}{path.suffix}")


def _import(args: argparse.Namespace) -> int:
    from lims import exchange
    from lims.extensions import db

    if args.format != "package" and not (args.partner and args.panel):
        raise _command_error(f"--format {args.format} needs --partner and --panel")
    with _app(args) as app, app.app_context():
        try:
            if args.format == "package":
                package = exchange.import_package(db.session, args.package.read_bytes(),
                                                  exchange.app_signing_key(app), _panels(app))
            else:
                package = _import_interchange(args, app)
        except (exchange.ExchangeError, ValueError) as error:
            db.session.rollback()
            code = getattr(error, "code", "invalid")
            raise _command_error(f"{args.package}: {code}: {error}") from None
        db.session.commit()
        print(f"package {package.package_id} from {package.partner.name}: "
              f"{package.n_profiles} profiles on {package.panel} imported")
    return 0


def _import_interchange(args: argparse.Namespace, app):
    import sqlalchemy as sa

    from dnatrack.errors import GenotypeFormatError
    from dnatrack.formats.interchange import MAX_INTERCHANGE_BYTES
    from lims import exchange
    from lims.extensions import db
    from lims.models import ExchangePartner

    partner = db.session.scalar(
        sa.select(ExchangePartner).where(ExchangePartner.name == args.partner))
    if partner is None:
        raise _command_error(f"no partner {args.partner!r} is registered")
    panel = _panels(app)(args.panel)
    if args.package.stat().st_size > MAX_INTERCHANGE_BYTES:
        raise GenotypeFormatError(f"the file is more than the {MAX_INTERCHANGE_BYTES} bytes "
                                  "allowed", path=args.package)
    return exchange.import_interchange(db.session, partner, panel, args.package.read_bytes(),
                                       args.format, name=str(args.package))
