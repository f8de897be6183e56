"""The lakehouse and the audio on object storage, end to end, on moto's S3
server on loopback: generate → score → master → rotation, the streamer
airing masters it read ahead from S3, plays written to S3 Delta, then
``sonicforge sql`` over ``s3://`` through DuckDB's httpfs, and two writer
processes committing to one S3 table at once."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from orchestration.config import GenerationConfig
from orchestration.launch import launch_generation
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import get_settings
from sonicforge.station import InMemoryStationState
from streaming.clock import VirtualClock
from streaming.outputs.base import AudioBlock
from streaming.prefetch import PrefetchingStore
from streaming.service import build_streamer
from streaming.streamer import OutputSpec
from tests.core.test_s3_lakehouse import _WRITER, S3Server
from tests.streaming.conftest import Tap

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_radio_on_object_storage(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"e2e-{secrets.token_hex(3)}"
    options = {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    env = {
        "SONICFORGE_LAKEHOUSE_URI": f"s3://radio/{prefix}",
        "SONICFORGE_LAKEHOUSE_STORAGE_OPTIONS": json.dumps(options),
        "SONICFORGE_GENERATOR_SOURCE": "settings",
        "SONICFORGE_STREAM_DIR": str(tmp_path / "stream"),
        "SONICFORGE_STREAM_CROSSFADE_S": "1",
        "SONICFORGE_STREAM_NO_REPEAT_COUNT": "1",
        "SONICFORGE_STREAM_NO_REPEAT_S": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    lake = Lakehouse.from_settings(settings)
    assert lake.root_uri.startswith("s3://")
    lake.ensure_all()

    # The pipeline, its Delta tables and audio on S3.
    from orchestration.definitions import build_definitions

    with dg.DagsterInstance.ephemeral() as instance:
        result = launch_generation(
            GenerationConfig(genres=["house"], count=1, duration_s=10.0, seed=11),
            defs=build_definitions(),
            instance=instance,
        )
    assert result.success, (result.failed_steps, result.failed_checks)
    rotation = lake.read("rotation", where={"batch_id": result.batch_id}).to_pylist()
    masters = lake.read("mastered_tracks", where={"batch_id": result.batch_id}).to_pylist()
    # The gates decide how many go on air; at least one does (a fixed seed).
    assert rotation and all(m["master_uri"].startswith("s3://radio/") for m in masters)
    on_air = {r["track_id"] for r in rotation}
    masters = [m for m in masters if m["track_id"] in on_air]

    # The streamer: masters read ahead from S3 before their decks open.
    blocks: list[AudioBlock] = []
    streamer = build_streamer(
        settings,
        lakehouse=lake,
        station=InMemoryStationState(),
        clock=VirtualClock(datetime.now(UTC)),  # the rotation is eligible from now
        outputs=[OutputSpec("tap", lambda: Tap(blocks))],
    )
    store = streamer.playout._store
    assert isinstance(store, PrefetchingStore)
    store.fill()  # whatever its thread has not fetched yet
    assert all(store.cached(m["master_uri"]) for m in masters)
    streamer.run(max_air_s=15.0)
    store.close()
    assert store.misses == 0 and store.hits >= 1
    aired = {b.title for b in blocks}
    titles = {streamer.playout.scheduler._catalog.lookup(t).title for t in on_air}
    assert titles <= aired, (titles, aired)  # every rotation track aired, read from S3

    plays = lake.read("plays").to_pylist()
    assert {p["track_id"] for p in plays} <= {r["track_id"] for r in rotation}
    assert len(plays) >= 1

    # Two processes committing to the plays table on S3 at once.
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, s3_server.endpoint, prefix, name, "12"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("w1", "w2")
    ]
    for w in writers:
        out, _ = w.communicate(timeout=240)
        assert w.returncode == 0, out[-3000:]

    # `sonicforge sql` over s3:// (DuckDB's delta and httpfs extensions).
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("SONICFORGE_")}
    cli_env.update(env, SONICFORGE_VAR_DIR=str(tmp_path / "cli-var"))
    done = subprocess.run(
        [
            sys.executable, "-m", "cli.main", "sql", "--format", "json",
            "select channel, count(*) as n from plays group by 1 order by 1",
        ],
        cwd=REPO, env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts = {row["channel"]: row["n"] for row in json.loads(done.stdout)}
    assert counts["w1"] == 12 and counts["w2"] == 12
    assert counts["main"] == len(plays)
