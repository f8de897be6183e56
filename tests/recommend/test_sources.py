"""Feedback read from the lakehouse's contract tables (events, votes,
plays) into listener interactions and plan demand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from models.recommend import sources
from models.recommend.simulate import Weights
from sonicforge.lakehouse import Lakehouse

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _event(n: int, type_: str, event: str | None, user: str, track: str | None, **props):
    ts = NOW + timedelta(minutes=n)
    return {
        "event_id": f"e{n}", "type": type_, "event": event, "user_id": user, "anonymous_id": None,
        "track_id": track, "properties": json.dumps(props), "context": None, "experiment_id": None,
        "variant": None, "sent_at": ts, "received_at": ts, "ts": ts, "clock_skew_s": 0.0,
        "flags": [], "request_id": None, "day": ts.date(),
    }  # fmt: skip


def _vote(n: int, user: str, track: str, *, stars=None, direction=None, action="cast"):
    ts = NOW + timedelta(minutes=n)
    return {"vote_id": f"v{n}", "user_id": user, "track_id": track, "stars": stars,
            "direction": direction, "action": action, "ts": ts, "day": ts.date()}  # fmt: skip


@pytest.fixture
def lake(lakehouse: Lakehouse) -> Lakehouse:
    lakehouse.insert_new(
        "events",
        [
            _event(1, "play", None, "u1", "t1", completion=0.9),
            _event(2, "track", "track_skipped", "u1", "t2"),
            _event(3, "play", None, "u2", "t1", listened_s=20.0, duration_s=180.0),  # a skip
            _event(4, "share_created", None, "u2", "t3"),
            _event(5, "track", "request_created", "u3", "t4"),
            _event(6, "page", "viewed", "u3", None),  # not feedback
        ],
    )
    lakehouse.insert_new(
        "votes",
        [
            _vote(1, "u1", "t1", stars=5),
            _vote(2, "u2", "t2", direction=1),
            _vote(3, "u2", "t2", action="withdraw"),  # withdrawn: not counted
        ],
    )
    return lakehouse


def test_interactions_from_events_and_votes(lake: Lakehouse) -> None:
    w = Weights()
    feedback = sources.event_feedback(lake, w, skip_below=0.35)
    feedback += sources.vote_feedback(lake, w, app_database_url=None)
    rows = {(r["user_id"], r["track_id"]): r for r in sources.interaction_rows(feedback)}
    assert rows[("u1", "t1")]["weight"] == pytest.approx(0.9 * w.play + 2 * w.star)
    assert rows[("u1", "t1")]["plays"] == 1 and rows[("u1", "t1")]["votes"] == 1
    assert rows[("u1", "t2")]["weight"] == w.skip and rows[("u1", "t2")]["skips"] == 1
    assert rows[("u2", "t1")]["weight"] == w.skip  # 20 s of 180 s is a skip
    assert rows[("u2", "t3")]["weight"] == w.share
    assert rows[("u3", "t4")]["weight"] == w.request
    assert ("u2", "t2") not in rows  # the vote was withdrawn
    assert not any(r["simulated"] for r in rows.values())


def test_missing_tables_read_as_no_feedback(tmp_path) -> None:
    empty = Lakehouse(str(tmp_path / "empty"))
    assert sources.event_feedback(empty, Weights(), skip_below=0.35) == []
    assert sources.vote_feedback(empty, Weights(), app_database_url=None) == []
    assert sources.plan_feedback(empty, skip_below=0.35) == []
    assert sources.latest_plan_specs(empty, 3) is None


def test_plan_demand_from_plays_votes_and_requests(lake: Lakehouse) -> None:
    from tests.serving.factories import seed_tracks

    seeded = seed_tracks(lake, 3)
    t0 = seeded[0].track_id
    lake.upsert(
        "plays",
        [
            {"play_id": "p1", "track_id": t0, "started_at": NOW, "ended_at": NOW, "listeners": 4,
             "skipped": False, "channel": "main"},
            {"play_id": "p2", "track_id": t0, "started_at": NOW, "ended_at": None, "listeners": 4,
             "skipped": False, "channel": "main"},  # still airing: not counted
        ],
    )  # fmt: skip
    lake.insert_new("votes", [_vote(9, "u9", t0, stars=5)])
    lake.insert_new("events", [_event(9, "track", "request_created", "u9", None, genre="techno")])
    demand = sources.plan_feedback(lake, skip_below=0.35)
    assert [(f.genre, f.reward, f.weight) for f in demand] == [
        (seeded[0].genre, 1.0, 4.0),  # one completed airing heard by 4
        (seeded[0].genre, 1.0, 2.0),  # five stars
        ("techno", 1.0, 3.0),  # a request for techno, not made yet
    ]
