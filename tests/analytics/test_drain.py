"""The outbox drain: every row reaches Delta exactly once, through re-runs,
a crash between the Delta commit and the mark (raised and SIGKILLed), and
a crash before the commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from analytics.drain import DrainBusyError, OutboxDrain, pending_events
from serving.db.session import Database
from serving.services.outbox import record_event
from sonicforge.lakehouse import Lakehouse
from tests.analytics.conftest import insert, outbox_rows

REPO = Path(__file__).resolve().parents[2]


class Crash(Exception):
    pass


def _ids(lh: Lakehouse) -> Counter[str]:
    return Counter(lh.read("events", columns=["event_id"])["event_id"].to_pylist())


def _outbox_ids(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT event_id FROM event_outbox"))}


def test_every_row_is_drained_once_in_day_partitions(
    app_db: Database, lakehouse: Lakehouse
) -> None:
    start = datetime.now(UTC).replace(hour=23, minute=0) - timedelta(days=1)
    rows = outbox_rows(2500, dialect=app_db.backend, start=start, step_s=2.0)  # spans midnight
    insert(app_db, rows)
    report = OutboxDrain(app_db.engine, lakehouse, batch_size=1000).run()
    assert (report.batches, report.rows) == (3, 2500)
    counts = _ids(lakehouse)
    assert len(counts) == 2500 and set(counts.values()) == {1}
    days = set(lakehouse.read("events", columns=["day"])["day"].to_pylist())
    assert days == {start.date(), start.date() + timedelta(days=1)}
    again = OutboxDrain(app_db.engine, lakehouse, batch_size=1000).run()
    assert again.rows == 0 and lakehouse.count("events") == 2500
    assert pending_events(app_db.engine) == (0, None)


def test_votes_and_plays_reach_their_tables(app_db: Database, lakehouse: Lakehouse) -> None:
    with app_db.session() as s:
        record_event(s, "vote", user_id="u1", track_id="t-1",
                     properties={"stars": 4, "direction": None})  # fmt: skip
        record_event(s, "vote", user_id="u2", track_id="t-1",
                     properties={"stars": None, "direction": "down"})  # fmt: skip
        record_event(s, "vote_withdrawn", user_id="u1", track_id="t-1")
        started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        for ended in (None, started + timedelta(minutes=3)):
            record_event(s, "play", track_id="t-9", properties={
                "play_id": "p-1", "started_at": started.isoformat(),
                "ended_at": ended.isoformat() if ended else None, "listeners": 12,
                "skipped": False, "channel": "main"})  # fmt: skip
        s.commit()
    report = OutboxDrain(app_db.engine, lakehouse).run()
    assert report.votes == 3
    votes = sorted(lakehouse.read("votes").to_pylist(), key=lambda r: r["ts"])
    assert [(v["user_id"], v["stars"], v["direction"], v["action"]) for v in votes] == [
        ("u1", 4, None, "cast"), ("u2", None, -1, "cast"), ("u1", None, None, "withdraw"),
    ]  # fmt: skip
    plays = lakehouse.read("plays").to_pylist()
    assert len(plays) == 1 and plays[0]["ended_at"] is not None and plays[0]["listeners"] == 12
    assert lakehouse.count("events") == 5


def test_a_crash_between_commit_and_mark_neither_duplicates_nor_loses(
    app_db: Database, lakehouse: Lakehouse
) -> None:
    insert(app_db, outbox_rows(1500, dialect=app_db.backend))

    def crash(point: str) -> None:
        if point == "after_commit":
            raise Crash(point)

    with pytest.raises(Crash):
        OutboxDrain(app_db.engine, lakehouse, batch_size=1000, fault=crash).run()
    assert lakehouse.count("events") == 1000  # committed, not marked
    assert pending_events(app_db.engine)[0] == 1500
    report = OutboxDrain(app_db.engine, lakehouse, batch_size=1000).run()
    assert report.recovered_batches == 1 and report.rewritten_tables == 0
    assert report.rows == 500
    counts = _ids(lakehouse)
    assert set(counts) == _outbox_ids(app_db) and set(counts.values()) == {1}


def test_a_crash_before_the_commit_writes_the_batch_on_recovery(
    app_db: Database, lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert(app_db, outbox_rows(800, dialect=app_db.backend))
    drain = OutboxDrain(app_db.engine, lakehouse, batch_size=500)

    def fail(*_args: object) -> None:
        raise Crash("the lakehouse went away")

    monkeypatch.setattr(drain, "_commit", fail)
    with pytest.raises(Crash):
        drain.run()
    assert lakehouse.count("events") == 0
    report = OutboxDrain(app_db.engine, lakehouse, batch_size=500).run()
    assert report.recovered_batches == 1 and report.rewritten_tables == 1
    counts = _ids(lakehouse)
    assert len(counts) == 800 and set(counts.values()) == {1}


def test_a_drain_killed_by_sigkill_after_its_commit_is_recovered(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    db.migrate()
    insert(db, outbox_rows(3000, dialect="sqlite"))
    script = textwrap.dedent(
        f"""
        import os, signal
        from serving.db.session import Database
        from analytics.drain import OutboxDrain
        from sonicforge.lakehouse import Lakehouse
        def kill(point):
            if point == "after_commit":
                os.kill(os.getpid(), signal.SIGKILL)
        db = Database({str(db.url)!r})
        OutboxDrain(db.engine, Lakehouse({lakehouse.root_uri!r}), batch_size=1000, fault=kill).run()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert lakehouse.count("events") == 1000
    report = OutboxDrain(db.engine, lakehouse, batch_size=1000).run()
    assert report.recovered_batches == 1 and report.rewritten_tables == 0
    counts = _ids(lakehouse)
    assert len(counts) == 3000 and set(counts.values()) == {1}
    db.dispose()


