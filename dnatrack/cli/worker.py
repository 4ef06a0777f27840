"""``dnatrack worker``: run the LIMS's queued match requests in a process of its own.

Web processes run match requests in threads of their own by default (``JOB_WORKERS``); a
deployment with several web processes, or one that keeps long analyses off the web servers,
sets ``DNATRACK_JOB_WORKERS=0`` for them and runs one or more ``dnatrack worker`` processes on
the same database. Workers claim requests atomically, so any number can share one queue.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run queued LIMS match requests and network searches (background jobs)",
        description="Claim and run queued match requests of the LIMS database, and the "
        "network searches its releases of profiles queue, until stopped (Ctrl+C), or, with "
        "--once, until the queue is empty. Any number of workers may share one database.",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL (default: DNATRACK_DATABASE_URL, else the instance folder's "
        "SQLite file)",
    )
    parser.add_argument("--threads", type=int, default=1,
                        help="requests run at once (default 1)")
    parser.add_argument("--once", action="store_true",
                        help="run what is queued now, then exit")
    parser.set_defaults(func=_worker)


def _worker(args: argparse.Namespace) -> int:
    from lims import create_app
    from lims.extensions import db
    from lims.jobs import run_worker

    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    config = {"JOB_WORKERS": 0}
    if args.database_url:
        config["DATABASE_URL"] = args.database_url
    app = create_app(config)
    try:
        ran = run_worker(app, args.threads, once=args.once)
    finally:
        db.engine_for(app).dispose()
    if args.once:
        print(f"ran {ran} match request(s)")
    return 0
