"""Synthetic masters for streaming tests: each track is a chord on its own
root note, so a test can tell from the spectrum which track is on air."""

from __future__ import annotations

import io
import random
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState, StationState
from streaming.clock import VirtualClock
from streaming.outputs.base import AudioBlock, Output
from streaming.service import build_streamer
from streaming.streamer import OutputSpec, Streamer

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SynthTrack:
    track_id: str
    freq: float
    duration_s: float = 8.0
    amplitude: float = 0.25
    sample_rate: int = 44100
    lufs: float = -14.0
    weight: float = 1.0
    quality: float = 80.0


def render(track: SynthTrack) -> np.ndarray:
    t = np.arange(int(track.duration_s * track.sample_rate)) / track.sample_rate
    # The root is the loudest partial, so a spectrum's peak names the track.
    partials = ((1.0, 1.0), (1.25, 0.5), (1.5, 0.35))
    tone = sum(a * np.sin(2 * np.pi * track.freq * r * t) for r, a in partials) / 1.85
    mono = (track.amplitude * tone).astype(np.float32)
    return np.stack([mono, mono], axis=1)


def add_tracks(lakehouse: Lakehouse, tracks: list[SynthTrack], *, rotation: bool = True) -> None:
    """Masters as FLAC in the audio store, rows in mastered_tracks,
    track_scores and (optionally) rotation."""
    mastered, scores, rot = [], [], []
    for tr in tracks:
        buf = io.BytesIO()
        sf.write(buf, render(tr), tr.sample_rate, format="FLAC")
        uri, sha = lakehouse.audio.put(f"masters/{tr.track_id}.flac", buf.getvalue())
        mastered.append(
            {
                "track_id": tr.track_id,
                "batch_id": "b-test",
                "master_uri": uri,
                "master_sha256": sha,
                "renditions": [],
                "duration_s": tr.duration_s,
                "sample_rate": tr.sample_rate,
                "lufs_before": tr.lufs,
                "lufs_after": tr.lufs,
                "true_peak_after": -1.5,
                "chain_version": "test",
                "mastered_at": EPOCH,
            }
        )
        scores.append(_score(tr))
        rot.append(
            {
                "track_id": tr.track_id,
                "batch_id": "b-test",
                "genre": "ambient",
                "weight": tr.weight,
                "duration_s": tr.duration_s,
                "quality_score": tr.quality,
                "eligible_from": EPOCH,
                "retired_at": None,
            }
        )
    lakehouse.upsert("mastered_tracks", mastered)
    lakehouse.upsert("track_scores", scores)
    if rotation:
        lakehouse.upsert("rotation", rot)


def _score(tr: SynthTrack) -> dict[str, object]:
    zeros = dict.fromkeys(
        [
            "integrated_lufs",
            "true_peak_dbtp",
            "loudness_range_lu",
            "clipping_ratio",
            "silence_ratio",
            "dc_offset",
            "nonfinite_ratio",
            "tempo_bpm_est",
            "tempo_error",
            "spectral_centroid_hz",
            "spectral_flatness",
            "stereo_correlation",
        ],
        0.0,
    )
    return {
        **zeros,
        "track_id": tr.track_id,
        "batch_id": "b-test",
        "duration_s": tr.duration_s,
        "quality_score": tr.quality,
        "passed": True,
        "reasons": [],
        "scorer_version": "test",
        "scored_at": EPOCH,
    }


# Roots a minor third apart or more: easy to tell apart in a spectrum.
FREQS = [220.0, 277.18, 349.23, 440.0, 554.37, 698.46]


@pytest.fixture
def synth_tracks() -> list[SynthTrack]:
    return [SynthTrack(f"t{i}", f) for i, f in enumerate(FREQS[:4])]


@pytest.fixture
def station_lake(lakehouse: Lakehouse, synth_tracks: list[SynthTrack]) -> Lakehouse:
    add_tracks(lakehouse, synth_tracks)
    return lakehouse


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def memory_station(clock: VirtualClock) -> InMemoryStationState:
    return InMemoryStationState(clock=clock.now)


@pytest.fixture
def stream_settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        stream_dir=tmp_path / "stream",
        stream_crossfade_s=1.0,
        stream_hls_segment_s=2.0,
        stream_hls_window=4,
        stream_no_repeat_count=2,
        stream_no_repeat_s=0.0,
        stream_plays_flush_s=5.0,
    )


def dominant_freq(pcm: np.ndarray, sample_rate: int) -> float:
    mono = pcm.mean(axis=1) if pcm.ndim == 2 else pcm
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spec) * sample_rate / len(mono))


class ScriptedClock(VirtualClock):
    """A virtual clock that sends operator commands at set stream times."""

    def __init__(self, station: StationState | None = None) -> None:
        super().__init__(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
        self.station = station
        self.script: list[tuple[float, str]] = []

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        while self.script and self.monotonic() >= self.script[0][0] and self.station is not None:
            self.station.send_command(self.script.pop(0)[1], issued_by="test")


class PacedClock(VirtualClock):
    """Virtual time that also passes in real time, ``speed`` times faster
    (for tests where a real server or player reads alongside)."""

    def __init__(self, speed: float) -> None:
        super().__init__()
        self.speed = speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)
        super().sleep(seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tap(Output):
    """An output that keeps every block (the timeline as the encoders saw it)."""

    name = "tap"

    def __init__(self, store: list[AudioBlock]) -> None:
        self.store = store

    def write(self, block: AudioBlock) -> None:
        self.store.append(block)


def tap_spec(store: list[AudioBlock]) -> OutputSpec:
    return OutputSpec("tap", lambda: Tap(store))


def make_streamer(
    settings: Settings,
    lakehouse: Lakehouse,
    station: StationState,
    clock: VirtualClock,
    outputs: list[OutputSpec],
    *,
    seed: int = 1,
) -> Streamer:
    return build_streamer(
        settings,
        lakehouse=lakehouse,
        station=station,
        clock=clock,
        rng=random.Random(seed),
        outputs=outputs,
        backpressure=True,
    )


@pytest.fixture(params=["memory", "redis"])
def any_station(request: pytest.FixtureRequest) -> Iterator[tuple[StationState, ScriptedClock]]:
    """A scripted clock and a station state of each kind (Redis: real, CI's)."""
    clock = ScriptedClock()
    if request.param == "memory":
        station: StationState = InMemoryStationState(clock=clock.now)
        clock.station = station
        yield station, clock
        return
    url = request.getfixturevalue("redis_url")
    from sonicforge.station_redis import RedisStationState

    redis_state = RedisStationState.from_url(
        url, prefix=f"test:{uuid.uuid4().hex}:", clock=clock.now
    )
    clock.station = redis_state
    try:
        yield redis_state, clock
    finally:
        redis_state.clear()
