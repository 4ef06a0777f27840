"""Background jobs: match requests run outside the web server's request threads.

The queue is the ``match_request`` table itself: a request is created ``queued``; a worker
*claims* it with one conditional UPDATE (``queued`` → ``running`` where it is still queued),
which succeeds for exactly one worker even when several processes poll the same database, so
any number of web processes and ``dnatrack worker`` processes can share the work. While the
job runs, its progress, stage and a heartbeat are written in short transactions of their own
(so pages and the API show them); the result is written once, with the status ``done``, in a
single transaction, or the request is marked ``failed`` with a message — never half-written.

The network searches of newly released profiles (``link_search``, :mod:`lims.network`) are
jobs of the same kind, in a table with the same job columns: workers take the oldest queued
match request first, then the oldest queued search, with the same claims, heartbeats and
attempts; a search's pairs and links are written with its ``done`` status, in one transaction.

A worker that dies (killed, its machine lost) stops sending heartbeats. A running request
without one for ``JOB_STALE_SECONDS`` is given back to the queue by the next worker that looks
for work or sends a heartbeat of its own, so another worker runs it; each claim counts one
attempt, and once ``JOB_MAX_ATTEMPTS`` workers have stopped responding on it the request is
marked failed with that reason (a user may run it again). Every write of a job is conditional
on its claim (worker and attempt), so a worker that was only slow and comes back after its
request was given away stores nothing.

Two ways to run the workers:

- **in the web process**: :func:`init_app` (called by ``create_app``) starts ``JOB_WORKERS``
  threads on the application's first request (default 2; none under ``TESTING`` unless
  ``JOB_WORKERS`` is set), so command-line uses of ``create_app`` never start them;
- **in a process of its own**: ``dnatrack worker`` (:func:`run_worker`), for deployments with
  several web processes; set ``DNATRACK_JOB_WORKERS=0`` for the web processes then.

:func:`run_queued` runs the queued requests synchronously in the caller's thread (tests, and
``dnatrack worker --once``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from lims.database import utcnow
from lims.extensions import db
from lims.models import LinkSearch, MatchRequest

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
# Progress is written at most this often (and on every change of stage).
PROGRESS_INTERVAL_SECONDS = 0.5

_RUNNER_KEY = "dnatrack_jobs"

_table = MatchRequest.__table__
#: The network searches of newly released profiles (:mod:`lims.network`) share the queue
#: machinery: their table has the same job columns.
_search_table = LinkSearch.__table__
_NOUNS = {_table.name: "match request", _search_table.name: "link search"}


def worker_name() -> str:
    """``host:pid:thread`` of the calling thread, stored on the requests it claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(app: Flask, request_id: int, worker: str, table: sa.Table = _table) -> int | None:
    """Take a queued request (or, with ``table`` ``link_search``, a queued network search)
    for ``worker``: the attempt this is (1 for the first), or None when it is not (or no
    longer) queued."""
    now = utcnow()
    conditions = [table.c.id == request_id, table.c.status == "queued"]
    if table is _search_table:  # one search of a panel at a time: the next waits its turn
        other = _search_table.alias("other")
        conditions.append(~sa.exists().where(other.c.panel == table.c.panel,
                                             other.c.status == "running"))
    with db.engine_for(app).begin() as connection:
        claimed = connection.execute(
            sa.update(table)
            .where(*conditions)
            .values(status="running", worker=worker, started_at=now, heartbeat_at=now,
                    progress=0.0, stage="starting", error=None, finished_at=None,
                    attempts=table.c.attempts + 1)
        ).rowcount
        if claimed != 1:
            return None
        attempt = connection.execute(
            sa.select(table.c.attempts).where(table.c.id == request_id)
        ).scalar_one()
    logger.info("%s %s claimed by worker %s (attempt %s)", _NOUNS[table.name], request_id,
                worker, attempt)
    return attempt


