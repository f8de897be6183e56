"""The analytics transforms on small frames with hand-counted answers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from analytics import transforms
from analytics.experiment_results import experiment_results
from sonicforge.lakehouse import Lakehouse
from sonicforge.tables import EVENTS, PLAYS, VOTES

DAY = date(2026, 11, 20)
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def event(
    seconds: float,
    *,
    type_: str = "track",
    name: str | None = "heartbeat",
    user: str | None = None,
    anon: str | None = "a1",
    track: str | None = "t-1",
    props: dict[str, Any] | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    flags: list[str] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    ts = T0 + timedelta(seconds=seconds)
    return {
        "event_id": event_id or f"e-{seconds}-{user}-{anon}-{type_}-{name}-{experiment}",
        "type": type_, "event": name, "user_id": user, "anonymous_id": anon if not user else None,
        "track_id": track, "properties": json.dumps(props or {}), "context": None,
        "experiment_id": experiment, "variant": variant, "sent_at": ts, "received_at": ts,
        "ts": ts, "clock_skew_s": 0.0, "flags": flags or [], "request_id": None,
        "day": ts.date(),
    }  # fmt: skip


def frame(rows: list[dict[str, Any]], schema: pa.Schema) -> pl.LazyFrame:
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=schema)).lazy()  # type: ignore[union-attr]


def test_sessions_break_at_twice_the_segment_duration() -> None:
    beats = [event(s, props={"output": "hls"}) for s in (0, 6, 12, 18)]  # one session
    beats += [event(s, props={"output": "hls"}) for s in (40, 46)]  # 22 s gap > 12 s: a second
    beats += [event(s, anon="a2", props={"output": "mp3"}) for s in (0, 10)]
    beats.append(event(5, name="skip"))  # not a heartbeat
    table = transforms.listener_sessions(frame(beats, EVENTS.schema), DAY, segment_s=6.0)
    sessions = sorted(table.to_pylist(), key=lambda r: (r["anonymous_id"], r["started_at"]))
    assert [(s["anonymous_id"], s["output"], s["heartbeats"], s["listening_s"]) for s in sessions] == [
        ("a1", "hls", 4, 24.0), ("a1", "hls", 2, 12.0), ("a2", "mp3", 2, 16.0),
    ]  # fmt: skip
    assert len({s["session_id"] for s in sessions}) == 3


def test_daily_track_metrics_count_each_source() -> None:
    plays = [
        {"play_id": f"p{i}", "track_id": "t-1", "started_at": T0 + timedelta(minutes=i),
         "ended_at": T0 + timedelta(minutes=i, seconds=50), "listeners": 4,
         "skipped": i == 0, "channel": "main"}
        for i in range(4)
    ] + [{"play_id": "p9", "track_id": "t-2", "started_at": T0, "ended_at": None,
          "listeners": 1, "skipped": False, "channel": "main"},
         {"play_id": "old", "track_id": "t-1", "started_at": T0 - timedelta(days=1),
          "ended_at": None, "listeners": 1, "skipped": False, "channel": "main"}]  # fmt: skip
    events = [event(i, anon=f"a{i % 3}", props={"seconds": 10}) for i in range(9)]
    events.append(event(99, type_="share_created", name=None, user="u1", track="t-2"))
    votes = [
        {"vote_id": "v1", "user_id": "u1", "track_id": "t-1", "stars": 5, "direction": None,
         "action": "cast", "ts": T0, "day": DAY},
        {"vote_id": "v2", "user_id": "u2", "track_id": "t-1", "stars": 2, "direction": None,
         "action": "cast", "ts": T0, "day": DAY},
        {"vote_id": "v3", "user_id": "u2", "track_id": "t-1", "stars": None, "direction": None,
         "action": "withdraw", "ts": T0, "day": DAY},
    ]  # fmt: skip
    table = transforms.daily_track_metrics(
        events=frame(events, EVENTS.schema), plays=frame(plays, PLAYS.schema),
        votes=frame(votes, VOTES.schema), day=DAY,
    )  # fmt: skip
    rows = {r["track_id"]: r for r in table.to_pylist()}
    t1, t2 = rows["t-1"], rows["t-2"]
    assert (t1["plays"], t1["unique_listeners"], t1["votes"], t1["shares"]) == (4, 3, 2, 0)
    assert t1["skip_rate"] == pytest.approx(0.25) and t1["completion_rate"] == pytest.approx(0.75)
    assert t1["mean_stars"] == pytest.approx(3.5) and t1["listening_s"] == pytest.approx(90.0)
    # A share is no listening: t-2 has a sharer but no listener.
    assert (t2["plays"], t2["shares"], t2["unique_listeners"]) == (1, 1, 0)
    assert t2["skip_rate"] is None  # no play of it ended yet


def test_trending_halves_a_signal_per_half_life() -> None:
    now = T0
    plays = [
        {"play_id": "new", "track_id": "t-new", "started_at": now, "ended_at": None,
         "listeners": 1, "skipped": False, "channel": "main"},
        {"play_id": "old", "track_id": "t-old", "started_at": now - timedelta(hours=24),
         "ended_at": None, "listeners": 1, "skipped": False, "channel": "main"},
        {"play_id": "ancient", "track_id": "t-gone", "started_at": now - timedelta(days=30),
         "ended_at": None, "listeners": 1, "skipped": False, "channel": "main"},
    ]  # fmt: skip
    table = transforms.trending_tracks(
        plays=frame(plays, PLAYS.schema), votes=frame([], VOTES.schema),
        events=frame([], EVENTS.schema), now=now, half_life_h=24.0,
    )  # fmt: skip
    rows = {r["track_id"]: r for r in table.to_pylist()}
    assert set(rows) == {"t-new", "t-old"}  # beyond ten half-lives: not read
    assert rows["t-new"]["score"] == pytest.approx(1.0)
    assert rows["t-old"]["score"] == pytest.approx(0.5)
    assert [rows["t-new"]["rank"], rows["t-old"]["rank"]] == [1, 2]


def test_kpis_of_a_day(lakehouse: Lakehouse) -> None:
    rows = [event(s, anon=f"a{(s // 6) % 4}", props={"output": "hls"}) for s in range(0, 60, 6)]
    rows += [event(0, anon="a9", props={"output": "hls"}) | {"ts": T0 - timedelta(days=3),
             "day": DAY - timedelta(days=3), "event_id": "earlier"}]  # fmt: skip
    rows.append(event(1, type_="user_registered", name=None, user="u7", track=None))
    lakehouse.insert_new("events", rows)
    sessions = transforms.listener_sessions(
        transforms.scan(lakehouse, "events"), DAY, segment_s=6.0
    )
    lakehouse.insert_new("listener_sessions", sessions)
    plays = [{"play_id": "p1", "track_id": "t-1", "started_at": T0, "listeners": 25,
              "ended_at": T0 + timedelta(minutes=30), "skipped": False, "channel": "main"}]  # fmt: skip
    lakehouse.insert_new("plays", plays)
    table = transforms.kpis_daily(lh=lakehouse, day=DAY, now=T0 + timedelta(days=2))
    (k,) = table.to_pylist()
    assert (k["dau"], k["wau"], k["mau"]) == (5, 6, 6)  # a0-a3 and u7; a9 three days before
    assert k["new_users"] == 1 and k["plays"] == 1
    assert k["aired_hours"] == pytest.approx(0.5)
    assert k["peak_concurrent_listeners"] == 25  # the streamer's count beats 4 sessions
    assert k["sessions"] == 10  # each listener beats every 24 s: > 2 segments, a new session
    assert k["listening_hours"] == pytest.approx(10 * 6 / 3600)
    assert k["generation_count"] == 0 and k["generation_pass_rate"] is None


def test_experiment_results_count_only_after_exposure() -> None:
    exp = "pricing_page"
    rows = []
    for i in range(40):
        user = f"u{i}"
        from analytics.experiments import EXPERIMENTS, assign

        variant = assign(EXPERIMENTS[exp], f"u:{user}").name
        rows.append(event(10, type_="exposure", name=None, user=user, experiment=exp,
                          variant=variant, props={"unit_id": f"u:{user}"}))  # fmt: skip
        if i % 4 == 0:  # converts after exposure
            rows.append(event(20, type_="conversion", name="checkout_completed", user=user,
                              experiment=exp, variant=variant))  # fmt: skip
        if i % 10 == 1:  # converted before its exposure: not counted
            rows.append(event(5, type_="checkout_completed", name=None, user=user))
    rows.append(event(30, type_="conversion", name="checkout_completed", user="stranger",
                      experiment=exp, flags=["no_exposure"]))  # fmt: skip
    table = experiment_results(frame(rows, EVENTS.schema), now=T0)
    results = [r for r in table.to_pylist() if r["experiment_id"] == exp]
    assert sum(r["exposures"] for r in results) == 40
    assert sum(r["conversions"] for r in results) == 10
    assert all(r["unexposed_conversions"] == 1 for r in results)
    assert all(r["status"] == "not_enough_data" for r in results)
    others = [r for r in table.to_pylist() if r["experiment_id"] != exp]
    assert others and all(r["exposures"] == 0 for r in others)
