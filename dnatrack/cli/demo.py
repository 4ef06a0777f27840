"""``dnatrack demo``: a LIMS with simulated casework on a local SQLite file, served on localhost.

The first run makes the folder (default ``./dnatrack-demo``), migrates a SQLite database in it
and loads the demo scenario (seconds); later runs reuse it (``--reset`` rebuilds it). The demo
logins are printed before the server starts.
"""

from __future__ import annotations

import argparse
import time

DEFAULT_FOLDER = "dnatrack-demo"
DEFAULT_PORT = 5000


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="create a demo LIMS with simulated seizures and serve it on localhost",
        description="Create a SQLite LIMS in a local folder, load a simulated scenario (ivory "
        "seizures with tusk pairs and relatives split across them, rhino horns matching "
        "carcasses, custody histories, released genotypes) with a demo user for each role, "
        "and serve it on http://127.0.0.1:PORT.",
    )
    parser.add_argument(
        "--folder",
        default=DEFAULT_FOLDER,
        help=f"demo folder (default ./{DEFAULT_FOLDER}); an existing folder must be empty or "
        "an earlier demo folder",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--reset", action="store_true", help="rebuild the demo database from scratch"
    )
    parser.add_argument(
        "--years", type=int, default=0, metavar="N",
        help="also load N earlier years of simulated, coded ivory seizures (three a year, "
        "with tusk pairs and relatives planted across them) for the intelligence pages; "
        "their links appear in the network once the workers have searched the released "
        "profiles (default 0; applies when the demo database is made)",
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="create the demo and exit without serving"
    )
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from lims.demo import DEMO_PASSWORD, USERS, open_demo
    from lims.extensions import db

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1..65535, got {args.port}")
    if not 0 <= args.years <= 20:
        raise ValueError(f"--years must be 0..20, got {args.years}")
    started = time.perf_counter()
    app, folder, contents = open_demo(args.folder, reset=args.reset, years=args.years)
    try:
        if contents is None:
            print(f"Reusing the demo database in {folder.path} (--reset rebuilds it).")
        else:
            counts = contents.counts
            print(
                f"Demo created in {folder.path} in {time.perf_counter() - started:.1f} s: "
                f"{counts['cases']} cases, {counts['seizures']} seizures, "
                f"{counts['samples']} samples, {counts['profiles']} genotype profiles, "
                f"{counts['custody_events']} custody events."
            )
        print(f"\nDemo logins (every password: {DEMO_PASSWORD}):")
        width = max(len(user.username) for user in USERS)
        for user in USERS:
            print(f"  {user.username:<{width}}  {', '.join(user.roles):<20} {user.agency}")
        if args.no_serve:
            return 0
        from matching.warmup import ENGINE

        ENGINE.start_in_background()
        print(f"\nOpen http://127.0.0.1:{args.port}/ in a browser; Ctrl+C stops the server.\n")
        app.run(host="127.0.0.1", port=args.port)
    finally:
        db.engine_for(app).dispose()
    return 0