def claim_next(app: Flask, worker: str, table: sa.Table = _table) -> tuple[int, int] | None:
    """Claim the oldest queued request (of ``table``): its id and the attempt, or None when
    the queue is empty."""
    with db.engine_for(app).connect() as connection:
        candidates = connection.execute(
            sa.select(table.c.id).where(table.c.status == "queued")
            .order_by(table.c.created_at, table.c.id).limit(10)
        ).scalars().all()
    for request_id in candidates:
        attempt = claim(app, request_id, worker, table)
        if attempt is not None:
            return request_id, attempt
    return None


def _claim_any(app: Flask, worker: str) -> tuple[sa.Table, int, int] | None:
    """Claim the oldest queued match request, else the oldest queued network search."""
    for table in (_table, _search_table):
        claimed = claim_next(app, worker, table)
        if claimed is not None:
            return (table, *claimed)
    return None


def _run_any(app: Flask, table: sa.Table, job_id: int, worker: str, attempt: int) -> str:
    if table is _search_table:
        return run_claimed_search(app, job_id, worker, attempt)
    return run_claimed(app, job_id, worker, attempt)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def requeue_stale(app: Flask, table: sa.Table | None = None) -> dict[int, str]:
    """Give back to the queue the running requests whose worker stopped sending heartbeats
    (``JOB_STALE_SECONDS``), or mark them failed once ``JOB_MAX_ATTEMPTS`` workers have;
    ``{request id: "queued" or "failed"}`` for those it changed. Without ``table``, the
    match requests and then the network searches (whose changes are not returned)."""
    if table is None:
        requeue_stale(app, _search_table)
        table = _table
    noun = _NOUNS[table.name]
    seconds = app.config["JOB_STALE_SECONDS"]
    max_attempts = app.config["JOB_MAX_ATTEMPTS"]
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=seconds)
    stale = (table.c.status == "running", table.c.heartbeat_at < cutoff)
    changed = {}
    with db.engine_for(app).begin() as connection:
        rows = connection.execute(
            sa.select(table.c.id, table.c.worker, table.c.attempts).where(*stale)
        ).all()
        for request_id, worker, attempts in rows:
            # The same conditions again: another worker may have dealt with it meanwhile.
            still_stale = sa.update(table).where(
                table.c.id == request_id, table.c.worker == worker,
                table.c.attempts == attempts, *stale)
            logger.warning("%s %s: heartbeat lost (worker %s, attempt %s, none for "
                           "%.0f s)", noun, request_id, worker, attempts, seconds)
            if attempts < max_attempts:
                updated = connection.execute(still_stale.values(
                    status="queued", progress=0.0, stage=None, worker=None, started_at=None,
                    heartbeat_at=None)).rowcount
                outcome = "queued"
            else:
                reason = (f"the worker running this request stopped responding "
                          f"{_times(attempts)} (no heartbeat for {seconds:.0f} s); run it again")
                updated = connection.execute(still_stale.values(
                    status="failed", finished_at=now, stage=None, error=reason)).rowcount
                outcome = "failed"
            if updated:
                changed[request_id] = outcome
    for request_id, outcome in changed.items():
        if outcome == "queued":
            logger.warning("%s %s re-queued after its worker stopped responding",
                           noun, request_id)
        else:
            logger.error("%s %s failed: its workers stopped responding %s",
                         noun, request_id, _times(max_attempts))
    return changed


def _claimed_by(request_id: int, worker: str, attempt: int, table: sa.Table = _table) -> tuple:
    """The conditions under which a row is still this worker's claim."""
    return (table.c.id == request_id, table.c.status == "running",
            table.c.worker == worker, table.c.attempts == attempt)


