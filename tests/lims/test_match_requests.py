"""Match requests: validation, permissions, need-to-know, and the background jobs that run them
(progress, failures, stale workers, the in-process runner and ``dnatrack worker``).

The scenario (:func:`load_scenario`) is simulated from the bundled savanna elephant set: seizure
SZ-A and SZ-B in agency A's case, SZ-C in agency B's; a tusk pair split between SZ-A and SZ-B
and a parent–offspring pair between SZ-A and SZ-C, every profile released.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from dnatrack.cli import worker as worker_command
from dnatrack.reference import load_reference_set
from dnatrack.simulate import Scenario, ScenarioSpec, SeizureSpec, simulate
from lims import create_app, jobs
from lims.database import utcnow
from lims.extensions import db
from lims.models import Case, GenotypeProfile, Item, MatchRequest, Sample, Seizure, User
from lims.permissions import ROLES, permissions_of
from lims.reports.analysis import AnalysisError, AnalysisSettings, run_analysis
from tests.lims.conftest import CLI_SECRET_KEY, TEST_PASSWORD_METHOD
from tests.lims.web_support import make_browser

REFERENCE = "savanna_elephant_simulated"
PANEL = "elephant_16str"
SCENARIO_SEED = 2  # places the tusk pair across SZ-A/SZ-B and the parent–offspring pair SZ-A/SZ-C
SPEC = ScenarioSpec(
    seizures=(
        SeizureSpec("SZ-A", {"Amboseli": 1}, 4),
        SeizureSpec("SZ-B", {"Tsavo": 1}, 4),
        SeizureSpec("SZ-C", {"Samburu": 1}, 3),
    ),
    same_animal_pairs=1,
    parent_offspring_pairs=1,
    full_sibling_pairs=0,
    half_sibling_pairs=0,
    missing_rate=0.05,
    dropout_rate=0.0,
    miscall_rate=0.0,
)
#: Small simulation counts keep each job to a second or two.
FAST = {"exclusion_simulations": 500, "mixture_sweeps": 300, "mixture_burn_in": 50,
        "geo_cells": 20}
ALL_ANALYSES = ["identity", "kinship", "assignment", "mixture", "geographic"]


@dataclass
class World:
    """Ids of the scenario as loaded into the LIMS."""

    scenario: Scenario
    case_ids: dict[str, int]
    seizure_ids: dict[str, int]
    sample_ids: dict[str, int]
    agency_of_seizure: dict[str, str]


def alleles_of(table, row: int) -> dict[str, list[int]]:
    return {locus: [int(a), int(b)] for locus, (a, b) in zip(table.loci, table.alleles[row],
                                                            strict=True) if a > 0}


def load_scenario(app, agencies: dict[str, int]) -> World:
    """The simulated seizures as cases, seizures, tusks, samples and released profiles."""
    scenario = simulate(load_reference_set(REFERENCE), SPEC, seed=SCENARIO_SEED)
    owners = {"SZ-A": "A", "SZ-B": "A", "SZ-C": "B"}
    return World(scenario, *load_profiles(app, agencies, scenario.observed, owners), owners)


def load_profiles(app, agencies: dict[str, int], observed, owners: dict[str, str]
                  ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Profiles of ``observed`` (rows grouped by seizure) as released profiles of tusks, each
    seizure in the case of its owning agency (``owners``: seizure -> "A" or "B"); returns the
    ids of the cases, seizures and samples."""
    with app.app_context():
        session = db.session
        staff = {}
        for agency in sorted(set(owners.values())):
            for role in ("analyst", "reviewer"):
                user = User(agency_id=agencies[agency], username=f"lab-{role}-{agency}",
                            full_name=f"Lab {role.title()} {agency}")
                user.set_roles({role})
                session.add(user)
                staff[agency, role] = user
        cases = {agency: Case(agency_id=agencies[agency], reference=f"{agency}-CASE",
                              title=f"Ivory case of agency {agency}", kind="investigation")
                 for agency in sorted(set(owners.values()))}
        seizures = {name: Seizure(case=cases[owner], reference=name, country="Kenya")
                    for name, owner in owners.items()}
        session.add_all([*cases.values(), *seizures.values()])
        session.flush()
        now = utcnow()
        samples = {}
        for row, (item_id, group) in enumerate(zip(observed.profile_ids, observed.group,
                                                   strict=True)):
            owner = owners[group]
            item = Item(seizure=seizures[group], label=item_id.rsplit("-", 1)[1], kind="tusk")
            sample = Sample(barcode=item_id, case=cases[owner], sample_type="powder", item=item)
            alleles = alleles_of(observed, row)
            session.add_all([item, sample])
            session.flush()
            session.add(GenotypeProfile(
                sample_id=sample.id, panel=PANEL, alleles=alleles, n_loci_typed=len(alleles),
                state="released", analyst_id=staff[owner, "analyst"].id,
                reviewer_id=staff[owner, "reviewer"].id, reviewed_at=now,
                released_by_id=staff[owner, "reviewer"].id, released_at=now,
            ))
            samples[item_id] = sample
        session.commit()
        return ({agency: case.id for agency, case in cases.items()},
                {name: seizure.id for name, seizure in seizures.items()},
                {barcode: sample.id for barcode, sample in samples.items()})


