"""Stream status, control and queue management over the station state."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.cache import RefreshingCache
from serving.context import AppContext
from sonicforge.station import Heartbeat, InMemoryStationState, NowPlaying, OutputStatus
from tests.serving.conftest import Users
from tests.serving.factories import SeededTrack


def test_status_of_a_station_without_a_streamer_is_offline(client: TestClient) -> None:
    r = client.get("/api/v1/stream/status")
    assert r.status_code == 200
    assert r.json() == {
        "state": "offline",
        "now_playing": None,
        "listeners": 0,
        "uptime_s": None,
        "heartbeat_age_s": None,
        "outputs": [],
        "queue_length": 0,
    }


def test_status_reports_now_playing_listeners_uptime_and_outputs(
    client: TestClient, station: InMemoryStationState
) -> None:
    now = datetime.now(UTC)
    station.set_now_playing(
        NowPlaying(
            track_id="trk_1",
            title="Night Drive",
            artist="SonicForge",
            genre="house",
            started_at=now - timedelta(seconds=30),
            position_s=30.0,
            duration_s=180.0,
            updated_at=now,
        )
    )
    station.set_output_status(OutputStatus(name="hls", state="running"))
    station.set_output_status(OutputStatus(name="mp3", state="running", restarts=1))
    station.set_listeners("hls", 5)
    station.set_listeners("mp3", 2)
    station.beat({"started_at": (now - timedelta(hours=1)).isoformat()})
    body = client.get("/api/v1/stream/status").json()
    assert body["state"] == "on_air"
    assert body["now_playing"]["track_id"] == "trk_1"
    assert body["now_playing"]["title"] == "Night Drive"
    assert 30.0 <= body["now_playing"]["position_s"] < 35.0
    assert body["listeners"] == 7
    assert 3600 <= body["uptime_s"] < 3610
    assert 0 <= body["heartbeat_age_s"] < 5
    assert [(o["name"], o["state"], o["listeners"], o["restarts"]) for o in body["outputs"]] == [
        ("hls", "running", 5, 0),
        ("mp3", "running", 2, 1),
    ]


def test_a_late_heartbeat_shows_as_stalled(
    client: TestClient, station: InMemoryStationState
) -> None:
    station._heartbeat = Heartbeat(datetime.now(UTC) - timedelta(minutes=2), {"uptime_s": 10.0})
    assert client.get("/api/v1/stream/status").json()["state"] == "stalled"


def test_an_operator_sends_commands_to_the_streamer(
    client: TestClient, users: Users, station: InMemoryStationState
) -> None:
    op = users.create("operator")
    r = client.post("/api/v1/stream/control", json={"command": "skip"}, headers=op.headers)
    assert r.status_code == 202
    body = r.json()
    assert body["command"] == "skip"
    assert body["issued_by"] == op.user_id
    assert [c.command for c in station.commands_since(0)] == ["skip"]


def test_an_unknown_command_is_a_clear_422(client: TestClient, users: Users) -> None:
    op = users.create("operator")
    r = client.post("/api/v1/stream/control", json={"command": "explode"}, headers=op.headers)
    assert r.status_code == 422
    assert "'start', 'stop' or 'skip'" in r.json()["error"]["message"]


def test_queue_add_remove_and_reorder(
    client: TestClient, users: Users, seeded: list[SeededTrack], station: InMemoryStationState
) -> None:
    op = users.create("operator")
    ids = []
    for track in seeded[:3]:
        r = client.post(
            "/api/v1/stream/queue", json={"track_id": track.track_id}, headers=op.headers
        )
        assert r.status_code == 201
        assert r.json()["track_id"] == track.track_id
        assert r.json()["source"] == "operator"
        ids.append(r.json()["entry_id"])
    r = client.put(
        "/api/v1/stream/queue/order", json={"entry_ids": [ids[2], ids[0]]}, headers=op.headers
    )
    assert r.status_code == 200
    assert [e["entry_id"] for e in r.json()["items"]] == [ids[2], ids[0], ids[1]]
    r = client.delete(f"/api/v1/stream/queue/{ids[0]}", headers=op.headers)
    assert r.status_code == 200
    assert r.json()["entry_id"] == ids[0]
    public = client.get("/api/v1/stream/queue").json()
    assert public["total"] == 2
    assert [e["entry_id"] for e in public["items"]] == [ids[2], ids[1]]
    assert all(e["requested_by"] is None for e in public["items"])  # hidden from the public
    assert [e.entry_id for e in station.queue()] == [ids[2], ids[1]]
    mine = client.get("/api/v1/stream/queue", headers=op.headers).json()
    assert {e["requested_by"] for e in mine["items"]} == {op.user_id}


def test_queue_refuses_unknown_tracks_and_entries(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    op = users.create("operator")
    r = client.post("/api/v1/stream/queue", json={"track_id": "trk_missing"}, headers=op.headers)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "no track 'trk_missing' in the lakehouse"
    assert client.delete("/api/v1/stream/queue/nope", headers=op.headers).status_code == 404
    r = client.put("/api/v1/stream/queue/order", json={"entry_ids": ["nope"]}, headers=op.headers)
    assert r.status_code == 404


def test_listeners_cannot_manage_the_queue(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    listener = users.create()
    r = client.post(
        "/api/v1/stream/queue", json={"track_id": seeded[0].track_id}, headers=listener.headers
    )
    assert r.status_code == 403


def test_status_is_cached_briefly_and_control_clears_it(
    client: TestClient, ctx: AppContext, users: Users, station: InMemoryStationState
) -> None:
    ctx.status_cache = RefreshingCache(3600.0, max_entries=4)  # no expiry during the test
    assert client.get("/api/v1/stream/status").json()["listeners"] == 0
    station.set_listeners("hls", 4)
    assert client.get("/api/v1/stream/status").json()["listeners"] == 0  # still cached
    op = users.create("operator")
    client.post("/api/v1/stream/control", json={"command": "start"}, headers=op.headers)
    assert client.get("/api/v1/stream/status").json()["listeners"] == 4


def test_status_and_queue_over_the_redis_station_state(
    make_context: Callable[..., AppContext], redis_url: str, seeded: list[SeededTrack]
) -> None:
    """The API and the streamer share the station through Redis in production."""
    from sonicforge.station_redis import RedisStationState

    shared = RedisStationState.from_url(
        redis_url, prefix=f"sonicforge-test:{secrets.token_hex(4)}:"
    )
    streamer_side = RedisStationState.from_url(redis_url, prefix=shared.prefix)
    ctx = make_context()
    ctx.station = shared
    try:
        with TestClient(create_app(context=ctx)) as client:
            streamer_side.set_listeners("hls", 3)
            streamer_side.beat({"uptime_s": 5.0})
            status = client.get("/api/v1/stream/status").json()
            assert (status["state"], status["listeners"]) == ("on_air", 3)
            op = Users(client, ctx).create("operator")
            r = client.post(
                "/api/v1/stream/queue", json={"track_id": seeded[0].track_id}, headers=op.headers
            )
            assert r.status_code == 201
            assert [e.track_id for e in streamer_side.queue()] == [seeded[0].track_id]
            client.post("/api/v1/stream/control", json={"command": "skip"}, headers=op.headers)
            assert [c.command for c in streamer_side.commands_since(0)] == ["skip"]
    finally:
        shared.clear()


def _views() -> list[Any]:
    from serving.services.stream import StationView

    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    playing = NowPlaying("trk_é1", "Nachtzug — “live”", "SonicForge", "house", t0, 12.5, 180.0,
                         source="request", updated_at=t0 + timedelta(seconds=3))  # fmt: skip
    outputs = [
        OutputStatus("hls", "running", "", 0, t0),
        OutputStatus("mp3", "failed", 'x"y', 2, t0),
    ]
    beat = Heartbeat(
        t0 + timedelta(seconds=4), {"started_at": (t0 - timedelta(hours=5)).isoformat()}
    )
    uptime_beat = Heartbeat(t0 + timedelta(seconds=4), {"uptime_s": 7})
    return [
        StationView(None, None, [], {}, 0),
        StationView(playing, beat, outputs, {"hls": 3, "mp3": 1}, 2),
        StationView(playing, uptime_beat, outputs[:1], {"hls": 1}, 0),
        StationView(None, beat, outputs, {}, 5),
        StationView(playing, None, [], {}, 0),
    ]


def test_the_status_renderer_writes_what_the_schema_would(station: InMemoryStationState) -> None:
    """The hot path's renderer reuses one body per station read; at every
    moment (on air, stalled, past the track's end) it must equal the
    schema's own rendering byte for byte."""
    from serving.services.stream import StatusRenderer, stream_status

    renderer = StatusRenderer()
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for view in _views() * 2:  # the template is rebuilt when the view changes
        for offset_s in (0.0, 4.0, 4.0004, 9.25, 30.0, 200.0, 3 * 3600.0):
            now = t0 + timedelta(seconds=offset_s)
            expected = stream_status(view, now).model_dump_json().encode()
            assert renderer.render(view, now) == expected, (view, offset_s)
