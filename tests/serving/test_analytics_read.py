"""Experiments (variant, exposure once, conversions), the event explorer,
the dashboard, public statistics, and the Prometheus exposition with the
Grafana dashboard that reads it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from analytics.drain import OutboxDrain
from analytics.experiments import EXPERIMENTS, assign
from serving.context import AppContext
from serving.db.models import OutboxEvent
from sonicforge.station import OutputStatus
from tests.serving.conftest import Users
from tests.serving.factories import SeededTrack

REPO = Path(__file__).resolve().parents[2]
A = "/api/v1/analytics"


def _count(ctx: AppContext, type_: str) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).where(OutboxEvent.type == type_)) or 0)


def test_the_experiments_are_listed(client: TestClient) -> None:
    r = client.get(f"{A}/experiments")
    assert r.status_code == 200
    items = {e["experiment_id"]: e for e in r.json()["items"]}
    assert set(items) == set(EXPERIMENTS)
    assert [v["config"]["crossfade_s"] for v in items["crossfade_seconds"]["variants"]] == [
        4.0,
        8.0,
    ]


def test_a_variant_is_stable_and_its_exposure_recorded_once(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    account = users.create()
    answers = [client.get(f"{A}/experiments/player_layout/variant", headers=account.headers)
               for _ in range(3)]  # fmt: skip
    assert {r.status_code for r in answers} == {200}
    variants = {r.json()["variant"] for r in answers}
    expected = assign(EXPERIMENTS["player_layout"], f"u:{account.user_id}").name
    assert variants == {expected}
    assert [r.json()["first_exposure"] for r in answers] == [True, False, False]
    assert _count(ctx, "exposure") == 1
    anon = client.get(f"{A}/experiments/pricing_page/variant", params={"anonymous_id": "anon-7"})
    assert anon.status_code == 200
    assert anon.json()["variant"] == assign(EXPERIMENTS["pricing_page"], "a:anon-7").name


def test_an_unknown_experiment_is_404(client: TestClient) -> None:
    r = client.get(f"{A}/experiments/no_such_thing/variant", params={"anonymous_id": "a"})
    assert r.status_code == 404 and "crossfade_seconds" in r.json()["error"]["message"]
    r = client.post(f"{A}/experiments/no_such_thing/convert", json={"anonymous_id": "a"})
    assert r.status_code == 404


def test_a_variant_needs_a_unit(client: TestClient) -> None:
    r = client.get(f"{A}/experiments/player_layout/variant")
    assert r.status_code == 400 and "anonymous_id" in r.json()["error"]["message"]


def test_a_conversion_without_exposure_is_recorded_and_flagged(
    client: TestClient, ctx: AppContext
) -> None:
    r = client.post(f"{A}/experiments/pricing_page/convert", json={"anonymous_id": "never-seen"})
    assert r.status_code == 201
    assert r.json() | {"event_id": None} == {
        "experiment_id": "pricing_page", "event_id": None, "variant": None, "counted": False,
        "flags": ["no_exposure"],
    }  # fmt: skip
    client.get(f"{A}/experiments/pricing_page/variant", params={"anonymous_id": "seen"})
    r = client.post(
        f"{A}/experiments/pricing_page/convert", json={"anonymous_id": "seen", "value": 9.99}
    )
    assert r.status_code == 201 and r.json()["counted"] is True and r.json()["flags"] == []
    with ctx.db.session() as s:
        rows = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "conversion")).all()
    assert sorted((r.flags or []) for r in rows) == [[], ["no_exposure"]]
    assert {r.event for r in rows} == {"checkout_completed"}


def test_analysts_read_events_by_filter_and_cursor(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    analyst, listener = users.create("analyst"), users.create()
    now = datetime.now(UTC)
    batch = [{"event_id": f"ev-{i:03d}", "event": "skip" if i % 2 else "heartbeat",
              "anonymous_id": "anon-r", "track_id": "t-1",
              "timestamp": (now - timedelta(minutes=i)).isoformat()} for i in range(25)]  # fmt: skip
    sent = {"batch": batch, "sent_at": now.isoformat()}
    assert client.post(f"{A}/track", json=sent).status_code == 202
    OutboxDrain(ctx.db.engine, ctx.lakehouse).run()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"event": "skip", "limit": 5} | ({"cursor": cursor} if cursor else {})
        r = client.get(f"{A}/events", params=params, headers=analyst.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [e["event_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"ev-{i:03d}" for i in range(1, 25, 2)]  # newest first, each once
    r = client.get(f"{A}/events", params={"anonymous_id": "anon-r", "since": (now - timedelta(minutes=3, seconds=30)).isoformat()},
                   headers=analyst.headers)  # fmt: skip
    assert [e["event_id"] for e in r.json()["items"]] == ["ev-000", "ev-001", "ev-002", "ev-003"]
    assert client.get(f"{A}/events", headers=listener.headers).status_code == 403
    assert client.get(f"{A}/events").status_code == 401
    bad = client.get(f"{A}/events", params={"cursor": "garbage"}, headers=analyst.headers)
    assert bad.status_code == 400


def test_the_dashboard_for_operators(
    client: TestClient, ctx: AppContext, users: Users, seeded: list[SeededTrack]
) -> None:
    operator, listener = users.create("operator"), users.create()
    ctx.station.set_listeners("hls", 7)
    client.post(f"{A}/track", json={"event": "heartbeat", "anonymous_id": "a"})
    r = client.get(f"{A}/dashboard", headers=operator.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["listeners_now"] == 7 and body["listeners_by_output"]["hls"] == 7
    assert body["generation"]["tracks"] == len(seeded)
    assert body["generation"]["passed"] == sum(t.passed for t in seeded)
    assert body["outbox"]["pending"] >= 1
    assert {e["experiment_id"] for e in body["experiments"]} == set(EXPERIMENTS)
    assert client.get(f"{A}/dashboard", headers=listener.headers).status_code == 403


def test_public_stats_hold_no_personal_data(
    client: TestClient, ctx: AppContext, seeded: list[SeededTrack]
) -> None:
    ctx.station.set_listeners("mp3", 3)
    r = client.get(f"{A}/public/stats")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"listeners_now", "tracks_generated", "hours_aired", "generated_at"}
    assert body["listeners_now"] == 3 and body["tracks_generated"] == len(seeded)


def _dashboard_metrics() -> set[str]:
    dash = json.loads((REPO / "deploy/grafana/sonicforge.json").read_text())
    names: set[str] = set()
    for panel in dash["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\bsonicforge_[a-z_]+", target["expr"]))
    return names


def test_every_metric_the_grafana_dashboard_queries_is_exposed(
    client: TestClient, ctx: AppContext
) -> None:
    ctx.station.set_output_status(OutputStatus(name="hls", state="running", restarts=2))
    ctx.station.set_listeners("hls", 4)
    client.post(f"{A}/track", json={"event": "heartbeat", "anonymous_id": "a"})
    client.post(f"{A}/track", json={"event": 5, "anonymous_id": "a"})
    client.get("/api/v1/analytics/experiments")
    body = client.get("/metrics").text
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in body.splitlines()
        if line and not line.startswith("#")
    }
    missing = sorted(_dashboard_metrics() - exposed)
    assert missing == [], missing
    assert 'sonicforge_listeners{output="hls"} 4.0' in body
    assert 'sonicforge_output_restarts_total{output="hls"} 2.0' in body
    assert re.search(
        r'sonicforge_http_requests_total\{method="GET",route="/api/v1/analytics/experiments",status="200"\} [1-9]',
        body,
    )
    assert client.get(f"{A}/metrics/prometheus").text.count("sonicforge_outbox_lag_seconds") >= 1


def test_the_scrape_config_targets_the_metrics_path() -> None:
    text = (REPO / "deploy/grafana/prometheus.yml").read_text()
    assert "metrics_path: /metrics" in text and "sonicforge-api" in text