class _Progress:
    """Writes a running job's progress and stage, throttled, in transactions of its own."""

    def __init__(self, app: Flask, request_id: int, worker: str, attempt: int,
                 table: sa.Table = _table) -> None:
        self.app = app
        self.table = table
        self.request_id = request_id
        self.worker = worker
        self.attempt = attempt
        self.last_written = 0.0
        self.last_stage: str | None = None

    def write(self, **values) -> None:
        with db.engine_for(self.app).begin() as connection:
            connection.execute(
                sa.update(self.table)
                .where(*_claimed_by(self.request_id, self.worker, self.attempt, self.table))
                .values(heartbeat_at=utcnow(), **values)
            )

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if stage == self.last_stage and now - self.last_written < PROGRESS_INTERVAL_SECONDS:
            return
        if stage != self.last_stage:
            logger.info("%s %s: %s (%.0f%%)", _NOUNS[self.table.name], self.request_id,
                        stage, 100 * fraction)
        self.last_written, self.last_stage = now, stage
        self.write(progress=round(min(max(fraction, 0.0), 1.0), 4), stage=stage)


class _Heartbeat(threading.Thread):
    """Keeps a running job's heartbeat fresh while one engine step runs for long, and gives
    back to the queue the requests of workers that stopped sending theirs."""

    def __init__(self, progress: _Progress) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{progress.request_id}")
        self.progress = progress
        self.stopped = threading.Event()

    def run(self) -> None:
        app = self.progress.app
        while not self.stopped.wait(app.config["JOB_HEARTBEAT_SECONDS"]):
            # A missed beat is survivable (the next one comes soon); a dead thread is not.
            try:
                self.progress.write()
                requeue_stale(app)
            except sa.exc.SQLAlchemyError:
                logger.exception("match request %s: heartbeat not written",
                                 self.progress.request_id)


def _current_status(app: Flask, request_id: int) -> str:
    with db.engine_for(app).connect() as connection:
        return connection.execute(
            sa.select(_table.c.status).where(_table.c.id == request_id)).scalar_one()


def run_claimed(app: Flask, request_id: int, worker: str, attempt: int) -> str:
    """Run attempt ``attempt`` of a request this worker has claimed; the request's status
    afterwards (``done`` or ``failed``, or whatever it became if it was taken away meanwhile
    because this worker's heartbeats stopped)."""
    progress = _Progress(app, request_id, worker, attempt)
    heartbeat = _Heartbeat(progress)
    heartbeat.start()
    started = time.monotonic()
    try:
        from lims.intelligence import fold_links, fold_origins
        from lims.reports.analysis import run_analysis
        from matching.warmup import ENGINE

        # A cold engine compiles for half a minute: the job says so, with a moving bar,
        # instead of sitting at 0 on its first stage.
        ENGINE.run(progress)
        with app.app_context(), Session(db.engine_for(app)) as session:
            request = session.get(MatchRequest, request_id)
            try:
                result = run_analysis(
                    session, request, panel_directory=app.config.get("PANEL_DIRECTORY"),
                    progress=progress,
                )
                session.rollback()  # the analysis only read; the result is one write
                finished = utcnow()
                stored = session.execute(
                    sa.update(_table).where(*_claimed_by(request_id, worker, attempt))
                    .values(result=result, status="done", progress=1.0, stage=None,
                            finished_at=finished)
                ).rowcount
                if stored:  # the network and the origins map grow with each finished request
                    fold_links(session, request_id, finished, result)
                    fold_origins(session, request_id, finished, result)
                session.commit()
            except Exception as error:  # every failure is stored, whatever its kind
                session.rollback()
                if not isinstance(error, ValueError):
                    logger.exception("match request %s: internal error", request_id)
                message = str(error) if isinstance(error, ValueError) else (
                    f"internal error ({type(error).__name__}: {error}); it has been logged")
                with db.engine_for(app).begin() as connection:
                    stored = connection.execute(
                        sa.update(_table).where(*_claimed_by(request_id, worker, attempt))
                        .values(status="failed", error=message, stage=None,
                                finished_at=utcnow())
                    ).rowcount
                if stored:
                    logger.warning("match request %s failed: %s", request_id, message)
                    return "failed"
            else:
                if stored:
                    logger.info("match request %s done in %.1f s (worker %s, attempt %s)",
                                request_id, time.monotonic() - started, worker, attempt)
                    return "done"
        logger.warning("match request %s: worker %s lost its claim (attempt %s) while running "
                       "it; its outcome was not stored", request_id, worker, attempt)
        return _current_status(app, request_id)
    finally:
        heartbeat.stopped.set()
        heartbeat.join()