def request_body(world: World, seizure: str = "SZ-A", **changes) -> dict:
    body = {"seizure_id": world.seizure_ids[seizure], "analyses": ALL_ANALYSES,
            "reference_sets": [REFERENCE], "parameters": dict(FAST)}
    body.update(changes)
    return body


def run_to_end(app, caller, body: dict) -> dict:
    """Create a request through the API, run the queue synchronously, return the request."""
    created = caller.post("/api/v1/match-requests", json=body)
    assert created.status_code == 201, created.json
    assert created.json["status"] == "queued" and created.json["progress"] == 0
    jobs.run_queued(app)
    return caller.get(f"/api/v1/match-requests/{created.json['id']}").json


@pytest.fixture
def world(app, agencies) -> World:
    return load_scenario(app, agencies)


@pytest.fixture
def investigator(login):
    return login("investigator")


# --------------------------------------------------------------------------- creating
def test_a_request_is_queued_at_once_and_a_worker_runs_it(app, world, investigator):
    created = investigator.post("/api/v1/match-requests", json=request_body(world))
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/match-requests/{created.json['id']}")
    request = created.json
    assert request["case_id"] == world.case_ids["A"]
    assert request["analyses"] == ALL_ANALYSES and request["report_ids"] == []
    # Nothing ran during the request: the job waits for a worker.
    assert investigator.get(f"/api/v1/match-requests/{request['id']}/result").status_code == 409
    assert jobs.run_queued(app) == [request["id"]]
    done = investigator.get(f"/api/v1/match-requests/{request['id']}").json
    assert done["status"] == "done" and done["progress"] == 1.0 and done["stage"] is None
    assert done["started_at"] <= done["finished_at"] and done["worker"]
    result = investigator.get(f"/api/v1/match-requests/{request['id']}/result").json
    assert result["subject"] == {"kind": "seizure", "reference": "SZ-A", "case_reference":
                                 "A-CASE", "case_title": "Ivory case of agency A",
                                 "agency": "Agency A"}
    assert {p["barcode"] for p in result["subject_profiles"]} == {
        f"SZ-A-T00{k}" for k in range(1, 5)}
    assert result["searched"] == {"released_profiles": 11, "subject_profiles": 4}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"analyses": ["identity", "palmistry"]}, "analyses", "must be one of"),
        ({"analyses": []}, "analyses", "choose from"),
        ({"reference_sets": ["atlantis_simulated"]}, "reference_sets", "not a bundled"),
        ({"reference_sets": [REFERENCE, "white_rhino_simulated"]}, "reference_sets",
         "share one panel"),
        ({"reference_sets": [REFERENCE, REFERENCE]}, "reference_sets", "twice"),
        ({"parameters": {"theta": 1.5}}, "parameters.theta", "below 1"),
        ({"parameters": {"dropout_rate": -0.1}}, "parameters.dropout_rate", "at least 0"),
        ({"parameters": {"stringency": "lax"}}, "parameters.stringency", "high, moderate"),
        ({"parameters": {"colour": "blue"}}, "parameters.colour", "unknown setting"),
        ({"parameters": {"stringency": "high", "max_mismatches": 2}}, "parameters",
         "must be 0 at high stringency"),
        ({"parameters": {"relationships": ["cousin"]}}, "parameters.relationships",
         "unknown relationship"),
        ({"seizure_id": None}, "seizure_id", "or case_id is required"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(app, world, investigator, changes, field,
                                                   message):
    response = investigator.post("/api/v1/match-requests", json=request_body(world, **changes))
    assert response.status_code == 422, response.json
    problems = response.json["details"]["problems"]
    assert any(p["field"] == field and message in p["message"] for p in problems), problems
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MatchRequest)) == 0


