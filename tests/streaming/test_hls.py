"""The HLS ladder checked from outside: parsed by an independent parser,
every segment decoded, read concurrently by a 'player' thread."""

from __future__ import annotations

import io
import itertools
import threading
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.service import output_specs
from streaming.streamer import OutputSpec

from .conftest import ScriptedClock, make_streamer
from .hls_check import Watcher, parse_master, parse_media

SR = 48000


def decode_ts(data: bytes) -> tuple[int, float]:
    """(decoded samples, first PTS in seconds) of one segment on its own."""
    with av.open(io.BytesIO(data), format="mpegts") as c:
        frames = list(c.decode(audio=0))
    assert frames, "segment decodes to audio"
    assert frames[0].pts is not None and frames[0].time_base is not None
    return sum(f.samples for f in frames), float(frames[0].pts * frames[0].time_base)


class Player(threading.Thread):
    """Reads playlists and the segments they list while they are written:
    it must never see a torn playlist or a half-written segment."""

    def __init__(self, hls_dir: Path) -> None:
        super().__init__(daemon=True)
        self.dir, self.reads, self.errors = hls_dir, 0, []  # type: ignore[var-annotated]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for media in self.dir.glob("*/index.m3u8"):
                try:
                    parsed = parse_media(media.read_text())
                    for seg in parsed.segments[-2:]:
                        data = (media.parent / str(seg["uri"])).read_bytes()
                        assert len(data) % 188 == 0 and data[0] == 0x47, "whole TS packets"
                        self.reads += 1
                except (AssertionError, FileNotFoundError) as exc:
                    self.errors.append(f"{media.parent.name}: {exc!r}")


def run_hls(settings: Settings, lake: Lakehouse, air_s: float, *, later_s: float = 0) -> Watcher:
    hls_dir = settings.stream_dir / "hls"  # type: ignore[operator]
    watcher = Watcher(hls_dir)
    clock = ScriptedClock()
    clock.advance(later_s)
    station = InMemoryStationState(clock=clock.now)
    specs = [*output_specs(settings, outputs=("hls",)), OutputSpec("watcher", lambda: watcher)]
    make_streamer(settings, lake, station, clock, specs).run(max_air_s=air_s)
    return watcher


def test_ladder_window_sequence_alignment_and_decoding(
    stream_settings: Settings, station_lake: Lakehouse
) -> None:
    hls_dir: Path = stream_settings.stream_dir / "hls"  # type: ignore[operator]
    hls_dir.mkdir(parents=True)
    player = Player(hls_dir)
    player.start()
    try:
        watcher = run_hls(stream_settings, station_lake, air_s=40)
    finally:
        player.stop.set()
        player.join()
    assert player.errors == [] and player.reads > 10

    variants = parse_master((hls_dir / "master.m3u8").read_text())
    assert len(variants) == 3
    for v, kbps in zip(variants, (64, 128, 256), strict=True):
        assert v["CODECS"] == "mp4a.40.2" and int(v["BANDWIDTH"]) > kbps * 1000
        assert (hls_dir / v["URI"]).is_file()

    renditions = sorted(watcher.playlists)
    assert renditions == ["aac_128k", "aac_256k", "aac_64k"]
    timeline: dict[str, dict[int, dict[str, object]]] = {}
    for name in renditions:
        versions = watcher.playlists[name]
        seqs = [m.sequence for m in versions]
        assert seqs == sorted(seqs), "MEDIA-SEQUENCE never goes back"
        assert {m.target for m in versions} == {2}, "TARGETDURATION is constant"
        assert versions[-1].ended and not any(m.ended for m in versions[:-1])
        segs: dict[int, dict[str, object]] = {}
        for m in versions:
            assert len(m.segments) <= stream_settings.stream_hls_window
            for seg in m.segments:
                assert round(seg["duration"]) <= m.target  # type: ignore[call-overload]
                segs[int(seg["seq"])] = seg  # type: ignore[call-overload]
        assert sorted(segs) == list(range(min(segs), max(segs) + 1)), "no gaps"
        assert len(segs) >= 19
        timeline[name] = segs
        # PROGRAM-DATE-TIME advances by each segment's duration.
        ordered = [segs[s] for s in sorted(segs)]
        for a, b in itertools.pairwise(ordered):
            step = (b["pdt"] - a["pdt"]).total_seconds()  # type: ignore[operator]
            assert step == pytest.approx(a["duration"], abs=0.002)
        # Each segment decodes alone to exactly its EXTINF, and its PTS
        # continues where the previous one ended.
        prev_end = None
        for seq in sorted(segs):
            samples, first_pts = decode_ts(watcher.segments[(name, seq)])
            assert samples == round(float(segs[seq]["duration"]) * SR)  # type: ignore[arg-type]
            if prev_end is not None:
                assert first_pts == pytest.approx(prev_end, abs=1e-3)
            prev_end = first_pts + samples / SR
        # Old segments are deleted: what remains is the window and its grace.
        on_disk = sorted(int(p.stem[4:]) for p in (hls_dir / name).glob("seg_*.ts"))
        assert len(on_disk) <= 2 * stream_settings.stream_hls_window + 1
        assert min(on_disk) > min(segs)
    # Aligned ladder: segment n has the same duration and start everywhere.
    for seq in timeline["aac_64k"]:
        rows = {(t[seq]["duration"], t[seq]["pdt"]) for t in timeline.values()}
        assert len(rows) == 1, f"segment {seq} differs across renditions: {rows}"
    assert not list(hls_dir.rglob(".*tmp*")), "no temporary files left behind"