def run_claimed_search(app: Flask, search_id: int, worker: str, attempt: int) -> str:
    """Run attempt ``attempt`` of a network search this worker has claimed
    (:func:`lims.network.run_search`); its status afterwards, as :func:`run_claimed`."""
    from lims.network import run_search
    from matching.warmup import ENGINE

    progress = _Progress(app, search_id, worker, attempt, _search_table)
    heartbeat = _Heartbeat(progress)
    heartbeat.start()
    started = time.monotonic()
    claimed = _claimed_by(search_id, worker, attempt, _search_table)
    try:
        ENGINE.run(progress)
        with app.app_context(), Session(db.engine_for(app)) as session:
            try:
                counts = run_search(session, search_id, app, progress=progress)
                stored = session.execute(
                    sa.update(_search_table).where(*claimed)
                    .values(status="done", progress=1.0, stage=None, finished_at=utcnow(),
                            **counts)
                ).rowcount
                if stored:
                    session.commit()
                    logger.info("link search %s done in %.1f s: %s", search_id,
                                time.monotonic() - started, counts)
                    return "done"
                session.rollback()  # taken away meanwhile: its links are not stored
            except Exception as error:  # every failure is stored, whatever its kind
                session.rollback()
                if not isinstance(error, ValueError):
                    logger.exception("link search %s: internal error", search_id)
                message = str(error) if isinstance(error, ValueError) else (
                    f"internal error ({type(error).__name__}: {error}); it has been logged")
                with db.engine_for(app).begin() as connection:
                    failed = connection.execute(
                        sa.update(_search_table).where(*claimed)
                        .values(status="failed", error=message, stage=None,
                                finished_at=utcnow())
                    ).rowcount
                if failed:
                    logger.warning("link search %s failed: %s", search_id, message)
                    return "failed"
        logger.warning("link search %s: worker %s lost its claim (attempt %s) while running "
                       "it; its outcome was not stored", search_id, worker, attempt)
        with db.engine_for(app).connect() as connection:
            return connection.execute(sa.select(_search_table.c.status).where(
                _search_table.c.id == search_id)).scalar_one()
    finally:
        heartbeat.stopped.set()
        heartbeat.join()


def run_queued(app: Flask, *, limit: int | None = None, worker: str | None = None) -> list[int]:
    """Run queued requests, then queued network searches, in this thread, oldest first,
    until none is left (or ``limit`` jobs have run); the ids run."""
    worker = worker or worker_name()
    requeue_stale(app)
    done = []
    while limit is None or len(done) < limit:
        claimed = _claim_any(app, worker)
        if claimed is None:
            break
        table, job_id, attempt = claimed
        _run_any(app, table, job_id, worker, attempt)
        done.append(job_id)
    return done