def test_a_subject_without_released_profiles_is_refused(app, world, investigator):
    with app.app_context():
        db.session.execute(sa.update(GenotypeProfile).values(state="reviewed"))
        db.session.commit()
    response = investigator.post("/api/v1/match-requests", json=request_body(world))
    assert response.status_code == 422
    assert response.json["details"]["problems"] == [
        {"field": "seizure_id", "message": "has no released genotype profiles on panel "
                                           "elephant_16str"}]


def test_a_case_request_analyses_every_seizure_of_the_case(app, world, investigator):
    body = request_body(world, analyses=["identity", "mixture"])
    del body["seizure_id"]
    body["case_id"] = world.case_ids["A"]
    request = run_to_end(app, investigator, body)
    result = investigator.get(f"/api/v1/match-requests/{request['id']}/result").json
    assert result["subject"]["kind"] == "case"
    assert {p["node"] for p in result["subject_profiles"]} == {
        f"seizure:{world.seizure_ids[name]}" for name in ("SZ-A", "SZ-B")}
    # The tusk pair lies within the case; both of its sides are the requester's.
    assert [(p["sample1"], p["sample2"]) for p in result["pairs"]] == [("SZ-A-T004", "SZ-B-T001")]
    assert [group["group"] for group in result["mixture"]] == ["SZ-A", "SZ-B"]
    assert result["assignment"] is None and result["geographic"] is None


def test_a_seizure_of_another_case_is_refused(app, world, investigator):
    body = request_body(world, case_id=world.case_ids["A"])
    body["seizure_id"] = world.seizure_ids["SZ-C"]
    response = investigator.post("/api/v1/match-requests", json=body)
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "seizure_id"


# --------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_request_exactly_as_its_permissions_say(app, world, login, role):
    caller = login(role)
    granted = permissions_of([role])
    response = caller.post("/api/v1/match-requests", json=request_body(world))
    assert response.status_code == (201 if "match.request" in granted else 403)
    listed = caller.get("/api/v1/match-requests")
    assert listed.status_code == (200 if "record.read" in granted else 403)
    if response.status_code == 201:
        assert [r["id"] for r in listed.json["items"]] == [response.json["id"]]


def test_requests_follow_their_case_need_to_know(app, world, investigator, login, agencies):
    request = run_to_end(app, investigator, request_body(world))
    outsider = login("investigator", "analyst", agency="B")
    for url in (f"/api/v1/match-requests/{request['id']}",
                f"/api/v1/match-requests/{request['id']}/result"):
        assert outsider.get(url).status_code == 404
    assert outsider.get("/api/v1/match-requests").json["items"] == []
    assert outsider.post(f"/api/v1/match-requests/{request['id']}/run").status_code == 404
    # Agency B cannot ask about agency A's seizure, nor A about B's.
    refused = outsider.post("/api/v1/match-requests", json=request_body(world))
    assert refused.status_code == 422
    assert refused.json["details"]["problems"][0]["field"] == "seizure_id"
    # A read-only share shows the request but allows no new one.
    owner = login("custodian")
    share = owner.put(f"/api/v1/cases/{world.case_ids['A']}/shares/{agencies['B']}",
                      json={"access": "read"})
    assert share.status_code == 201
    assert outsider.get(f"/api/v1/match-requests/{request['id']}").status_code == 200
    assert outsider.post("/api/v1/match-requests", json=request_body(world)).status_code == 403


