"""End to end: Checkout, the webhook, a credit, the request, its own
Dagster partition (the real embedded launcher: a ``sonicforge generate``
subprocess running the real assets into this test's lakehouse), the
master, and a faster-than-real-time streamer that plays it next."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.billing import plans
from serving.context import AppContext
from serving.services.dagster_embedded import EmbeddedLauncher
from sonicforge.lakehouse import Lakehouse
from sonicforge.station import InMemoryStationState
from streaming.outputs.base import AudioBlock
from streaming.service import build_streamer
from tests.payments.conftest import Deliver, buy
from tests.payments.stripe_standin import StripeStandIn
from tests.serving.conftest import Users
from tests.streaming.conftest import PacedClock, SynthTrack, add_tracks, tap_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
]


def test_checkout_to_credit_to_request_to_air(
    make_ctx: Callable[..., AppContext],
    lakehouse: Lakehouse,
    station: InMemoryStationState,
    standin: StripeStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No included quota: the request must be paid with the credit bought.
    monkeypatch.setitem(
        plans.PLANS,
        "free",
        dataclasses.replace(plans.PLANS["free"], quota_per_day=0, quota_per_month=0),
    )
    probe = make_ctx()
    ctx = make_ctx(pipeline=EmbeddedLauncher(probe.settings, launch_timeout_s=120))
    add_tracks(lakehouse, [SynthTrack(f"rot-{i}", 220.0 + 40 * i) for i in range(3)])
    blocks: list[AudioBlock] = []
    streamer = build_streamer(
        ctx.settings.model_copy(update={"stream_no_repeat_count": 1, "stream_no_repeat_s": 0.0}),
        lakehouse=lakehouse,
        station=station,
        clock=PacedClock(speed=8.0),
        rng=random.Random(3),
        outputs=[tap_spec(blocks)],
        backpressure=True,
    )
    stop = threading.Event()
    on_air = threading.Thread(target=streamer.run, kwargs={"stop": stop}, daemon=True)
    changes = station.subscribe()
    seen: list[Any] = []

    def watch() -> None:
        while not stop.is_set():
            change = changes.get(timeout_s=0.2)
            if change is not None and change.now_playing is not None:
                seen.append(change.now_playing)

    watcher = threading.Thread(target=watch, daemon=True)
    on_air.start()
    watcher.start()
    try:
        with TestClient(create_app(context=ctx)) as client:
            user = Users(client, ctx).create()
            buy(client, standin, Deliver(client), user.headers, "credits_10")
            assert (
                client.get("/api/v1/subscription", headers=user.headers).json()["credit_balance"]
                == 10
            )
            r = client.post(
                "/api/v1/requests",
                json={"prompt": "bright piano house", "genre": "house", "duration_s": 12,
                      "show_name": True},
                headers=user.headers,
            )  # fmt: skip
            assert r.status_code == 201, r.text
            request = r.json()
            assert (request["charge"], request["paid"]) == ("credit", True)
            statuses = [request["status"]]
            deadline = time.monotonic() + 150
            body = request
            while body["status"] not in ("aired", "failed") and time.monotonic() < deadline:
                time.sleep(0.2)
                body = client.get(
                    f"/api/v1/requests/{request['request_id']}", headers=user.headers
                ).json()
                if body["status"] != statuses[-1]:
                    statuses.append(body["status"])
            assert body["status"] == "aired", (body, statuses)
            assert "queued_on_air" in statuses
            assert body["expected_air_at"] is not None and body["refunded"] is False
            sub = client.get("/api/v1/subscription", headers=user.headers).json()
            assert sub["credit_balance"] == 9
    finally:
        stop.set()
        on_air.join(timeout=30)
        watcher.join(timeout=5)
        changes.close()
    # The track: made for this request in its own partition, with provenance.
    (row,) = lakehouse.read("tracks", where={"batch_id": request["batch_id"]}).to_pylist()
    assert row["request_id"] == request["request_id"] and row["track_id"] == body["track_id"]
    assert (row["backend"], row["model_license"], row["commercial_use"]) == (
        "procedural", "apache-2.0", True,
    )  # fmt: skip
    assert lakehouse.read("mastered_tracks", where={"track_id": row["track_id"]}).num_rows == 1
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME, where the subprocess recorded its run
    (record,) = instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": request["batch_id"]})
    )
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert instance.has_dynamic_partition("batches", request["batch_id"])
    # Played next, with the requester's name in the now-playing metadata.
    aired = [np for np in seen if np.track_id == row["track_id"]]
    assert aired and aired[0].source == "request"
    assert (aired[0].request_id, aired[0].requested_by) == (request["request_id"], "U")
    before = seen[: seen.index(aired[0])]
    assert all(np.source == "rotation" for np in before)
