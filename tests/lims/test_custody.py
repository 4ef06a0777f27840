"""The custody ledger: hash chain, database refusal of changes, verification, histories."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from lims.custody import (
    GENESIS_HASH,
    CustodyError,
    custody_history,
    event_hash,
    ledger_head,
    record_event,
    verify_ledger,
)
from lims.database import create_database_engine
from lims.models import CustodyAppendLock, CustodyEvent, Item, Sample, Seizure, StorageLocation
from tests.lims.conftest import CLI_SECRET_KEY
from tests.lims.factories import make_case_tree, make_user

T0 = dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def tree(session, agencies):
    return make_case_tree(session, agencies["A"], "KE")


@pytest.fixture
def custodian(session, agencies):
    return make_user(session, agencies["A"], "kamau", "custodian")


def record_three(session, tree, custodian) -> list[CustodyEvent]:
    seizure = session.get(Seizure, tree.seizure_id)
    sample = session.get(Sample, tree.sample_ids[0])
    events = [
        record_event(
            session,
            event_type="collect",
            subject=seizure,
            actor=custodian,
            signature_meaning="performed",
            occurred_at=T0,
            place="Mombasa port",
        ),
        record_event(
            session,
            event_type="seal",
            subject=seizure,
            actor=custodian,
            signature_meaning="performed",
            occurred_at=T0 + dt.timedelta(hours=1),
            seal_numbers=["KE-0001", "KE-0002"],
        ),
        record_event(
            session,
            event_type="transfer",
            subject=sample,
            actor=custodian,
            signature_meaning="released",
            occurred_at=T0 + dt.timedelta(days=2),
            from_holder="KWS evidence store",
            to_holder="KWS forensic lab",
        ),
    ]
    session.commit()
    return events


def test_events_are_chained_from_the_genesis_hash(session, tree, custodian):
    events = record_three(session, tree, custodian)
    assert [event.seq for event in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert ledger_head(session).seq == 3 and ledger_head(session).hash == events[2].hash
    result = verify_ledger(session)
    assert result.ok and result.n_events == 3 and result.head.hash == events[2].hash


def test_hash_is_sha256_of_prev_hash_and_sorted_compact_json(session, tree, custodian):
    first = record_three(session, tree, custodian)[1]
    recorded = first.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # Written out by hand: keys sorted, no spaces, UTC times with microseconds and Z.
    canonical = (
        '{"actor_id":' + str(custodian.id) + ',"event_type":"seal","from_holder":null,'
        '"notes":null,"occurred_at":"2024-03-01T07:00:00.000000Z","place":null,'
        '"recorded_at":"' + recorded + '","seal_numbers":["KE-0001","KE-0002"],"seq":2,'
        '"signature_meaning":"performed","storage_location_id":null,'
        '"subject":{"id":' + str(tree.seizure_id) + ',"kind":"seizure"},"to_holder":null}'
    )
    expected = hashlib.sha256(first.prev_hash.encode() + canonical.encode()).hexdigest()
    assert first.hash == expected == event_hash(first.prev_hash, first)


def test_the_hash_survives_a_round_trip_through_the_database(session, tree, custodian):
    record_three(session, tree, custodian)
    session.expire_all()
    for event in session.scalars(sa.select(CustodyEvent)):
        assert event_hash(event.prev_hash, event) == event.hash


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE custody_event SET place = 'elsewhere' WHERE seq = 1",
        "DELETE FROM custody_event WHERE seq = 1",
        "EMPTY custody_event",
        "UPDATE audit_record SET actor_id = NULL",
        "DELETE FROM audit_record",
    ],
)
def test_the_database_refuses_to_change_ledger_rows(
    session, tree, custodian, database_url, statement
):
    record_three(session, tree, custodian)
    engine = create_database_engine(database_url)
    if statement.startswith("EMPTY"):
        # Emptying a table: TRUNCATE on PostgreSQL, an unconditional DELETE on SQLite.
        verb = "TRUNCATE" if engine.dialect.name == "postgresql" else "DELETE FROM"
        statement = statement.replace("EMPTY", verb)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    engine.dispose()
    assert verify_ledger(session).ok


def tamper(database_url: str, *statements: str | tuple[str, dict]) -> None:
    """Run SQL (text, or text and parameters) behind the application's back, past every
    trigger, as the owner of the database could."""
    engine = create_database_engine(database_url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # A superuser's way round triggers; the test schema is emptied afterwards.
            connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        else:
            triggers = connection.execute(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ).scalars()
            for name in list(triggers):
                connection.execute(sa.text(f"DROP TRIGGER {name}"))
        for statement in statements:
            text, parameters = (statement, {}) if isinstance(statement, str) else statement
            connection.execute(sa.text(text), parameters)
    engine.dispose()


def test_verify_names_an_event_edited_behind_the_apps_back(
    session, tree, custodian, database_url, runner
):
    record_three(session, tree, custodian)
    assert runner("custody", "verify").status == 0
    tamper(database_url, "UPDATE custody_event SET to_holder = 'someone else' WHERE seq = 3")
    session.expire_all()
    result = verify_ledger(session)
    assert not result.ok
    assert result.first_break.seq == 3
    assert "do not match its hash" in result.first_break.reason
    cli = runner("custody", "verify")
    assert cli.status == 1
    assert "chain broken at custody event 3: its stored fields do not match its hash" in cli.err


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(
    session, tree, custodian, database_url
):
    events = record_three(session, tree, custodian)
    forged = session.get(CustodyEvent, 2)
    forged.seal_numbers = ["KE-9999"]
    forged_hash = event_hash(forged.prev_hash, forged)
    session.rollback()
    tamper(
        database_url,
        f"UPDATE custody_event SET seal_numbers = '[\"KE-9999\"]', hash = '{forged_hash}' "
        "WHERE seq = 2",
    )
    session.expire_all()
    result = verify_ledger(session)
    assert result.first_break.seq == 3
    assert result.first_break.reason == "prev_hash does not match the hash of event 2"
    assert events[2].prev_hash != forged_hash


def test_a_deleted_event_is_named_as_missing(session, tree, custodian, database_url):
    record_three(session, tree, custodian)
    tamper(database_url, "DELETE FROM custody_event WHERE seq = 2")
    session.expire_all()
    broken = verify_ledger(session).first_break
    assert (broken.seq, broken.reason) == (2, "missing (the next stored event is 3)")


def test_events_cut_off_the_end_are_caught_by_the_append_counter(
    session, tree, custodian, database_url, runner
):
    events = record_three(session, tree, custodian)
    tamper(database_url, "DELETE FROM custody_event WHERE seq >= 2")
    session.expire_all()
    result = verify_ledger(session)
    assert not result.ok and result.n_events == 1
    expected = (
        "ledger truncated: 3 events recorded, 1 present; "
        f"the last event present is 1 (hash {events[0].hash})"
    )
    assert (result.first_break.seq, result.first_break.reason) == (2, expected)
    cli = runner("custody", "verify")
    assert cli.status == 1 and expected in cli.err


def test_a_cut_hidden_from_the_counter_is_caught_by_a_published_head(
    session, tree, custodian, database_url, runner
):
    events = record_three(session, tree, custodian)
    published = events[2].hash
    tamper(
        database_url,
        "DELETE FROM custody_event WHERE seq = 3",
        "UPDATE custody_append_lock SET appends = appends - 1",
    )
    session.expire_all()
    assert verify_ledger(session).ok  # the chain and the lowered counter cannot tell
    result = verify_ledger(session, known_heads=[events[1].hash, published])
    assert not result.ok and result.first_break.seq == 3
    assert result.first_break.reason == (
        f"ledger truncated: published head hash {published} is not in the chain; "
        f"the last event present is 2 (hash {events[1].hash})"
    )
    assert runner("custody", "verify", "--known-head", events[1].hash).status == 0
    cli = runner("custody", "verify", "--known-head", published)
    assert cli.status == 1 and f"published head hash {published} is not in the chain" in cli.err


def test_a_counter_below_the_events_present_is_reported(session, tree, custodian, database_url):
    record_three(session, tree, custodian)
    tamper(database_url, "UPDATE custody_append_lock SET appends = 1")
    session.expire_all()
    broken = verify_ledger(session).first_break
    assert broken.seq == 2
    assert broken.reason.startswith("the append counter says 1 events were recorded but 3 ")


def test_cli_reports_an_intact_ledger(session, tree, custodian, runner):
    events = record_three(session, tree, custodian)
    result = runner("custody", "verify")
    assert result.status == 0
    assert result.out.strip() == f"custody ledger intact: 3 events; head 3 {events[2].hash}"


def test_cli_on_a_database_without_schema_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from dnatrack.cli import main

    monkeypatch.setenv("DNATRACK_SECRET_KEY", CLI_SECRET_KEY)
    status = main(["custody", "verify", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert status == 1
    assert "database error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("event_type", "options", "field", "message"),
    [
        ("seal", {}, "seal_numbers", "needs the seal numbers"),
        ("seal", {"seal_numbers": [" "]}, "seal_numbers", "non-empty"),
        ("transfer", {"from_holder": "A"}, "to_holder", "needs to_holder"),
        ("receive", {}, "from_holder", "needs from_holder"),
        ("store", {}, "storage_location_id", "needs a storage location"),
        (
            "collect",
            {"occurred_at": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)},
            "occurred_at",
            "in the future",
        ),
        ("collect", {"occurred_at": dt.datetime(2024, 1, 1)}, "occurred_at", "time zone"),
        ("teleport", {}, "event_type", "unknown event type"),
        ("collect", {"signature_meaning": "shrugged"}, "signature_meaning", "unknown signature"),
    ],
)
def test_incomplete_events_are_refused_with_the_field(
    session, tree, custodian, event_type, options, field, message
):
    sample = session.get(Sample, tree.sample_ids[0])
    options.setdefault("signature_meaning", "performed")
    with pytest.raises(CustodyError, match=message) as caught:
        record_event(session, event_type=event_type, subject=sample, actor=custodian, **options)
    assert caught.value.field == field
    assert ledger_head(session).seq == 0


def test_store_moves_and_destroy_consumes_and_ends_custody(session, tree, custodian, agencies):
    sample = session.get(Sample, tree.sample_ids[0])
    freezer = StorageLocation(agency_id=agencies["A"], name="Freezer 2", kind="freezer")
    session.add(freezer)
    session.flush()
    record_event(
        session,
        event_type="store",
        subject=sample,
        actor=custodian,
        signature_meaning="performed",
        storage_location=freezer,
    )
    assert sample.storage_location_id == freezer.id
    record_event(
        session,
        event_type="destroy",
        subject=sample,
        actor=custodian,
        signature_meaning="witnessed",
    )
    assert sample.consumed
    with pytest.raises(CustodyError, match="was destroyed"):
        record_event(
            session,
            event_type="open",
            subject=sample,
            actor=custodian,
            signature_meaning="performed",
        )
    with pytest.raises(CustodyError, match="only samples and extracts"):
        record_event(
            session,
            event_type="store",
            subject=session.get(Item, tree.item_ids[0]),
            actor=custodian,
            signature_meaning="performed",
            storage_location=freezer,
        )
    # Refusals taken after the append lock count nothing, even in a transaction committed.
    session.commit()
    session.expire_all()
    assert session.get(CustodyAppendLock, 1).appends == 2
    assert verify_ledger(session).ok


def test_a_samples_history_includes_its_origin_up_to_its_registration(session, tree, custodian):
    seizure = session.get(Seizure, tree.seizure_id)
    item = session.get(Item, tree.item_ids[0])
    sample = session.get(Sample, tree.sample_ids[0])

    def record(event_type, subject, **options):
        options.setdefault("signature_meaning", "performed")
        return record_event(
            session, event_type=event_type, subject=subject, actor=custodian, **options
        ).seq

    def registered_now(record_to_date):
        record_to_date.created_at = dt.datetime.now(dt.UTC)
        session.flush()

    collected = record("collect", seizure)
    sealed = record("seal", seizure, seal_numbers=["S1"])
    registered_now(item)
    seizure_later = record("transfer", seizure, from_holder="lab", to_holder="court")
    opened = record("open", item)
    registered_now(sample)
    item_later = record("seal", item, seal_numbers=["S2"])
    aliquot = Sample(barcode="KE-S1a", case_id=sample.case_id, sample_type="powder", parent=sample)
    session.add(aliquot)
    session.flush()
    sample_later = record("subsample", sample, notes="aliquot KE-S1a taken")
    aliquot_stored = record("store", aliquot, storage_location=_freezer(session, custodian))
    session.commit()

    aliquot_history = [event.seq for event in custody_history(session, aliquot)]
    assert aliquot_history == [collected, sealed, opened, aliquot_stored]
    sample_history = [event.seq for event in custody_history(session, sample)]
    assert sample_history == [collected, sealed, opened, sample_later]
    assert {seizure_later, item_later}.isdisjoint(aliquot_history + sample_history)


def test_a_history_follows_the_times_of_the_hand_overs_not_of_their_recording(
    session, tree, custodian
):
    item = session.get(Item, tree.item_ids[0])
    sample = session.get(Sample, tree.sample_ids[0])
    sample.created_at = T0 + dt.timedelta(days=3)  # the sample was registered then

    def record(event_type, subject, days, **options):
        options.setdefault("signature_meaning", "performed")
        return record_event(
            session,
            event_type=event_type,
            subject=subject,
            actor=custodian,
            occurred_at=T0 + dt.timedelta(days=days),
            **options,
        ).seq

    # Transcribed from paper, so recorded in another order than they happened.
    transferred = record("transfer", sample, 6, from_holder="store", to_holder="lab")
    sealed = record("seal", sample, 5, seal_numbers=["S9"])
    opened_before_the_cut = record("open", item, 2)
    resealed_after_the_cut = record("seal", item, 4, seal_numbers=["S8"])
    session.commit()

    def history(**window):
        return [event.seq for event in custody_history(session, sample, **window)]

    assert history() == [opened_before_the_cut, sealed, transferred]
    assert resealed_after_the_cut not in history()
    assert history(occurred_from=T0 + dt.timedelta(days=5)) == [sealed, transferred]
    assert history(occurred_to=T0 + dt.timedelta(days=5)) == [opened_before_the_cut, sealed]
    assert history(
        occurred_from=T0 + dt.timedelta(days=3), occurred_to=T0 + dt.timedelta(days=5, hours=1)
    ) == [sealed]


def _freezer(session, user) -> StorageLocation:
    location = StorageLocation(agency_id=user.agency_id, name="Freezer 1", kind="freezer")
    session.add(location)
    session.flush()
    return location


def test_appends_are_counted_and_a_removed_counter_is_restored_and_reported(
    session, tree, custodian
):
    record_three(session, tree, custodian)
    session.expire_all()
    assert session.get(CustodyAppendLock, 1).appends == 3
    session.execute(sa.delete(CustodyAppendLock))
    session.commit()
    assert verify_ledger(session).first_break.reason.startswith(
        "the append counter (custody_append_lock) is missing"
    )
    record_event(
        session,
        event_type="open",
        subject=session.get(Sample, tree.sample_ids[1]),
        actor=custodian,
        signature_meaning="performed",
    )
    session.commit()
    session.expire_all()
    assert session.get(CustodyAppendLock, 1).appends == 1
    result = verify_ledger(session)
    assert result.n_events == 4
    assert result.first_break.reason.startswith("the append counter says 1 events were recorded")