# --------------------------------------------------------------------------- jobs
def test_progress_is_reported_in_stages_that_only_move_forward(app, world, investigator):
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    seen = []
    with app.app_context():
        request = db.session.get(MatchRequest, created["id"])
        result = run_analysis(db.session, request, progress=lambda f, s: seen.append((f, s)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1
    stages = list(dict.fromkeys(stage for _, stage in seen))
    assert stages == ["loading released profiles", "calibrating cutoffs",
                      "kinship and identity search", "population assignment",
                      "mixture proportions", "geographic assignment", "assembling the results"]
    assert result["analyses"] == ALL_ANALYSES


def test_a_running_job_shows_its_progress_through_the_api(app, world, investigator):
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    worker = jobs.worker_name()
    assert jobs.claim(app, created["id"], worker) == 1
    assert jobs.claim(app, created["id"], "another worker") is None  # claimed exactly once
    running = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert running["status"] == "running" and running["worker"] == worker
    assert running["attempts"] == 1
    jobs._Progress(app, created["id"], worker, 1)(0.42, "kinship and identity search")
    running = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert (running["progress"], running["stage"]) == (0.42, "kinship and identity search")
    assert jobs.run_claimed(app, created["id"], worker, 1) == "done"
    assert investigator.get(f"/api/v1/match-requests/{created['id']}").json["progress"] == 1.0


def test_a_failed_job_stores_its_reason_and_no_result(app, world, investigator):
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    # The profiles are taken back between the request and its run.
    with app.app_context():
        db.session.execute(sa.update(GenotypeProfile).values(superseded=True))
        db.session.commit()
    jobs.run_queued(app)
    failed = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert failed["status"] == "failed" and failed["progress"] < 1
    assert failed["error"] == "seizure SZ-A has no released genotype profiles on panel " \
                              "elephant_16str"
    assert investigator.get(f"/api/v1/match-requests/{created['id']}/result").status_code == 409
    with app.app_context():
        assert db.session.get(MatchRequest, created["id"]).result is None
    # Once the data is back, the same request runs again.
    with app.app_context():
        db.session.execute(sa.update(GenotypeProfile).values(superseded=False))
        db.session.commit()
    again = investigator.post(f"/api/v1/match-requests/{created['id']}/run")
    assert again.status_code == 200 and again.json["status"] == "queued"
    assert again.json["error"] is None
    jobs.run_queued(app)
    assert investigator.get(f"/api/v1/match-requests/{created['id']}").json["status"] == "done"
    assert investigator.post(f"/api/v1/match-requests/{created['id']}/run").status_code == 200
    assert investigator.post(f"/api/v1/match-requests/{created['id']}/run").status_code == 409


def test_an_unexpected_error_is_stored_without_a_traceback(app, world, investigator,
                                                           monkeypatch):
    def broken(*args, **options):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("matching.analysis.pipeline.estimate_mixture", broken)
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    jobs.run_queued(app)
    failed = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert failed["status"] == "failed"
    assert failed["error"] == ("internal error (ZeroDivisionError: division by zero); it has "
                               "been logged")


def stop_heartbeats(app, seconds_ago: float) -> None:
    """Make every running request look as if its last heartbeat came ``seconds_ago``."""
    with app.app_context():
        then = utcnow() - dt.timedelta(seconds=seconds_ago)
        db.session.execute(sa.update(MatchRequest).values(heartbeat_at=then))
        db.session.commit()


def test_a_request_whose_workers_stop_responding_is_requeued_then_failed(app, world,
                                                                        investigator, caplog):
    caplog.set_level(logging.INFO, logger="lims.jobs")
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    url = f"/api/v1/match-requests/{created['id']}"
    assert app.config["JOB_MAX_ATTEMPTS"] == 3
    for attempt in (1, 2, 3):
        assert jobs.claim(app, created["id"], f"worker {attempt}") == attempt
        stop_heartbeats(app, 30)  # late, but within JOB_STALE_SECONDS (40)
        assert jobs.requeue_stale(app) == {}
        stop_heartbeats(app, 41)
        outcome = "queued" if attempt < 3 else "failed"
        assert jobs.requeue_stale(app) == {created["id"]: outcome}
        state = investigator.get(url).json
        assert (state["status"], state["attempts"]) == (outcome, attempt)
    assert state["error"] == ("the worker running this request stopped responding 3 times "
                              "(no heartbeat for 40 s); run it again")
    logged = [record.getMessage() for record in caplog.records if record.name == "lims.jobs"]
    request_id = created["id"]
    assert logged[:4] == [
        f"match request {request_id} queued",
        f"match request {request_id} claimed by worker worker 1 (attempt 1)",
        f"match request {request_id}: heartbeat lost (worker worker 1, attempt 1, none for 40 s)",
        f"match request {request_id} re-queued after its worker stopped responding",
    ]
    assert logged[-1] == (f"match request {request_id} failed: its workers stopped responding "
                          "3 times")
    # The last worker's late result is not stored over the failure.
    assert jobs.run_claimed(app, created["id"], "worker 3", 3) == "failed"
    assert investigator.get(f"{url}/result").status_code == 409
    # Run again by a user, it starts counting afresh.
    again = investigator.post(f"{url}/run").json
    assert (again["status"], again["attempts"], again["error"]) == ("queued", 0, None)
    jobs.run_queued(app)
    assert (investigator.get(url).json["status"], investigator.get(url).json["attempts"]) == (
        "done", 1)


def test_a_worker_given_up_for_dead_stores_nothing_when_it_comes_back(app, world,
                                                                     investigator):
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    assert jobs.claim(app, created["id"], "slow worker") == 1
    stop_heartbeats(app, 600)
    assert jobs.requeue_stale(app) == {created["id"]: "queued"}
    assert jobs.claim(app, created["id"], "second worker") == 2
    # The first worker wakes up: neither its progress nor its result lands on the second's run.
    jobs._Progress(app, created["id"], "slow worker", 1)(0.9, "assembling the results")
    assert jobs.run_claimed(app, created["id"], "slow worker", 1) == "running"
    state = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert (state["worker"], state["progress"], state["stage"]) == ("second worker", 0,
                                                                    "starting")
    assert jobs.run_claimed(app, created["id"], "second worker", 2) == "done"


def test_heartbeats_keep_a_long_job_with_its_worker(app, world, investigator, monkeypatch,
                                                   caplog):
    app.config.update(JOB_HEARTBEAT_SECONDS=0.1, JOB_STALE_SECONDS=0.5)
    from matching.analysis import pipeline as analysis

    real = analysis.estimate_mixture

    def slow(*arguments, **options):
        time.sleep(1.5)  # three times the staleness, with no progress written meanwhile
        return real(*arguments, **options)

    monkeypatch.setattr(analysis, "estimate_mixture", slow)
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    caplog.set_level(logging.INFO, logger="lims.jobs")
    assert jobs.run_queued(app, worker="w-1") == [created["id"]]
    state = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert (state["status"], state["attempts"]) == ("done", 1)
    logged = [record.getMessage() for record in caplog.records if record.name == "lims.jobs"]
    milestones = [message for message in logged
                  if re.fullmatch(rf"match request {created['id']}: .* \(\d+%\)", message)]
    assert [message.split(": ")[1].split(" (")[0] for message in milestones] == [
        "loading released profiles", "calibrating cutoffs", "kinship and identity search",
        "population assignment", "mixture proportions", "geographic assignment",
        "assembling the results"]
    assert re.fullmatch(rf"match request {created['id']} done in \d+\.\d s \(worker w-1, "
                        r"attempt 1\)", logged[-1])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"JOB_HEARTBEAT_SECONDS": 0}, "JOB_HEARTBEAT_SECONDS must be a number of seconds > 0"),
        ({"JOB_STALE_SECONDS": "soon"}, "JOB_STALE_SECONDS must be a number"),
        ({"JOB_HEARTBEAT_SECONDS": 30, "JOB_STALE_SECONDS": 40}, "at least twice"),
        ({"JOB_MAX_ATTEMPTS": 0}, "JOB_MAX_ATTEMPTS must be a whole number"),
    ],
)
def test_job_timing_settings_are_checked_at_start(database_url, tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test secret",
                    "INSTANCE_PATH": str(tmp_path / "instance"), **settings})


