"""The HLS ladder: AAC renditions in MPEG-TS segments with a live window.

Every rendition's encoder gets the same 1024-sample frames, and a segment
ends at the first packet at or after its boundary (a whole number of AAC
frames), so segment n covers the same samples in every rendition: players
switch bitrate without a gap. The segments are muxed by PyAV (FFmpeg's
libavcodec AAC encoder and mpegts muxer, in process); the segmenter and the
playlists are our own, so timing follows the injected clock and a restart
continues the sequence.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streaming.outputs.base import AudioBlock, Framer, Output
from streaming.outputs.hls_playlist import (
    SegmentEntry,
    Variant,
    atomic_write,
    read_media,
    render_master,
    render_media,
    target_duration,
)

log = logging.getLogger(__name__)

AAC_FRAME = 1024
MASTER = "master.m3u8"
MEDIA = "index.m3u8"
MIN_LIVE_SEGMENTS = 3


def aac_encoder(*, sample_rate: int, bitrate_kbps: int, coder: str) -> av.AudioCodecContext:
    enc = av.CodecContext.create("aac", "w")
    assert isinstance(enc, av.AudioCodecContext)
    enc.sample_rate, enc.layout, enc.format = sample_rate, "stereo", "fltp"
    enc.bit_rate = bitrate_kbps * 1000
    enc.time_base = Fraction(1, sample_rate)
    enc.options = {"aac_coder": coder}
    enc.open()
    return enc


def mux_ts(packets: list[av.Packet], *, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    # max_delay lets the muxer pack several AAC frames into one PES packet;
    # at 0 it wraps every 21 ms frame alone and doubles the 64k rendition.
    with av.open(buf, "w", format="mpegts", container_options={"max_delay": "500000"}) as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.codec_context.layout = "stereo"
        for packet in packets:
            packet.stream = stream
            container.mux(packet)
    return buf.getvalue()


class Rendition:
    """One bitrate: its encoder, its open segment and its window."""

    def __init__(
        self, directory: Path, bitrate_kbps: int, *, sample_rate: int, coder: str, window: int
    ) -> None:
        self.dir, self.kbps, self.sr, self.window = directory, bitrate_kbps, sample_rate, window
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder = aac_encoder(sample_rate=sample_rate, bitrate_kbps=bitrate_kbps, coder=coder)
        previous = read_media(directory / MEDIA)
        self.entries: list[SegmentEntry] = previous.entries[-window:] if previous else []
        self.discontinuity_seq = previous.discontinuity_seq if previous else 0
        self.next_seq = self.entries[-1].seq + 1 if self.entries else 0
        first = self.entries[0].seq if self.entries else self.next_seq
        # Files left from before the carried window are deleted in turn.
        self.retired: deque[int] = deque(sorted(s for s in self._on_disk() if s < first))
        self.packets: list[av.Packet] = []
        self.peak_bps = 0
        self.bits, self.seconds = 0, 0.0
        self.k = 0  # segments of this session finished so far
        self.end_pts = 0  # encoder pts at which segment k + 1 starts (set by HlsOutput)
        self.min_measured_s = 0.0

    def _on_disk(self) -> list[int]:
        return [int(p.stem[4:]) for p in self.dir.glob("seg_*.ts") if p.stem[4:].isdigit()]

    def finish(self, *, start: datetime, target_s: int, discontinuity: bool) -> None:
        if not self.packets:
            return
        data = mux_ts(self.packets, sample_rate=self.sr)
        duration = len(self.packets) * AAC_FRAME / self.sr
        name = f"seg_{self.next_seq:08d}.ts"
        atomic_write(self.dir / name, data)
        if duration >= self.min_measured_s:  # a short last segment overstates
            self.peak_bps = max(self.peak_bps, int(len(data) * 8 / duration))
            self.bits += len(data) * 8
            self.seconds += duration
        self.entries.append(SegmentEntry(self.next_seq, name, duration, start, discontinuity))
        self.next_seq += 1
        self.packets = []
        while len(self.entries) > self.window:
            gone = self.entries.pop(0)
            self.retired.append(gone.seq)
            if self.entries[0].discontinuity:
                self.discontinuity_seq += 1
        # RFC 8216 6.2.2: keep a removed segment as long as a playlist that
        # listed it may still be in use, i.e. another window's length.
        while len(self.retired) > self.window:
            (self.dir / f"seg_{self.retired.popleft():08d}.ts").unlink(missing_ok=True)
        self.write_playlist(target_s=target_s, ended=False)

    @property
    def average_bps(self) -> int:
        return int(self.bits / self.seconds) if self.seconds else 0

    def write_playlist(self, *, target_s: int, ended: bool) -> None:
        text = render_media(
            self.entries, target_s=target_s, discontinuity_seq=self.discontinuity_seq, ended=ended
        )
        atomic_write(self.dir / MEDIA, text.encode())


class HlsOutput(Output):
    """Writes ``master.m3u8`` and one ``aac_<kbps>k/`` folder per rendition."""

    name = "hls"

    def __init__(
        self,
        directory: Path,
        *,
        bitrates_kbps: list[int],
        sample_rate: int = 48000,
        segment_s: float = 6.0,
        window: int = 6,
        aac_coder: str = "fast",
    ) -> None:
        self.dir = directory
        self.sr = sample_rate
        self.segment_s = segment_s
        self.target_s = target_duration(segment_s)
        self.renditions = [
            Rendition(
                directory / f"aac_{kbps}k",
                kbps,
                sample_rate=sample_rate,
                coder=aac_coder,
                window=window,
            )
            for kbps in sorted(bitrates_kbps)
        ]
        # One sequence for the ladder, so segment n means the same audio everywhere.
        next_seq = max(r.next_seq for r in self.renditions)
        self._resumed = any(r.entries for r in self.renditions)
        for r in self.renditions:
            r.next_seq = next_seq
            r.min_measured_s = segment_s / 2
            r.end_pts = self._boundary(1) * AAC_FRAME
        self._framer = Framer(AAC_FRAME)
        self._frames = 0
        self._time_base = Fraction(1, sample_rate)
        self._segment = 0
        self._start: datetime | None = None
        self._declared: dict[int, tuple[int, int]] = {}
        self.master_written = False
        # A master from an earlier session may name playlists that are not
        # there (or too short) any more: it goes until they are ready.
        (self.dir / MASTER).unlink(missing_ok=True)
        self._maybe_write_master()

    def _boundary(self, k: int) -> int:
        """First AAC frame of segment ``k`` of this session."""
        return round(k * self.segment_s * self.sr / AAC_FRAME)

    def _segment_start(self, k: int) -> datetime:
        assert self._start is not None
        # Segment 0 also carries the encoder's priming frame, which sits one
        # frame before the first sample: its PDT says so, so PDT + EXTINF
        # meets the next segment's PDT exactly.
        first = self._boundary(k) if k else -1
        return self._start + timedelta(seconds=first * AAC_FRAME / self.sr)

    def _ready(self) -> bool:
        # A player that finds the master must find every variant with a
        # live window it can start in (three segments, as players hold back).
        return all(len(r.entries) >= MIN_LIVE_SEGMENTS for r in self.renditions)

    def _maybe_write_master(self) -> None:
        if not self.master_written and self._ready():
            self._write_master()

    def _write_master(self) -> None:
        self.master_written = True
        variants = []
        for r in self.renditions:
            # MPEG-TS adds about 15 % plus 20 kbps to an audio stream; the
            # estimate is replaced by what segments measure if they say more.
            peak = max(int(r.kbps * 1200 + 12000), r.peak_bps)
            average = min(peak, max(int(r.kbps * 1150 + 14000), r.average_bps))
            self._declared[r.kbps] = (peak, average)
            variants.append(Variant(f"{r.dir.name}/{MEDIA}", peak, average))
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / MASTER, render_master(variants).encode())

    def write(self, block: AudioBlock) -> None:
        if self._start is None:
            self._start = block.wall
        # All of a block's frames in one AudioFrame: PyAV cuts it into the
        # encoder's 1024-sample frames itself, and a fifth of the calls
        # through its per-call resampling graph saved about 8 % of the
        # AAC encoders' CPU (measured at 64 and 256 kbps).
        planar = self._framer.block(block.pcm)
        if planar.shape[1]:
            self._encode(planar)
        if not self.master_written:
            self._maybe_write_master()
        elif any(
            r.peak_bps > self._declared[r.kbps][0] or r.average_bps > self._declared[r.kbps][1]
            for r in self.renditions
        ):
            self._write_master()

    def _encode(self, planar: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        frame.sample_rate = self.sr
        frame.pts = self._frames * AAC_FRAME
        frame.time_base = self._time_base
        self._frames += planar.shape[1] // AAC_FRAME
        for r in self.renditions:
            self._take(r, r.encoder.encode(frame))

    def _take(self, r: Rendition, packets: list[av.Packet]) -> None:
        # Per packet only a comparison and the shift: the boundary is
        # worked out once per segment (in _finish).
        append = r.packets.append
        for packet in packets:
            pts = packet.pts
            assert pts is not None
            # Segment k is complete once a packet of segment k+1 appears.
            while pts >= r.end_pts:
                self._finish(r)
                append = r.packets.append  # finish() starts a new list
            pts += AAC_FRAME  # the encoder's priming packet starts at -1024
            packet.pts = pts
            packet.dts = pts
            append(packet)

    def _finish(self, r: Rendition) -> None:
        r.finish(
            start=self._segment_start(r.k),
            target_s=self.target_s,
            discontinuity=self._resumed and r.k == 0,
        )
        r.k += 1
        r.end_pts = self._boundary(r.k + 1) * AAC_FRAME

    def close(self, *, final: bool = True) -> None:
        if not final or self._start is None:
            return
        last = self._framer.rest()
        if last.shape[1]:
            self._encode(last)
        for r in self.renditions:
            self._take(r, r.encoder.encode(None))
            self._finish(r)
            r.write_playlist(target_s=self.target_s, ended=True)
