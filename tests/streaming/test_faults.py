"""Fault injection: masters deleted and corrupted, a track with dead air,
the rotation emptied, all while the streamer runs faster than real time.
The decoded output never holds 2 s of digital silence and the HLS sequence
has no gaps."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from deltalake import DeltaTable

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.outputs.base import AudioBlock, Output
from streaming.service import output_specs
from streaming.streamer import OutputSpec

from .conftest import ScriptedClock, SynthTrack, add_tracks, make_streamer, render, tap_spec
from .hls_check import Watcher

SR = 48000
SILENCE = 1e-4  # about -80 dBFS


class Faults(Output):
    """Runs each action once the timeline passes its time (seconds)."""

    name = "faults"

    def __init__(self, script: list[tuple[float, Callable[[], None]]]) -> None:
        self.script = sorted(script, key=lambda s: s[0])
        self.done: list[float] = []

    def write(self, block: AudioBlock) -> None:
        while self.script and block.stream_time_s >= self.script[0][0]:
            at, action = self.script.pop(0)
            action()
            self.done.append(at)


def longest_silence_s(pcm: np.ndarray) -> float:
    quiet = np.abs(pcm).max(axis=1) < SILENCE
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest / SR


def test_never_silent_and_no_hls_gaps_under_faults(
    stream_settings: Settings, lakehouse: Lakehouse
) -> None:
    rotation = [SynthTrack(f"r{i}", f, duration_s=6.0) for i, f in enumerate([220, 262, 330, 392])]
    spare = [SynthTrack(f"s{i}", f, duration_s=6.0, quality=95.0) for i, f in enumerate([494, 587])]
    add_tracks(lakehouse, rotation)
    add_tracks(lakehouse, spare, rotation=False)  # only the fallback can reach these
    # A master with 5 s of dead air in the middle.
    gap = SynthTrack("dead", 440.0, duration_s=2.0)
    add_tracks(lakehouse, [gap])
    dead_path = lakehouse.audio.uri_for("masters/dead.flac")
    import soundfile as sf

    tone = render(SynthTrack("dead", 440.0, duration_s=2.0))
    silent = np.concatenate([tone, np.zeros((44100 * 5, 2), np.float32), tone])
    sf.write(dead_path, silent, 44100, format="FLAC")

    def path(tid: str) -> str:
        return lakehouse.audio.uri_for(f"masters/{tid}.flac")

    def delete(tid: str) -> Callable[[], None]:
        return lambda: os.remove(path(tid))

    def garble(tid: str) -> Callable[[], None]:
        return lambda: Path(path(tid)).write_bytes(os.urandom(20000))

    def truncate(tid: str) -> Callable[[], None]:
        def cut() -> None:
            data = Path(path(tid)).read_bytes()
            Path(path(tid)).write_bytes(data[: len(data) // 3])

        return cut

    def empty_rotation() -> None:
        DeltaTable(lakehouse.table_uri("rotation")).delete()

    faults = Faults(
        [
            (8.0, delete("r0")),
            (16.0, garble("r1")),
            (16.0, truncate("r2")),
            (30.0, empty_rotation),
            (50.0, delete("s0")),
        ]
    )
    hls_dir = stream_settings.stream_dir / "hls"  # type: ignore[operator]
    watcher = Watcher(hls_dir)
    timeline: list[AudioBlock] = []
    specs = [
        OutputSpec("faults", lambda: faults),
        *output_specs(stream_settings, outputs=("hls",)),
        OutputSpec("watcher", lambda: watcher),
        tap_spec(timeline),
    ]
    clock = ScriptedClock()
    station = InMemoryStationState(clock=clock.now)
    streamer = make_streamer(stream_settings, lakehouse, station, clock, specs, seed=3)
    streamer.run(max_air_s=90)

    assert faults.done == [8.0, 16.0, 16.0, 30.0, 50.0]
    plays = sorted(lakehouse.read("plays").to_pylist(), key=lambda p: p["started_at"])
    aired = [p["track_id"] for p in plays]
    assert streamer.playout.skipped_masters >= 3  # deleted, garbled, deleted
    assert {"s0", "s1"} & set(aired), "the fallback aired once the rotation emptied"
    assert "dead" in aired and next(p for p in plays if p["track_id"] == "dead")["skipped"]

    # The timeline as the encoders saw it, and the HLS output decoded.
    pcm = np.concatenate([b.pcm for b in timeline])
    assert len(pcm) >= 90 * SR
    assert longest_silence_s(pcm) < 2.0
    segs = sorted({seq for (name, seq) in watcher.segments if name == "aac_128k"})
    assert segs == list(range(segs[0], segs[-1] + 1)), "no gaps in the HLS sequence"
    decoded = []
    for seq in segs:
        with av.open(io.BytesIO(watcher.segments[("aac_128k", seq)]), format="mpegts") as c:
            decoded += [f.to_ndarray().T for f in c.decode(audio=0)]
    audio = np.concatenate(decoded)
    assert len(audio) >= 89 * SR
    assert longest_silence_s(audio) < 2.0
