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
from sonicforge.tables import EVENTS, KPIS_DAILY, PLAYS, TRACK_SCORES, TRACKS, VOTES

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
    table = transforms.daily_track_metrics_polars(
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


# -- the two engines agree (the assets run DuckDB for these two) -----------------------


def full_row(schema: pa.Schema, **values: Any) -> dict[str, Any]:
    """A row of ``schema``: ``values``, and a plain value of its type elsewhere."""
    row: dict[str, Any] = {}
    for f in schema:
        if f.name in values:
            row[f.name] = values[f.name]
        elif pa.types.is_string(f.type):
            row[f.name] = "x"
        elif pa.types.is_floating(f.type):
            row[f.name] = 0.0
        elif pa.types.is_integer(f.type):
            row[f.name] = 0
        elif pa.types.is_boolean(f.type):
            row[f.name] = False
        elif pa.types.is_timestamp(f.type):
            row[f.name] = T0
        elif pa.types.is_list(f.type):
            row[f.name] = []
        else:
            row[f.name] = None
    return row


def busy_lake(lh: Lakehouse) -> None:
    """A day with every source the two transforms read, and neighbours they must not."""
    events = []
    for i in range(60):  # listeners, some with accounts, some beats without seconds
        props = {"seconds": 5 + i % 3, "output": "hls"} if i % 7 else {"output": "mp3"}
        events.append(event(i * 3, anon=f"a{i % 9}", user=f"u{i % 4}" if i % 5 == 0 else None,
                            track=f"t-{i % 4}", props=props))  # fmt: skip
    events.append(event(7, name="skip", track="t-5"))  # an event of a track, not a beat
    events.append(event(8, user=None, anon=None, track="t-1"))  # no unit: not a listener
    events.append(event(9, type_="share_created", name=None, user="u1", track="t-6"))
    events.append(event(10, type_="user_registered", name=None, user="u9", track=None))
    events.append(event(11, type_="request_created", name=None, user="u2", track="t-2"))
    for i in range(6):
        exp = {"experiment": "pricing_page", "variant": "a", "track": None}
        events.append(event(20 + i, type_="exposure", name=None, user=f"u{i}", **exp))  # type: ignore[arg-type]
        if i % 2 == 0:
            flags = ["no_exposure"] if i == 4 else None
            events.append(event(30 + i, type_="conversion", name="checkout_completed",
                                user=f"u{i}", flags=flags, **exp))  # type: ignore[arg-type]  # fmt: skip
    events.append(event(40, type_="checkout_completed", name=None, user="u8", track=None))
    for back, anon in ((1, "a1"), (3, "old"), (10, "older"), (40, "ancient")):
        events.append(event(0, anon=anon) | {"ts": T0 - timedelta(days=back),
                      "day": DAY - timedelta(days=back), "event_id": f"past-{back}"})  # fmt: skip
    events.append(event(0, anon="tomorrow") | {"ts": T0 + timedelta(days=1),
                  "day": DAY + timedelta(days=1), "event_id": "next-day"})  # fmt: skip
    lh.insert_new("events", events)
    plays = [
        {"play_id": f"p{i}", "track_id": f"t-{i % 3}", "started_at": T0 + timedelta(minutes=i),
         "ended_at": None if i == 5 else T0 + timedelta(minutes=i, seconds=50),
         "listeners": 3 + i, "skipped": i % 4 == 0, "channel": "main"}
        for i in range(9)
    ] + [{"play_id": "yesterday", "track_id": "t-1", "started_at": T0 - timedelta(days=1),
          "ended_at": None, "listeners": 99, "skipped": False, "channel": "main"}]  # fmt: skip
    lh.insert_new("plays", plays)
    votes = [
        {"vote_id": f"v{i}", "user_id": f"u{i}", "track_id": f"t-{i % 5}",
         "stars": None if i == 3 else 1 + i % 5, "direction": 1 if i == 3 else None,
         "action": "withdraw" if i == 6 else "cast", "ts": T0, "day": DAY}
        for i in range(8)
    ] + [{"vote_id": "vold", "user_id": "u1", "track_id": "t-1", "stars": 4, "direction": None,
          "action": "cast", "ts": T0 - timedelta(days=1), "day": DAY - timedelta(days=1)}]  # fmt: skip
    lh.insert_new("votes", votes)
    tracks = [
        full_row(TRACKS.schema, track_id=f"g{i}", backend="procedural" if i % 2 else "musicgen",
                 generation_s=1.5 * (i + 1), created_at=T0 + timedelta(hours=i))
        for i in range(5)
    ] + [full_row(TRACKS.schema, track_id="gold", backend="procedural", generation_s=100.0,
                  created_at=T0 - timedelta(days=1))]  # fmt: skip
    lh.insert_new("tracks", tracks)
    lh.insert_new("track_scores", [full_row(TRACK_SCORES.schema, track_id=f"g{i}", passed=i != 1)
                                   for i in range(3)])  # fmt: skip
    sessions = transforms.listener_sessions(transforms.scan(lh, "events"), DAY, segment_s=6.0)
    lh.insert_new("listener_sessions", sessions)


def test_both_engines_give_the_same_daily_track_metrics(lakehouse: Lakehouse) -> None:
    busy_lake(lakehouse)
    now = T0 + timedelta(hours=3)
    polars_table = transforms.daily_track_metrics_polars(
        events=transforms.scan(lakehouse, "events"), plays=transforms.scan(lakehouse, "plays"),
        votes=transforms.scan(lakehouse, "votes"), day=DAY, now=now,
    )  # fmt: skip
    duck_table = transforms.daily_track_metrics_duckdb(lh=lakehouse, day=DAY, now=now)
    assert duck_table.schema == polars_table.schema
    assert duck_table.to_pylist() == polars_table.to_pylist()
    rows = {r["track_id"]: r for r in duck_table.to_pylist()}
    assert set(rows) == {"t-0", "t-1", "t-2", "t-3", "t-4", "t-5", "t-6"}
    assert rows["t-6"]["shares"] == 1 and rows["t-5"]["unique_listeners"] == 0
    assert transforms.daily_track_metrics is transforms.daily_track_metrics_duckdb


def test_both_engines_give_the_same_kpis(lakehouse: Lakehouse) -> None:
    busy_lake(lakehouse)
    now = T0 + timedelta(hours=3)
    polars_row = transforms.kpis_daily_polars(lh=lakehouse, day=DAY, now=now).to_pylist()
    duck = transforms.kpis_daily_duckdb(lh=lakehouse, day=DAY, now=now)
    assert duck.schema == KPIS_DAILY.schema
    assert duck.to_pylist() == polars_row
    (k,) = polars_row
    # Every field is exercised: not a comparison of zeros.
    assert k["dau"] < k["wau"] < k["mau"] and k["new_users"] == 1 and k["requests"] == 1
    assert (k["conversions"], k["checkout_conversion_rate"]) == (3, pytest.approx(2 / 6))
    assert (k["generation_count"], k["generation_pass_rate"]) == (5, pytest.approx(2 / 3))
    assert k["generation_cpu_s"] > 0 and k["generation_gpu_s"] > 0 and k["votes"] == 7


def test_the_duckdb_engine_reads_missing_tables_as_empty(lakehouse: Lakehouse) -> None:
    lakehouse.insert_new("events", [event(0), event(6)])
    metrics = transforms.daily_track_metrics_duckdb(lh=lakehouse, day=DAY, now=T0)
    assert [(r["track_id"], r["plays"], r["unique_listeners"]) for r in metrics.to_pylist()] == [
        ("t-1", 0, 1)
    ]
    (k,) = transforms.kpis_daily_duckdb(lh=lakehouse, day=DAY, now=T0).to_pylist()
    assert (k["dau"], k["plays"], k["sessions"], k["generation_count"]) == (1, 0, 0, 0)
    assert k["generation_pass_rate"] is None and k["peak_concurrent_listeners"] == 0


def test_the_sql_engine_fallback_gives_the_same_tables(
    lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without this process's cached Delta-extension database (object stores,
    other platforms) the transforms run on analytics.sql.SqlEngine's views."""
    busy_lake(lakehouse)
    monkeypatch.setattr(transforms, "_DUCK_BASE", False)
    now = T0 + timedelta(hours=3)
    assert (
        transforms.kpis_daily_duckdb(lh=lakehouse, day=DAY, now=now).to_pylist()
        == transforms.kpis_daily_polars(lh=lakehouse, day=DAY, now=now).to_pylist()
    )
    polars_table = transforms.daily_track_metrics_polars(
        events=transforms.scan(lakehouse, "events"), plays=transforms.scan(lakehouse, "plays"),
        votes=transforms.scan(lakehouse, "votes"), day=DAY, now=now,
    )  # fmt: skip
    duck = transforms.daily_track_metrics_duckdb(lh=lakehouse, day=DAY, now=now)
    assert duck.to_pylist() == polars_table.to_pylist()


def test_each_asset_is_labelled_with_the_engine_it_runs() -> None:
    """The engine the benchmark reports per asset is the one its Dagster kinds name."""
    import assets.analytics as asset_defs

    for name, engine in transforms.ENGINES.items():
        (spec,) = getattr(asset_defs, name).specs
        assert engine in spec.kinds, (name, spec.kinds)