class JobRunner:
    """Worker threads that claim and run queued match requests until stopped.

    Parameters
    ----------
    app
        The application (its database and configuration).
    n_threads
        Requests run at once.
    poll_seconds
        How long an idle worker waits before looking at the queue again (:meth:`notify`
        wakes it at once).
    """

    def __init__(self, app: Flask, n_threads: int, poll_seconds: float) -> None:
        if n_threads < 1:
            raise ValueError(f"a job runner needs at least one thread, got {n_threads}")
        self.app = app
        self.n_threads = n_threads
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for k in range(self.n_threads):
            thread = threading.Thread(target=self.work, daemon=True, name=f"dnatrack-job-{k}")
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """A request was queued: wake an idle worker."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the running jobs finish (waits up to ``timeout`` seconds for them)."""
        self._stopped.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def wait(self) -> None:
        """Block until the workers stop (Ctrl+C interrupts the wait)."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(1.0)

    def work(self) -> None:
        """The worker loop: claim, run, repeat; wait for work when the queue is empty."""
        worker = worker_name()
        while not self._stopped.is_set():
            try:
                requeue_stale(self.app)
                claimed = _claim_any(self.app, worker)
            except sa.exc.SQLAlchemyError:
                logger.exception("job worker %s could not read the queue", worker)
                claimed = None
            if claimed is not None:
                table, job_id, attempt = claimed
                _run_any(self.app, table, job_id, worker, attempt)
                continue
            # After a wake-up the loop claims again, so a request queued between the empty
            # claim and the wait is never missed.
            self._wake.wait(self.poll_seconds)
            self._wake.clear()


def configured_workers(app: Flask) -> int:
    """In-process worker threads: ``JOB_WORKERS``, by default 2 (0 under ``TESTING``)."""
    value = app.config.get("JOB_WORKERS")
    if value is None:
        return 0 if app.testing else DEFAULT_WORKERS
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"JOB_WORKERS must be a whole number ≥ 0, got {value!r}")
    return value


def check_timing(config) -> None:
    """Refuse job settings under which live jobs would be given away or never retried."""
    heartbeat, stale = config["JOB_HEARTBEAT_SECONDS"], config["JOB_STALE_SECONDS"]
    attempts = config["JOB_MAX_ATTEMPTS"]
    for name, value in (("JOB_HEARTBEAT_SECONDS", heartbeat), ("JOB_STALE_SECONDS", stale)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    # One late heartbeat (a busy database, a pause) must not make a live job look dead.
    if stale < 2 * heartbeat:
        raise ValueError(f"JOB_STALE_SECONDS ({stale}) must be at least twice "
                         f"JOB_HEARTBEAT_SECONDS ({heartbeat})")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"JOB_MAX_ATTEMPTS must be a whole number ≥ 1, got {attempts!r}")


def init_app(app: Flask) -> None:
    """Check the job settings; start the in-process workers on the application's first
    request (if any are configured)."""
    check_timing(app.config)
    n_threads = configured_workers(app)
    if n_threads == 0:
        return
    lock = threading.Lock()

    @app.before_request
    def _start_workers() -> None:
        if _RUNNER_KEY in app.extensions:
            return
        with lock:
            if _RUNNER_KEY not in app.extensions:
                runner = JobRunner(app, n_threads, app.config["JOB_POLL_SECONDS"])
                runner.start()
                app.extensions[_RUNNER_KEY] = runner


def notify(app: Flask, request_id: int | None = None) -> None:
    """Tell the application's in-process workers (if started) that a request was queued."""
    if request_id is None:
        logger.info("a match request was queued")
    else:
        logger.info("match request %s queued", request_id)
    wake(app)


def wake(app: Flask) -> None:
    """Wake an idle in-process worker (if started): a job may be waiting (a network search
    queued by a release)."""
    runner = app.extensions.get(_RUNNER_KEY)
    if runner is not None:
        runner.notify()


def stop(app: Flask, timeout: float | None = None) -> None:
    """Stop the application's in-process workers, if started."""
    runner = app.extensions.pop(_RUNNER_KEY, None)
    if runner is not None:
        runner.stop(timeout)


def run_worker(app: Flask, n_threads: int = 1, *, once: bool = False) -> int:
    """``dnatrack worker``: run queued requests in this process; with ``once``, until the
    queue is empty, else until interrupted. Returns the number of requests run (``once``)."""
    from matching.warmup import ENGINE

    ENGINE.start_in_background()
    if once:
        return len(run_queued(app))
    runner = JobRunner(app, n_threads, app.config["JOB_POLL_SECONDS"])
    runner.start()
    try:
        runner.wait()
    finally:
        runner.stop()
    return 0
