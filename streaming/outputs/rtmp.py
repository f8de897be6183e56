"""RTMP pushes: one visualizer video + AAC encode, many independent targets.

The H.264 and AAC encoders live in one PyAV container (so their codec
parameters, SPS/PPS included, exist once); each target gets the packets
through its own FLV connection on its own thread. A target that drops
reconnects with exponential back-off and resumes at the next keyframe
(every 2 s); the others never notice.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

import av

from sonicforge.settings import Settings
from sonicforge.station import OutputState, OutputStatus, StationState
from streaming.outputs.base import AudioBlock, Framer, Output, OutputSpec
from streaming.outputs.rtmp_targets import RtmpTarget, redact, targets_from_settings, video_size
from streaming.outputs.visualizer import Visualizer
from streaming.outputs.viz import SpectrumAnalyzer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Media:
    """An encoded packet, detached from its container so it can be copied."""

    video: bool
    data: bytes
    pts: int
    dts: int
    keyframe: bool
    seconds: float


class TargetSender(threading.Thread):
    """Keeps one FLV connection fed; reconnects with back-off on failure."""

    def __init__(
        self,
        target: RtmpTarget,
        templates: tuple[av.stream.Stream, av.stream.Stream],
        time_bases: tuple[Fraction, Fraction],
        *,
        station: StationState | None = None,
        max_backoff_s: float = 60.0,
        queue_packets: int = 2000,
    ) -> None:
        super().__init__(name=f"rtmp-{target.name}", daemon=True)
        self.target, self._templates, self._tbs = target, templates, time_bases
        self._station = station
        self._queue: queue.Queue[Media | None] = queue.Queue(maxsize=queue_packets)
        self._max_backoff = max_backoff_s
        self.connects = 0
        self.sent = 0
        self.state: OutputState = "starting"
        self._halt = threading.Event()

    def offer(self, media: Media) -> None:
        try:
            self._queue.put_nowait(media)
        except queue.Full:  # a stuck connection: drop its backlog, it will resync
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _report(self, state: OutputState, detail: str = "") -> None:
        self.state = state
        if self._station is not None:
            try:
                self._station.set_output_status(
                    OutputStatus(
                        f"rtmp:{self.target.name}", state, detail, max(0, self.connects - 1)
                    )
                )
            except Exception:  # status is best effort
                log.debug("cannot report rtmp status", exc_info=True)

    def run(self) -> None:
        backoff = 1.0
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:
                message = redact(str(exc), [*self.target.secrets, self.target.url])
                if self._halt.is_set():
                    break
                if time.monotonic() - started > 60:
                    backoff = 1.0  # it was healthy for a while: retry soon
                log.warning(
                    "rtmp %s (%s) failed: %s; reconnecting in %.0f s",
                    self.target.name, self.target.safe_url, message, backoff,
                )  # fmt: skip
                self._report("restarting", message)
                self._halt.wait(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                self._drain()
        self._report("stopped")

    def _session(self) -> None:
        container = av.open(
            self.target.url,
            mode="w",
            format="flv",
            options={"flvflags": "no_duration_filesize"},
            timeout=(10.0, 10.0),
        )
        try:
            streams = [container.add_stream_from_template(t) for t in self._templates]
            container.start_encoding()  # connects and sends the FLV header now
            self.connects += 1
            log.info("rtmp %s connected to %s", self.target.name, self.target.safe_url)
            self._report("running")
            base: float | None = None
            while (media := self._queue.get()) is not None:
                if base is None:
                    if not (media.video and media.keyframe):
                        continue  # a viewer's decoder needs a keyframe first
                    base = media.seconds
                offset = round(base / self._tbs[0 if media.video else 1])
                if media.pts - offset < 0:
                    continue
                packet = av.Packet(media.data)
                packet.stream = streams[0 if media.video else 1]
                packet.time_base = self._tbs[0 if media.video else 1]
                packet.pts, packet.dts = media.pts - offset, media.dts - offset
                packet.is_keyframe = media.keyframe
                container.mux(packet)
                self.sent += 1
        finally:
            try:
                container.close()
            except Exception:
                log.debug("closing rtmp %s", self.target.name, exc_info=True)

    def stop(self) -> None:
        """Send what is queued, then close (no reconnect after this)."""
        self._halt.set()
        try:
            self._queue.put(None, timeout=5)
        except queue.Full:  # a stuck connection: give up its backlog
            self._drain()
            self._queue.put_nowait(None)
        self.join(timeout=15)


class RtmpOutput(Output):
    """Renders, encodes once, and fans packets out to every target."""

    name = "rtmp"

    def __init__(
        self,
        targets: list[RtmpTarget],
        *,
        sample_rate: int = 48000,
        size: tuple[int, int] = (1280, 720),
        fps: int = 25,
        video_kbps: int = 2500,
        audio_kbps: int = 160,
        preset: str = "veryfast",
        station: StationState | None = None,
    ) -> None:
        self.sr, self.fps = sample_rate, fps
        # Encoders inside a container that is never written: it gives their
        # streams codec parameters, the templates of every target's streams.
        self._holder = av.open(io.BytesIO(), mode="w", format="flv")
        video = self._holder.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.bit_rate = video_kbps * 1000
        gop = 2 * fps  # a keyframe every 2 s, as YouTube and Twitch ask
        video.codec_context.gop_size = gop
        video.codec_context.options = {
            "preset": preset,
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:nal-hrd=cbr",
            "maxrate": f"{video_kbps}k",
            "bufsize": f"{2 * video_kbps}k",
        }
        audio = self._holder.add_stream("aac", rate=sample_rate)
        audio.codec_context.layout = "stereo"
        audio.bit_rate = audio_kbps * 1000
        self._holder.start_encoding()
        self._video, self._audio = video, audio
        self._vtb, self._atb = Fraction(1, fps), Fraction(1, sample_rate)
        self._framer = Framer(1024)
        self._analyzer = SpectrumAnalyzer(sample_rate, fps=fps)
        self._visual = Visualizer(*size)
        self._vframes = self._asamples = 0
        self.senders = [
            TargetSender(t, (video, audio), (self._vtb, self._atb), station=station)
            for t in targets
        ]
        for sender in self.senders:
            sender.start()

    def _fan_out(self, packets: list[av.Packet], *, video: bool) -> None:
        for p in packets:
            if p.pts is None:
                continue
            tb = self._vtb if video else self._atb
            media = Media(
                video, bytes(p), p.pts, p.dts if p.dts is not None else p.pts, p.is_keyframe,
                float(p.pts * tb),
            )  # fmt: skip
            for sender in self.senders:
                sender.offer(media)

    def write(self, block: AudioBlock) -> None:
        for planar in self._framer.frames(block.pcm):
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = self.sr, self._asamples
            self._asamples += planar.shape[1]
            self._fan_out(self._audio.encode(frame), video=False)
        for spec in self._analyzer.analyse(block):
            rgb = self._visual.render(spec["b"], title=block.title, artist=block.artist)  # type: ignore[arg-type]
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            picture.pts, picture.time_base = self._vframes, self._vtb
            self._vframes += 1
            self._fan_out(self._video.encode(picture), video=True)

    def close(self, *, final: bool = True) -> None:
        if final:
            self._fan_out(self._video.encode(None), video=True)
            self._fan_out(self._audio.encode(None), video=False)
        for sender in self.senders:
            sender.stop()


def rtmp_output_specs(
    settings: Settings, *, station: StationState | None = None
) -> list[OutputSpec]:
    """One threaded output for all configured targets (none without targets)."""
    targets = targets_from_settings(settings)
    if not targets:
        return []
    size = video_size(settings.stream_video_size)
    return [
        OutputSpec(
            "rtmp",
            lambda: RtmpOutput(
                targets,
                sample_rate=settings.stream_sample_rate,
                size=size,
                fps=settings.stream_video_fps,
                video_kbps=settings.stream_video_bitrate_kbps,
                station=station,
            ),
            threaded=True,
        )
    ]