def test_restart_continues_the_sequence_with_a_discontinuity(
    stream_settings: Settings, station_lake: Lakehouse
) -> None:
    hls_dir: Path = stream_settings.stream_dir / "hls"  # type: ignore[operator]
    run_hls(stream_settings, station_lake, air_s=9)
    before = parse_media((hls_dir / "aac_128k" / "index.m3u8").read_text())
    last = before.segments[-1]
    watcher = run_hls(stream_settings, station_lake, air_s=13, later_s=60)
    after = watcher.playlists["aac_128k"]
    first = next(m for m in after if any(s["discontinuity"] for s in m.segments)).segments
    assert [s["seq"] for s in first][-2:] == [last["seq"], int(last["seq"]) + 1]  # type: ignore[call-overload]
    assert first[-1]["discontinuity"] and not first[-2]["discontinuity"]
    assert first[-1]["pdt"] >= last["pdt"] + timedelta(seconds=float(last["duration"]))  # type: ignore[arg-type, operator]
    final = after[-1]
    # Once the discontinuity leaves the window the counter moves on.
    assert final.discontinuity_sequence == 1 and not any(s["discontinuity"] for s in final.segments)
    seqs = [s["seq"] for m in after for s in m.segments]
    assert sorted(set(seqs)) == list(range(min(seqs), max(seqs) + 1))  # type: ignore[call-overload]
    assert np.isfinite(float(final.segments[-1]["duration"]))  # type: ignore[arg-type]


def test_segments_end_on_the_rounded_frame_boundaries_whatever_the_block_sizes(
    tmp_path: Path,
) -> None:
    """2 s at 48 kHz is 93.75 AAC frames: segment k must hold the frames from
    round(k * 93.75) to round((k + 1) * 93.75) (the first also the priming
    frame), in every rendition, for blocks of any size (many frames, one,
    less than one)."""
    from datetime import UTC, datetime

    from streaming.outputs.base import AudioBlock
    from streaming.outputs.hls import AAC_FRAME, HlsOutput

    out = HlsOutput(tmp_path, bitrates_kbps=[64, 128], segment_s=2.0, window=100)
    rng = np.random.default_rng(7)
    total = int(13.3 * SR)
    pcm = (0.1 * rng.standard_normal((total, 2))).astype(np.float32)
    start, wall = 0, datetime(2026, 1, 1, tzinfo=UTC)
    for size in itertools.cycle([4800, 1, 1023, 1024, 30000, 777]):
        if start >= total:
            break
        out.write(AudioBlock(pcm[start : start + size], start, SR, wall, "t", "a"))
        start += size
    out.close()
    expected = [round((k + 1) * 93.75) - round(k * 93.75) for k in range(6)]
    expected[0] += 1  # the priming frame
    for name in ("aac_64k", "aac_128k"):
        media = parse_media((tmp_path / name / "index.m3u8").read_text())
        frames = [round(float(s["duration"]) * SR / AAC_FRAME) for s in media.segments]  # type: ignore[arg-type]
        assert frames[:6] == expected
        assert sum(frames) == -(-total // AAC_FRAME) + 1  # every frame, padded end, priming