def wait_until_under_way(app, request_id: int, worker: subprocess.Popen, seconds: float
                         ) -> tuple[str, str | None]:
    """Status and stage once ``worker`` has started the analysis proper (or has ended, or
    the time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        with db.engine_for(app).connect() as connection:
            status, stage = connection.execute(sa.select(
                MatchRequest.status, MatchRequest.stage).where(MatchRequest.id == request_id)
            ).one()
        if (status, stage) not in (("queued", None), ("running", "starting")):
            return status, stage
        if time.monotonic() > deadline or worker.poll() is not None:
            return status, stage
        time.sleep(0.05)


def test_a_killed_worker_process_gives_its_request_back_to_the_queue(app, world, investigator,
                                                                     database_url, tmp_path):
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    timing = {"DNATRACK_JOB_POLL_SECONDS": "0.1", "DNATRACK_JOB_HEARTBEAT_SECONDS": "0.2",
              "DNATRACK_JOB_STALE_SECONDS": "1"}
    environment = {**os.environ, **timing, "DNATRACK_DATABASE_URL": database_url,
                   "DNATRACK_SECRET_KEY": CLI_SECRET_KEY,
                   "DNATRACK_INSTANCE_PATH": str(tmp_path / "worker")}
    command = [str(Path(sys.executable).with_name("dnatrack")), "worker"]
    worker = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        status, stage = wait_until_under_way(app, created["id"], worker, 120)
    finally:
        worker.kill()
        errors = worker.communicate(timeout=30)[1].decode()
    killed = time.monotonic()
    assert status == "running", (status, stage, errors[-2000:])
    assert investigator.get(f"/api/v1/match-requests/{created['id']}").json["status"] == "running"
    app.config.update(JOB_HEARTBEAT_SECONDS=0.2, JOB_STALE_SECONDS=1.0)
    while (requeued := jobs.requeue_stale(app)) == {} and time.monotonic() - killed < 10:
        time.sleep(0.1)
    assert requeued == {created["id"]: "queued"}
    assert time.monotonic() - killed < 3  # found once its heartbeat is a second old
    assert jobs.run_queued(app) == [created["id"]]
    done = investigator.get(f"/api/v1/match-requests/{created['id']}").json
    assert (done["status"], done["attempts"]) == ("done", 2)


def test_settings_are_checked_with_defaults_filled_in():
    settings = AnalysisSettings.from_parameters({"theta": "forest elephant", "seed": 7})
    assert settings.theta == "forest elephant" and settings.seed == 7
    assert settings.min_loci == 8 and settings.stringency == "moderate"
    with pytest.raises(AnalysisError, match="invalid match request parameters") as raised:
        AnalysisSettings.from_parameters({"seed": -1, "geo_cells": True})
    assert {p["field"] for p in raised.value.problems} == {"parameters.seed",
                                                           "parameters.geo_cells"}


def test_the_in_process_runner_runs_requests_off_the_request_thread(database_url,
                                                                    panel_directory,
                                                                    tmp_path, agencies):
    app = create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test secret",
        "PASSWORD_HASH_METHOD": TEST_PASSWORD_METHOD, "PANEL_DIRECTORY": str(panel_directory),
        "INSTANCE_PATH": str(tmp_path / "threads"), "JOB_WORKERS": 1, "JOB_POLL_SECONDS": 0.2,
    })
    try:
        world = load_scenario(app, agencies)
        browser = make_browser(app, agencies, "investigator")
        token = browser.token()
        created = browser.client.post("/api/v1/match-requests", json=request_body(world),
                                      headers={"X-CSRFToken": token})
        assert created.status_code == 201
        # The API answered before the analysis ran: the request comes back queued and a job
        # thread finishes it later (no wall-clock bound, which a loaded machine breaks).
        assert created.json["status"] == "queued"
        statuses = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = browser.get(f"/api/v1/match-requests/{created.json['id']}").json
            statuses.append(status["status"])
            if status["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert statuses[-1] == "done", status
        page = browser.get(f"/match-requests/{created.json['id']}").get_data(as_text=True)
        assert "SZ-B" in page and "http-equiv=\"refresh\"" not in page
    finally:
        jobs.stop(app, timeout=30)
        db.engine_for(app).dispose()


def test_the_worker_command_runs_the_queue_once(app, world, investigator, database_url,
                                                monkeypatch, capsys):
    monkeypatch.setenv("DNATRACK_SECRET_KEY", CLI_SECRET_KEY)
    created = [investigator.post("/api/v1/match-requests", json=request_body(world, seizure=s))
               .json["id"] for s in ("SZ-A", "SZ-B")]
    parser = argparse.ArgumentParser(prog="dnatrack")
    worker_command.register(parser.add_subparsers())
    args = parser.parse_args(["worker", "--once", "--database-url", database_url])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == "ran 2 match request(s)"
    for request_id in created:
        assert investigator.get(f"/api/v1/match-requests/{request_id}").json["status"] == "done"
    bad = parser.parse_args(["worker", "--threads", "0"])
    with pytest.raises(ValueError, match="--threads must be at least 1"):
        bad.func(bad)


# --------------------------------------------------------------------------- pages
def test_an_investigator_requests_analyses_through_the_form(app, world, agencies):
    browser = make_browser(app, agencies, "investigator")
    form = browser.get(f"/match-requests/new?seizure_id={world.seizure_ids['SZ-A']}")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert f'selected value="seizure:{world.seizure_ids["SZ-A"]}"' in html
    # Only the sets on the seizure's panel are preselected.
    checked = re.findall(r'<input checked [^>]*name="reference_sets"[^>]*value="([^"]+)"', html)
    assert checked == ["forest_elephant_simulated", "savanna_elephant_simulated"]
    refused = browser.post("/match-requests/new", {
        "subject": f"seizure:{world.seizure_ids['SZ-A']}", "analyses": ["identity"],
        "reference_sets": ["black_rhino_simulated"], "stringency": "moderate"})
    assert refused.status_code == 422
    assert "has no released genotype profiles on panel rhino_str" in refused.get_data(
        as_text=True)
    response = browser.post("/match-requests/new", {
        "subject": f"seizure:{world.seizure_ids['SZ-A']}", "analyses": ["identity", "kinship"],
        "reference_sets": [REFERENCE], "theta": "0.03", "stringency": "high"})
    assert response.status_code == 302
    with app.app_context():
        request = db.session.scalars(sa.select(MatchRequest)).one()
        assert request.parameters == {"theta": 0.03, "stringency": "high"}
        assert request.analyses == ["identity", "kinship"]
    queued = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "Waiting for a worker" in queued and 'http-equiv="refresh"' in queued
    jobs.run_queued(app)
    done = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "SZ-B" in done and "Agency B" in done and "Waiting" not in done


def test_the_form_preselects_the_panel_of_profiles_on_aliquots_of_aliquots(app, world,
                                                                            agencies):
    """A horn seizure whose only profile is on an aliquot of an aliquot of its sample: the form
    preselects the rhino sets, as the analysis would count that profile."""
    with app.app_context():
        case = db.session.get(Case, world.case_ids["A"])
        seizure = Seizure(case=case, reference="SZ-HORN", country="Kenya")
        item = Item(seizure=seizure, label="H1", kind="horn")
        sample = Sample(barcode="SZ-HORN-H1", case=case, sample_type="powder", item=item)
        aliquot = Sample(barcode="SZ-HORN-H1-A", case=case, sample_type="powder", parent=sample)
        sub_aliquot = Sample(barcode="SZ-HORN-H1-A-X", case=case, sample_type="powder",
                         parent=aliquot)
        db.session.add_all([seizure, item, sample, aliquot, sub_aliquot])
        db.session.flush()
        analyst, reviewer = (db.session.scalars(sa.select(User).where(
            User.username == f"lab-{role}-A")).one() for role in ("analyst", "reviewer"))
        now = utcnow()
        db.session.add(GenotypeProfile(
            sample_id=sub_aliquot.id, panel="rhino_str", alleles={"BR4": [150, 152]},
            n_loci_typed=1, state="released", analyst_id=analyst.id, reviewer_id=reviewer.id,
            reviewed_at=now, released_by_id=reviewer.id, released_at=now))
        db.session.commit()
        seizure_id = seizure.id
    browser = make_browser(app, agencies, "investigator")
    html = browser.get(f"/match-requests/new?seizure_id={seizure_id}").get_data(as_text=True)
    checked = re.findall(r'<input checked [^>]*name="reference_sets"[^>]*value="([^"]+)"', html)
    assert checked == ["black_rhino_simulated", "white_rhino_simulated"]


def test_pages_refuse_roles_without_the_permission(app, world, agencies):
    researcher = make_browser(app, agencies, "researcher")
    assert researcher.get("/match-requests").status_code == 403
    custodian = make_browser(app, agencies, "custodian")
    assert custodian.get("/match-requests").status_code == 200
    assert custodian.get("/match-requests/new").status_code == 403


def test_scenario_places_the_related_tusks_as_the_tests_expect(app, world):
    truth = {(r.item1, r.item2): r.relationship for r in world.scenario.relationships}
    assert truth == {("SZ-A-T004", "SZ-B-T001"): "same_animal",
                     ("SZ-A-T001", "SZ-C-T001"): "parent_offspring"}
    assert np.unique(world.scenario.observed.group).tolist() == ["SZ-A", "SZ-B", "SZ-C"]