def test_one_drain_at_a_time(app_db: Database, lakehouse: Lakehouse) -> None:
    insert(app_db, outbox_rows(10, dialect=app_db.backend))
    first = OutboxDrain(app_db.engine, lakehouse)
    with first._lock(), pytest.raises(DrainBusyError, match="another outbox drain"):
        OutboxDrain(app_db.engine, lakehouse).run()


def test_drained_rows_are_deleted_after_the_retention(
    app_db: Database, lakehouse: Lakehouse
) -> None:
    insert(app_db, outbox_rows(20, dialect=app_db.backend))
    drain = OutboxDrain(app_db.engine, lakehouse, retention_h=1.0)
    assert drain.run().purged == 0  # drained just now: kept (a retry is still recognised)
    assert len(_outbox_ids(app_db)) == 20
    assert drain.purge(now=datetime.now(UTC) + timedelta(hours=2)) == 20
    assert _outbox_ids(app_db) == set() and lakehouse.count("events") == 20


def test_the_lag_is_the_oldest_undrained_event(app_db: Database, lakehouse: Lakehouse) -> None:
    old = datetime.now(UTC) - timedelta(minutes=5)
    insert(app_db, outbox_rows(3, dialect=app_db.backend, start=old))
    pending, oldest = pending_events(app_db.engine)
    assert pending == 3
    assert oldest is not None and abs((oldest - old).total_seconds()) < 1


@pytest.mark.skipif(os.environ.get("CI_SKIP_SLOW") == "1", reason="slow")
def test_client_retries_of_one_event_id_are_one_row(app_db: Database, lakehouse: Lakehouse) -> None:
    rows = outbox_rows(5, dialect=app_db.backend)
    insert(app_db, rows)
    insert(app_db, rows)  # the client sent the batch again
    OutboxDrain(app_db.engine, lakehouse).run()
    insert(app_db, rows[:2])  # and again after the drain, within the retention
    OutboxDrain(app_db.engine, lakehouse).run()
    counts = _ids(lakehouse)
    assert len(counts) == 5 and set(counts.values()) == {1}
