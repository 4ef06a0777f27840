"""Background jobs: match requests run outside the web server's request threads.

The queue is the ``match_request`` table itself: a request is created ``queued``; a worker
*claims* it with one conditional UPDATE (``queued`` → ``running`` where it is still queued),
which succeeds for exactly one worker even when several processes poll the same database, so
any number of web processes and ``dnatrack worker`` processes can share the work. While the
job runs, its progress, stage and a heartbeat are written in short transactions of their own
(so pages and the API show them); the result is written once, with the status ``done``, in a
single transaction, or the request is marked ``failed`` with a message — never half-written.
A job whose worker died (no heartbeat for ``JOB_STALE_SECONDS``) is marked failed by the next
worker that looks for work, and can be run again.

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
import os
import socket
import threading
import time

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from lims.database import utcnow
from lims.extensions import db
from lims.models import MatchRequest

DEFAULT_WORKERS = 2
HEARTBEAT_SECONDS = 30.0
# Progress is written at most this often (and on every change of stage).
PROGRESS_INTERVAL_SECONDS = 0.5

_RUNNER_KEY = "dnatrack_jobs"

_table = MatchRequest.__table__


def worker_name() -> str:
    """``host:pid:thread`` of the calling thread, stored on the requests it claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(app: Flask, request_id: int, worker: str) -> bool:
    """Take a queued request for ``worker``; False when it is not (or no longer) queued."""
    now = utcnow()
    with db.engine_for(app).begin() as connection:
        claimed = connection.execute(
            sa.update(_table)
            .where(_table.c.id == request_id, _table.c.status == "queued")
            .values(status="running", worker=worker, started_at=now, heartbeat_at=now,
                    progress=0.0, stage="starting", error=None, finished_at=None)
        ).rowcount
    return claimed == 1


def claim_next(app: Flask, worker: str) -> int | None:
    """Claim the oldest queued request; its id, or None when the queue is empty."""
    with db.engine_for(app).connect() as connection:
        candidates = connection.execute(
            sa.select(_table.c.id).where(_table.c.status == "queued")
            .order_by(_table.c.created_at, _table.c.id).limit(10)
        ).scalars().all()
    for request_id in candidates:
        if claim(app, request_id, worker):
            return request_id
    return None


def fail_stale(app: Flask, stale_seconds: float | None = None) -> int:
    """Mark failed the running requests whose worker stopped sending heartbeats; how many."""
    seconds = stale_seconds if stale_seconds is not None else app.config["JOB_STALE_SECONDS"]
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=seconds)
    with db.engine_for(app).begin() as connection:
        return connection.execute(
            sa.update(_table)
            .where(_table.c.status == "running", _table.c.heartbeat_at < cutoff)
            .values(status="failed", finished_at=now, stage=None,
                    error=f"the worker running this request stopped (no heartbeat for "
                          f"{seconds:.0f} s); run it again")
        ).rowcount


class _Progress:
    """Writes a running job's progress and stage, throttled, in transactions of its own."""

    def __init__(self, app: Flask, request_id: int, worker: str) -> None:
        self.app = app
        self.request_id = request_id
        self.worker = worker
        self.last_written = 0.0
        self.last_stage: str | None = None

    def write(self, **values) -> None:
        with db.engine_for(self.app).begin() as connection:
            connection.execute(
                sa.update(_table)
                .where(_table.c.id == self.request_id, _table.c.status == "running",
                       _table.c.worker == self.worker)
                .values(heartbeat_at=utcnow(), **values)
            )

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if stage == self.last_stage and now - self.last_written < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_written, self.last_stage = now, stage
        self.write(progress=round(min(max(fraction, 0.0), 1.0), 4), stage=stage)


class _Heartbeat(threading.Thread):
    """Keeps a running job's heartbeat fresh while one engine step runs for long."""

    def __init__(self, progress: _Progress) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{progress.request_id}")
        self.progress = progress
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            self.progress.write()


def run_claimed(app: Flask, request_id: int, worker: str) -> str:
    """Run a request this worker has claimed; its final status (``done`` or ``failed``)."""
    from lims.reports.analysis import run_analysis

    progress = _Progress(app, request_id, worker)
    heartbeat = _Heartbeat(progress)
    heartbeat.start()
    try:
        with app.app_context(), Session(db.engine_for(app)) as session:
            request = session.get(MatchRequest, request_id)
            try:
                result = run_analysis(
                    session, request, panel_directory=app.config.get("PANEL_DIRECTORY"),
                    progress=progress,
                )
                session.rollback()  # the analysis only read; start the write afresh
                request = session.get(MatchRequest, request_id)
                if request.status != "running" or request.worker != worker:
                    return request.status  # taken away meanwhile (marked stale)
                request.result = result
                request.status = "done"
                request.progress = 1.0
                request.stage = None
                request.finished_at = utcnow()
                session.commit()
                return "done"
            except Exception as error:  # every failure is stored, whatever its kind
                session.rollback()
                if not isinstance(error, ValueError):
                    app.logger.exception("match request %s failed", request_id)
                message = str(error) if isinstance(error, ValueError) else (
                    f"internal error ({type(error).__name__}: {error}); it has been logged")
                with db.engine_for(app).begin() as connection:
                    connection.execute(
                        sa.update(_table)
                        .where(_table.c.id == request_id, _table.c.worker == worker,
                               _table.c.status == "running")
                        .values(status="failed", error=message, stage=None,
                                finished_at=utcnow())
                    )
                return "failed"
    finally:
        heartbeat.stopped.set()
        heartbeat.join()


def run_queued(app: Flask, *, limit: int | None = None, worker: str | None = None) -> list[int]:
    """Run queued requests in this thread, oldest first, until none is left (or ``limit``);
    the ids run."""
    worker = worker or worker_name()
    fail_stale(app)
    done = []
    while limit is None or len(done) < limit:
        request_id = claim_next(app, worker)
        if request_id is None:
            break
        run_claimed(app, request_id, worker)
        done.append(request_id)
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
                fail_stale(self.app)
                request_id = claim_next(self.app, worker)
            except sa.exc.SQLAlchemyError:
                self.app.logger.exception("job worker could not read the queue")
                request_id = None
            if request_id is not None:
                run_claimed(self.app, request_id, worker)
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


def init_app(app: Flask) -> None:
    """Start the in-process workers on the application's first request (if any are
    configured)."""
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


def notify(app: Flask) -> None:
    """Tell the application's in-process workers (if started) that a request was queued."""
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
    if once:
        return len(run_queued(app))
    runner = JobRunner(app, n_threads, app.config["JOB_POLL_SECONDS"])
    runner.start()
    try:
        runner.wait()
    finally:
        runner.stop()
    return 0
