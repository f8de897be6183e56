"""Streaming benchmark: CPU per second of air against FFmpeg and Liquidsoap,
peak memory, and listener capacity.

    .venv/bin/python bench/stream.py [--air 60] [--listeners 1000] [--listen-s 60]

1. CPU: the streamer runs on a virtual clock (as fast as it can) over
   synthetic masters; process CPU time (all threads) / seconds of air, for
   playout alone, + the HLS ladder, + the MP3 mount, + the visualizer
   feed, + one RTMP video push (to a local nginx-rtmp when installed). Each
   case runs in its own process, so its peak RSS is its own.
2. Baselines: the timeline the streamer mixed is written to a WAV file and
   encoded to the same outputs (AAC 64/128/256 kbps HLS + MP3 128 kbps)
   by FFmpeg's CLI (with the streamer's encoder settings, and with FFmpeg's
   defaults) and by Liquidsoap when installed; start-up is taken out by
   also timing a short run. The streamer's encode CPU (ladder + MP3 minus
   playout) is printed as a ratio to FFmpeg's (target <= 1.1x): the median
   of the first pair and ``--rounds`` more pairs measured side by side, as
   neighbours on a shared machine skew any single pair. Then each encoder
   alone, the streamer's (PyAV's bundled FFmpeg, in process) against the
   CLI's, on the same WAV with the same settings, so the ratio splits into
   the encoder builds and everything else (framing, muxing, files).
3. Listeners: a real-time streamer, the listener app under uvicorn (one
   worker) and, in its own process, a load generator (raw asyncio sockets
   on 127.0.0.1 only) with N MP3 listeners and N HLS listeners (each
   fetching its playlist and one segment per target duration) for a fixed
   time. Lateness: for MP3, how long after a player that started at its
   first byte needed a byte it arrived (byte k is due first + k / byte
   rate); for HLS, playlist + segment fetch time. Dropped: connections
   refused, closed early or answered other than 200. The CPU each process
   used is printed too (the machine has few cores: they share them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES: dict[str, tuple[str, ...]] = {
    "playout": (),
    "hls": ("hls",),
    "hls+mp3": ("hls", "mp3"),
    "hls+mp3+viz": ("hls", "mp3", "viz"),
    "hls+mp3+viz+rtmp": ("hls", "mp3", "viz", "rtmp"),
}
TIMELINE = "timeline"  # not a CPU case: writes the mixed PCM for the baselines
MAX_LISTENERS = 5000
MAX_LISTEN_S = 600.0
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def make_lake(root: Path, *, tracks: int = 6, seconds: float = 40.0) -> str:
    """Masters that exercise an encoder: chords, a beat and some noise."""
    import numpy as np
    import soundfile as sf

    from sonicforge.lakehouse import Lakehouse

    lh = Lakehouse(str(root / "lake"))
    lh.ensure_all()
    sr, rng, epoch = 44100, np.random.default_rng(1), datetime(2020, 1, 1, tzinfo=UTC)
    mastered, rotation = [], []
    for i in range(tracks):
        t = np.arange(int(seconds * sr)) / sr
        root_hz = 110 * 2 ** (i / 5)
        chord = sum(np.sin(2 * np.pi * root_hz * r * t) for r in (1, 1.26, 1.5, 2.0)) / 4
        beat = np.exp(-30 * (t % 0.5)) * np.sin(2 * np.pi * 60 * t)
        noise = rng.standard_normal(t.size) * 0.05 * (t % 0.25 < 0.05)
        mono = 0.3 * chord + 0.4 * beat + noise
        pcm = np.stack([mono, np.roll(mono, 200)], axis=1).astype(np.float32) * 0.6
        buf = io.BytesIO()
        sf.write(buf, pcm, sr, format="FLAC")
        uri, sha = lh.audio.put(f"masters/b{i}.flac", buf.getvalue())
        mastered.append({
            "track_id": f"b{i}", "batch_id": "bench", "master_uri": uri, "master_sha256": sha,
            "renditions": [], "duration_s": seconds, "sample_rate": sr, "lufs_before": -14.0,
            "lufs_after": -14.0, "true_peak_after": -1.0, "chain_version": "bench", "mastered_at": epoch,
        })  # fmt: skip
        rotation.append({
            "track_id": f"b{i}", "batch_id": "bench", "genre": "house", "weight": 1.0,
            "duration_s": seconds, "quality_score": 80.0, "eligible_from": epoch, "retired_at": None,
        })  # fmt: skip
    lh.upsert("mastered_tracks", mastered)
    lh.upsert("rotation", rotation)
    return lh.root_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(root: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not (os.path.exists(nginx) and os.path.exists(NGINX_MODULE)):
        return None
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(
        f"load_module {NGINX_MODULE}; daemon off; master_process off; pid {root}/n.pid;"
        f"error_log {root}/error.log; events {{ worker_connections 64; }}"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}"
    )
    proc = subprocess.Popen(
        [nginx, "-c", str(root / "nginx.conf"), "-p", str(root), "-e", str(root / "error.log")]
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.terminate()
    return None


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS now, VmHWM peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wav_tap(path: Path, sample_rate: int) -> Any:
    """An output that writes the timeline, as the encoders get it, to a WAV."""
    import soundfile as sf

    from streaming.outputs.base import AudioBlock, Output
    from streaming.streamer import OutputSpec

    class WavTap(Output):
        name = "wav"

        def __init__(self) -> None:
            self.file = sf.SoundFile(path, "w", sample_rate, 2, subtype="FLOAT")

        def write(self, block: AudioBlock) -> None:
            self.file.write(block.pcm)

        def close(self, *, final: bool = True) -> None:
            self.file.close()

    return OutputSpec("wav", WavTap)


def child_cpu(case: str, air_s: float, work: Path, lake: str) -> dict[str, object]:
    """One case in this (fresh) process; prints its figures as JSON."""
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import Settings
    from sonicforge.station import InMemoryStationState
    from streaming.clock import VirtualClock
    from streaming.service import build_streamer, output_specs

    outputs = CASES.get(case, ())
    nginx = start_nginx(work / "nginx") if "rtmp" in outputs else None
    extra: dict[str, object] = {}
    if nginx is not None:
        extra["stream_rtmp_targets"] = json.dumps(
            [{"name": "bench", "url": f"rtmp://127.0.0.1:{nginx[1]}/live/benchkey"}]
        )
    settings = Settings(var_dir=work / "var", stream_dir=work / "stream", **extra)  # type: ignore[arg-type]
    clock = VirtualClock()
    station = InMemoryStationState(clock=clock.now)
    specs = output_specs(settings, outputs=outputs, station=station)  # type: ignore[arg-type]
    if case == TIMELINE:
        specs = [wav_tap(work.parent / "timeline.wav", settings.stream_sample_rate)]
    streamer = build_streamer(
        settings,
        lakehouse=Lakehouse(lake),
        station=station,
        clock=clock,
        rng=random.Random(0),
        outputs=specs,
        backpressure=True,
    )
    rss_start = _status_mb("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    streamer.run(max_air_s=air_s)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    if nginx is not None:
        nginx[0].terminate()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "case": case,
        "cpu_per_air": cpu / air_s,
        "speed": air_s / wall,
        "peak_rss_mb": _status_mb("VmHWM"),
        "start_rss_mb": rss_start,
        "rtmp": "rtmp" in outputs and nginx is not None,
    }


# -- the load generator (runs in its own process: --loadgen) -----------------

LOOPBACK = "127.0.0.1"  # the only address the load generator ever connects to


@dataclass
class Tally:
    mp3_late: list[float] = field(default_factory=list)
    hls_late: list[float] = field(default_factory=list)
    mp3_bytes: int = 0
    hls_fetches: int = 0
    dropped: list[str] = field(default_factory=list)
    connected: int = 0


class Mp3Listener(asyncio.Protocol):
    """Reads /stream.mp3 (chunked) and times every arrival against a player
    clock that starts at the first byte: byte k should be there by
    first + k / byte_rate."""

    def __init__(self, tally: Tally, measure_from: float, done: asyncio.Future[None]) -> None:
        self.tally, self.measure_from, self.done = tally, measure_from, done
        self.head = bytearray()
        self.rate = 0.0
        self.first: float | None = None
        self.audio = 0
        self.chunk_left = 0
        self.pending = b""
        self.in_body = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(
            b"GET /stream.mp3 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end]).decode("latin-1").split("\r\n")
            if " 200 " not in head[0] + " ":
                self.fail(f"mp3 status {head[0]!r}")
                return
            fields = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
            self.rate = float(fields.get("icy-br") or 128) * 125
            self.in_body = True
            self.tally.connected += 1
            data = bytes(self.head[end + 4 :])
            self.head = bytearray()
        audio = self.decode_chunked(data)
        if not audio:
            return
        if self.first is None:
            self.first = now
        if now >= self.measure_from:
            due = self.first + self.audio / self.rate
            self.tally.mp3_late.append(now - due)
            self.tally.mp3_bytes += audio
        self.audio += audio

    def decode_chunked(self, data: bytes) -> int:
        """Audio bytes in ``data`` (transfer-encoding: chunked framing removed)."""
        buf = self.pending + data
        self.pending = b""
        pos, audio = 0, 0
        while pos < len(buf):
            if self.chunk_left > 0:
                take = min(self.chunk_left, len(buf) - pos)
                audio += take
                self.chunk_left -= take
                pos += take
                if self.chunk_left == 0:
                    self.chunk_left = -2  # the CRLF after the data
                continue
            if self.chunk_left < 0:
                take = min(-self.chunk_left, len(buf) - pos)
                self.chunk_left += take
                pos += take
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                self.pending = buf[pos:]
                break
            size = int(buf[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                self.fail("mp3 stream ended")
                break
            self.chunk_left = size
        return audio

    def fail(self, why: str) -> None:
        if not self.closing:
            self.tally.dropped.append(why)
            self.closing = True
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.tally.dropped.append(f"mp3 connection lost: {exc!r}")
            self.closing = True
        if not self.done.done():
            self.done.set_result(None)

    def stop(self) -> None:
        self.closing = True
        self.transport.close()


class HttpConn(asyncio.Protocol):
    """One keep-alive connection that sends a GET and reads a Content-Length body."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.want: int | None = None
        self.status = 0
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def get(self, path: str) -> asyncio.Future[tuple[int, bytes]]:
        self.buf.clear()
        self.want = None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n".encode()
        )
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.want is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            self.status = int(head[0].split()[1])
            length = 0
            for h in head[1:]:
                k, _, v = h.partition(":")
                if k.lower() == "content-length":
                    length = int(v)
            del self.buf[: end + 4]
            self.want = length
        if len(self.buf) >= self.want and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.status, bytes(self.buf[: self.want])))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc!r}"))
        if not self.lost.done():
            self.lost.set_result(None)


async def hls_listener(
    host: str,
    port: int,
    tally: Tally,
    *,
    start: float,
    measure_from: float,
    deadline: float,
    period: float,
    variant: str,
    sid: str,
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    try:
        _, conn = await loop.create_connection(HttpConn, host, port)
    except OSError as exc:
        tally.dropped.append(f"hls connect: {exc!r}")
        return
    tally.connected += 1
    fetched: set[str] = set()
    next_at = time.monotonic()
    try:
        while next_at < deadline:
            began = time.monotonic()
            status, body = await asyncio.wait_for(
                conn.get(f"/hls/{variant}/index.m3u8?sid={sid}"), 10
            )
            if status != 200:
                tally.dropped.append(f"hls playlist {status}")
                return
            uris = [ln for ln in body.decode().splitlines() if ln.endswith(".ts")]
            new = [u for u in uris if u not in fetched]
            if new:
                uri = new[-1]
                fetched.add(uri)
                status, seg = await asyncio.wait_for(
                    conn.get(f"/hls/{variant}/{uri}?sid={sid}"), 10
                )
                if status != 200 or not seg.startswith(b"\x47"):
                    tally.dropped.append(f"hls segment {status}")
                    return
            done = time.monotonic()
            if began >= measure_from:
                tally.hls_late.append(done - began)
                tally.hls_fetches += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    except (ConnectionError, TimeoutError) as exc:
        tally.dropped.append(f"hls: {exc!r}")
    finally:
        conn.transport.close()


async def mp3_listener(
    host: str, port: int, tally: Tally, *, start: float, measure_from: float, deadline: float
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    done: asyncio.Future[None] = loop.create_future()
    try:
        _, proto = await loop.create_connection(
            lambda: Mp3Listener(tally, measure_from, done), host, port
        )
    except OSError as exc:
        tally.dropped.append(f"mp3 connect: {exc!r}")
        return
    try:
        await asyncio.wait_for(asyncio.shield(done), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        proto.stop()


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_load(
    port: int, n_mp3: int, n_hls: int, seconds: float, *, ramp_s: float, period: float, variant: str
) -> dict[str, object]:
    """The load: listeners join over ``ramp_s``, then ``seconds`` are measured."""
    host = LOOPBACK
    tally = Tally()
    t0 = time.monotonic()
    measure_from = t0 + ramp_s + 2.0
    deadline = measure_from + seconds
    rng = random.Random(7)
    tasks = [
        mp3_listener(
            host,
            port,
            tally,
            start=t0 + rng.random() * ramp_s,
            measure_from=measure_from,
            deadline=deadline,
        )
        for _ in range(n_mp3)
    ] + [
        hls_listener(
            host,
            port,
            tally,
            start=t0 + rng.random() * ramp_s,
            measure_from=measure_from,
            deadline=deadline,
            period=period,
            variant=variant,
            sid=f"bench{i:05d}",
        )
        for i in range(n_hls)
    ]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    await asyncio.gather(*tasks)
    wall = time.monotonic() - w0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    return {
        "mp3_p50_ms": 1000 * quantile(tally.mp3_late, 0.5),
        "mp3_p99_ms": 1000 * quantile(tally.mp3_late, 0.99),
        "mp3_max_ms": 1000 * max(tally.mp3_late, default=float("nan")),
        "mp3_arrivals": len(tally.mp3_late),
        "mp3_kbps_each": tally.mp3_bytes * 8 / 1000 / seconds / max(1, n_mp3),
        "hls_p50_ms": 1000 * quantile(tally.hls_late, 0.5),
        "hls_p99_ms": 1000 * quantile(tally.hls_late, 0.99),
        "hls_max_ms": 1000 * max(tally.hls_late, default=float("nan")),
        "hls_fetches": tally.hls_fetches,
        "connected": tally.connected,
        "dropped": len(tally.dropped),
        "drop_reasons": sorted(set(tally.dropped))[:5],
        "loadgen_cores": cpu / wall,
    }


def loadgen_main(port: int, n: int, seconds: float, segment_s: float) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * n + 256)), hard))
    result = asyncio.run(
        run_load(port, n, n, seconds, ramp_s=5.0, period=segment_s, variant="aac_128k")
    )
    print(json.dumps(result))


# -- baselines: the same outputs by FFmpeg's CLI and by Liquidsoap -------------


def child_cpu_s(cmd: list[str], *, cwd: Path) -> float:
    """CPU seconds (user + system) a command and its children used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ffmpeg_cmd(wav: Path, out: Path, *, same_settings: bool) -> list[str]:
    from sonicforge.settings import Settings

    s = Settings()
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav)]
    for kbps in s.stream_hls_bitrates_kbps:
        folder = out / f"aac_{kbps}k"
        folder.mkdir(parents=True, exist_ok=True)
        coder = ["-aac_coder", s.stream_aac_coder] if same_settings else []
        cmd += ["-map", "0:a", "-c:a", "aac", *coder, "-b:a", f"{kbps}k", "-f", "hls"]
        cmd += [
            "-hls_time",
            str(s.stream_hls_segment_s),
            "-hls_list_size",
            str(s.stream_hls_window),
        ]
        cmd += ["-hls_flags", "delete_segments", str(folder / "index.m3u8")]
    lame = ["-compression_level", "5", "-reservoir", "0"] if same_settings else []
    cmd += ["-map", "0:a", "-c:a", "libmp3lame", "-b:a", f"{s.stream_mp3_bitrate_kbps}k", *lame]
    return [*cmd, "-f", "mp3", str(out / "out.mp3")]


def liquidsoap_script(wav: Path, out: Path) -> str:
    from sonicforge.settings import Settings

    s = Settings()
    streams = ", ".join(
        f'("aac_{k}k", %ffmpeg(format="mpegts", %audio(codec="aac", b="{k}k", '
        f'aac_coder="{s.stream_aac_coder}")))'
        for k in s.stream_hls_bitrates_kbps
    )
    mp3 = (
        f'%ffmpeg(format="mp3", %audio(codec="libmp3lame", b="{s.stream_mp3_bitrate_kbps}k", '
        "compression_level=5, reservoir=0))"
    )
    return f"""
settings.log.stdout.set(false)
settings.log.file.set(false)
settings.init.allow_root.set(true)
settings.frame.audio.samplerate.set({s.stream_sample_rate})
s = once(single("{wav}"))
clock.assign_new(sync="none", [s])
output.file.hls(playlist="index.m3u8", segment_duration={s.stream_hls_segment_s},
  segments={s.stream_hls_window}, fallible=true, on_stop=shutdown, "{out}", [{streams}], s)
output.file(fallible=true, {mp3}, "{out}/out.mp3", s)
"""


def per_air(run: Any, wav: Path, short: Path, air_s: float, short_s: float) -> float:
    """CPU per second of air with start-up taken out: (long - short) / (air difference)."""
    return (run(wav) - run(short)) / (air_s - short_s)


def baselines(work: Path, air_s: float) -> dict[str, float | None]:
    import soundfile as sf

    wav = work / "timeline.wav"
    pcm, sr = sf.read(wav, dtype="float32")
    air = len(pcm) / sr
    short_s = min(5.0, air / 4)
    short = work / "short.wav"
    sf.write(short, pcm[: int(short_s * sr)], sr, subtype="FLOAT")
    out: dict[str, float | None] = {}
    if shutil.which("ffmpeg") is None:
        print("note: no ffmpeg on PATH (apt-get install ffmpeg): no FFmpeg baseline")
        out["ffmpeg"] = out["ffmpeg_defaults"] = None
    else:
        for key, same in (("ffmpeg", True), ("ffmpeg_defaults", False)):

            def run(src: Path, same: bool = same) -> float:
                folder = Path(tempfile.mkdtemp(dir=work))
                return child_cpu_s(ffmpeg_cmd(src, folder, same_settings=same), cwd=folder)

            out[key] = per_air(run, wav, short, air, short_s)
    if shutil.which("liquidsoap") is None:
        print("note: no liquidsoap on PATH (apt-get install liquidsoap): no Liquidsoap baseline")
        out["liquidsoap"] = None
    else:

        def run_liq(src: Path) -> float:
            folder = Path(tempfile.mkdtemp(dir=work))
            script = folder / "bench.liq"
            script.write_text(liquidsoap_script(src, folder))
            return child_cpu_s(["liquidsoap", str(script)], cwd=folder)

        try:
            out["liquidsoap"] = per_air(run_liq, wav, short, air, short_s)
        except subprocess.CalledProcessError as exc:
            print(f"note: liquidsoap failed ({exc.stderr.decode()[-300:]!r}): not measured")
            out["liquidsoap"] = None
    return out


# -- the encoders alone: where the ratio comes from ------------------------------


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def pyav_aac_cpu(pcm: Any, sr: int, kbps: int, coder: str) -> tuple[float, float]:
    """CPU seconds and kbps of the streamer's own AAC encoder (PyAV's bundled
    FFmpeg, built by ``hls.aac_encoder``, so the very same settings) on ``pcm``,
    fed as ``HlsOutput`` feeds it: a 0.1 s block's whole frames per call."""
    from fractions import Fraction

    import av
    import numpy as np

    from streaming.outputs.hls import AAC_FRAME, aac_encoder

    enc = aac_encoder(sample_rate=sr, bitrate_kbps=kbps, coder=coder)
    planar = np.ascontiguousarray(pcm.T)
    step = AAC_FRAME * max(1, round(0.1 * sr / AAC_FRAME))
    size = 0
    cpu = time.process_time()
    for i in range(0, planar.shape[1] - planar.shape[1] % AAC_FRAME, step):
        frame = av.AudioFrame.from_ndarray(planar[:, i : i + step], format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
        size += sum(p.size for p in enc.encode(frame))
    size += sum(p.size for p in enc.encode(None))
    return time.process_time() - cpu, size * 8 / (len(pcm) / sr) / 1000


def encoder_table(work: Path, rounds: int = 3) -> dict[str, float]:
    """Each encoder alone, the streamer's (in process) against FFmpeg 5.1's
    CLI (one process, one thread: 5.1 runs its encoders on the main thread),
    on the same WAV with the same settings; start-up taken out as above."""
    import av
    import soundfile as sf

    from sonicforge.settings import Settings
    from streaming.outputs.lame import LameEncoder, load_lame

    s = Settings()
    wav, short = work / "timeline.wav", work / "short.wav"
    pcm, sr = sf.read(wav, dtype="float32")
    head, _ = sf.read(short, dtype="float32")
    air, short_s = len(pcm) / sr, len(head) / sr
    cli_version = (
        subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
        .stdout.split()[2]
        .split("-")[0]
    )
    out_dir = Path(tempfile.mkdtemp(dir=work))

    def cli(args: list[str], out: str) -> tuple[float, int]:
        def run(src: Path) -> float:
            cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0:a"]
            return child_cpu_s([*cmd, *args, str(out_dir / f"{src.stem}-{out}")], cwd=out_dir)

        cpu = _median([per_air(run, wav, short, air, short_s) for _ in range(rounds)])
        return cpu, (out_dir / f"{wav.stem}-{out}").stat().st_size

    rows: list[tuple[str, float, float, float, float]] = []
    for kbps in s.stream_hls_bitrates_kbps:
        ours = [pyav_aac_cpu(pcm, sr, kbps, s.stream_aac_coder) for _ in range(rounds)]
        ours_cpu = _median([(a - b) / (air - short_s) for (a, _), (b, _) in zip(
            ours, [pyav_aac_cpu(head, sr, kbps, s.stream_aac_coder) for _ in range(rounds)],
            strict=True)])  # fmt: skip
        args = ["-c:a", "aac", "-aac_coder", s.stream_aac_coder, "-b:a", f"{kbps}k", "-f", "adts"]
        theirs, size = cli(args, f"{kbps}.aac")
        frames = len(pcm) / 1024  # ADTS spends 7 bytes a frame, TS packs the raw frames
        rows.append(
            (f"AAC {kbps}k", ours_cpu, ours[0][1], theirs, (size - 7 * frames) * 8 / air / 1000)
        )
    lib = load_lame()
    if lib is not None:
        kbps = s.stream_mp3_bitrate_kbps

        def lame(x: Any) -> float:
            enc = LameEncoder(lib, sample_rate=sr, bitrate_kbps=kbps)
            cpu = time.process_time()
            for i in range(0, len(x), sr // 10):
                enc.encode(x[i : i + sr // 10])
            enc.flush()
            enc.close()
            return time.process_time() - cpu

        ours_cpu = _median([(lame(pcm) - lame(head)) / (air - short_s) for _ in range(rounds)])
        mp3 = ["-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-compression_level", "5"]
        theirs, size = cli([*mp3, "-reservoir", "0", "-f", "mp3"], "out.mp3")
        rows.append((f"MP3 {kbps}k (LAME)", ours_cpu, kbps, theirs, size * 8 / air / 1000))
    print(
        f"\nThe encoders alone on the same WAV, same settings: AAC-LC, aac_coder="
        f"{s.stream_aac_coder}, cutoff left to the encoder (both derive it from the bitrate "
        "by the same formula: 9.5/16/20 kHz; an explicit -cutoff of those gives identical bits in each), CBR target; LAME -q 5 CBR, no reservoir"
    )
    print(
        f"{'':<20}{'streamer %':>11}{'kbps':>7}{'FFmpeg ' + cli_version + ' %':>20}"
        f"{'kbps':>7}{'ratio':>8}     (streamer: PyAV {av.__version__}, FFmpeg "
        f"{getattr(av, 'ffmpeg_version_info', '?')})"
    )
    for name, a, ak, b, bk in rows:
        print(f"{name:<20}{100 * a:>11.2f}{ak:>7.0f}{100 * b:>20.2f}{bk:>7.0f}{a / b:>7.2f}x")
    ours_sum, theirs_sum = sum(r[1] for r in rows), sum(r[3] for r in rows)
    print(f"{'all encoders':<20}{100 * ours_sum:>11.2f}{'':>7}{100 * theirs_sum:>20.2f}"
          f"{'':>7}{ours_sum / theirs_sum:>7.2f}x")  # fmt: skip
    return {"ours": ours_sum, "theirs": theirs_sum}


# -- listener capacity ------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_on_air(port: int, deadline_s: float = 120.0) -> None:
    """The master playlist published (every variant has three segments) and the MP3 mount live."""
    import httpx

    deadline = time.monotonic() + deadline_s
    with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                master = client.get("/hls/master.m3u8").status_code
                with client.stream("GET", "/stream.mp3") as r:
                    if master == 200 and r.status_code == 200:
                        return
            time.sleep(0.5)
    raise RuntimeError("the streamer did not come on air within two minutes")


# The API worker the listeners reach: ``serving`` is the whole API as ``make
# run`` and ``sonicforge serve`` run it (middlewares, rate limiter, access
# log); ``stream`` is the listener routes alone (``sonicforge stream --serve``).
LISTENER_APPS = {
    "serving": ["-m", "cli.main", "serve", "--workers", "1", "--host", LOOPBACK, "--port"],
    "stream": ["-m", "uvicorn", "--factory", "streaming.http:create_stream_app",
               "--log-level", "warning", "--host", LOOPBACK, "--port"],
}  # fmt: skip


def capacity(
    work: Path, n: int, seconds: float, segment_s: float, *, app: str = "serving"
) -> dict[str, Any]:
    lake = make_lake(work)
    env = {
        **os.environ,
        "SONICFORGE_VAR_DIR": str(work / "var"),
        "SONICFORGE_LAKEHOUSE_URI": lake,
        "SONICFORGE_STREAM_DIR": str(work / "stream"),
        "SONICFORGE_STREAM_HLS_SEGMENT_S": f"{segment_s:g}",
        "SONICFORGE_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    root = str(Path(__file__).resolve().parents[1])
    streamer = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "stream"], cwd=root, env=env, stderr=subprocess.DEVNULL
    )
    argv = [sys.executable, *LISTENER_APPS[app], str(port)]
    if app == "stream":
        argv += ["--backlog", str(max(2048, 2 * n + 64))]
    # The API's JSON access log goes to a file, as a log collector would take it.
    api_log = (work / "api.log").open("wb")
    api = subprocess.Popen(argv, cwd=root, env=env, stdout=api_log, stderr=subprocess.STDOUT)
    try:
        wait_until_on_air(port)
        cpu0 = {p.pid: proc_cpu_s(p.pid) for p in (api, streamer)}
        wall = time.monotonic()
        out = subprocess.run(
            [sys.executable, __file__, "--loadgen", str(port), "--listeners", str(n),
             "--listen-s", str(seconds), "--segment-s", str(segment_s)],
            capture_output=True, text=True, check=True, timeout=seconds + 120,
        )  # fmt: skip
        wall = time.monotonic() - wall
        cpu1 = {p.pid: proc_cpu_s(p.pid) for p in (api, streamer)}
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        # Over the load generator's whole run (ramp included), as its own figure is.
        result["api_cores"] = (cpu1[api.pid] - cpu0[api.pid]) / wall
        result["streamer_cores"] = (cpu1[streamer.pid] - cpu0[streamer.pid]) / wall
        result["api_alive"] = api.poll() is None
        return result
    finally:
        for proc in (api, streamer):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        api_log.close()


# -- the report ----------------------------------------------------------------


def run_case(case: str, air: float, lake: str, work: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--air", str(air), "--lake", lake,
         "--work", work],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def encode_rounds(air: float, lake: str, work: Path, rounds: int) -> list[tuple[float, float]]:
    """(streamer encode, FFmpeg) CPU per second of air, measured side by side
    ``rounds`` times: on a shared machine one pair can be skewed by a neighbour."""
    wav, short = work / "timeline.wav", work / "short.wav"
    out = []
    for _ in range(rounds):
        playout = run_case("playout", air, lake, str(work))["cpu_per_air"]
        ladder = run_case("hls+mp3", air, lake, str(work))["cpu_per_air"]

        def run(src: Path) -> float:
            folder = Path(tempfile.mkdtemp(dir=work))
            return child_cpu_s(ffmpeg_cmd(src, folder, same_settings=True), cwd=folder)

        import soundfile as sf

        short_s = sf.info(short).duration
        ffmpeg = per_air(run, wav, short, sf.info(wav).duration, short_s)
        out.append((ladder - playout, ffmpeg))
    return out


def cpu_table(air: float, rounds: int) -> dict[str, dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # One set of masters for every case; each case runs in a fresh
        # process so that its peak RSS is its own.
        lake = make_lake(Path(tmp))
        for case in [*CASES, TIMELINE]:
            row = run_case(case, air, lake, tmp)
            if case != TIMELINE:
                rows.append(row)
        base_line = baselines(Path(tmp), air)
        pairs = encode_rounds(air, lake, Path(tmp), rounds) if base_line.get("ffmpeg") else []
        encoders, table = None, io.StringIO()
        if base_line.get("ffmpeg"):
            with contextlib.redirect_stdout(table):  # printed below the ratio it explains
                encoders = encoder_table(Path(tmp))
    base = rows[0]["cpu_per_air"]
    print(f"\nCPU per second of air ({air:g} s of air per case, 48 kHz stereo)")
    print(
        f"{'case':<22}{'core %':>8}{'outputs %':>11}{'x realtime':>12}"
        f"{'RSS at start MB':>17}{'peak RSS MB':>13}"
    )
    for r in rows:
        note = "" if r["case"] != "hls+mp3+viz+rtmp" or r["rtmp"] else "  (no nginx: not pushed)"
        print(
            f"{r['case']:<22}{100 * r['cpu_per_air']:>8.1f}{100 * (r['cpu_per_air'] - base):>11.1f}"
            f"{r['speed']:>12.1f}{r['start_rss_mb']:>17.0f}{r['peak_rss_mb']:>13.0f}{note}"
        )
    by_case = {r["case"]: r for r in rows}
    audio = by_case["hls+mp3+viz"]["cpu_per_air"]
    print(f"playout + audio outputs: {100 * audio:.1f} % of a core (target < 10 %)")
    with_video = by_case["hls+mp3+viz+rtmp"]
    if with_video["rtmp"]:
        video = with_video["cpu_per_air"] - audio
        print(f"RTMP video push alone:   {100 * video:.1f} % of a core (target < 50 %)")
    else:  # without a target the RTMP output is never built: nothing was measured
        print("RTMP video push alone:   not measured (no nginx-rtmp to push to)")

    encode = by_case["hls+mp3"]["cpu_per_air"] - base
    print(
        "\nEncoding the ladder (AAC 64/128/256 kbps HLS + MP3 128 kbps), % of a core per s of air"
    )
    print(f"{'encoder':<44}{'core %':>8}{'streamer / it':>15}")
    print(f"{'streamer (hls+mp3 minus playout)':<44}{100 * encode:>8.1f}{'1.00x':>15}")
    labels = {
        "ffmpeg": "FFmpeg CLI, the streamer's settings",
        "ffmpeg_defaults": "FFmpeg CLI, its defaults (twoloop, LAME q3)",
        "liquidsoap": "Liquidsoap, the streamer's settings",
    }
    for key, label in labels.items():
        value = base_line.get(key)
        if value is None:
            print(f"{label:<44}{'not measured':>8}")
        else:
            print(f"{label:<44}{100 * value:>8.1f}{encode / value:>14.2f}x")
    if pairs:
        ratios = sorted([encode / base_line["ffmpeg"]] + [a / b for a, b in pairs])  # type: ignore[operator]
        listed = ", ".join(f"{100 * a:.1f} % / {100 * b:.1f} %" for a, b in pairs)
        print(f"side by side, {len(pairs)} more rounds (streamer / FFmpeg): {listed}")
        ratio = ratios[len(ratios) // 2]
        verdict = "ok" if ratio <= 1.1 else "over target"
        print(
            f"streamer encode CPU / FFmpeg's: {ratio:.2f}x, the median of {len(ratios)} rounds "
            f"(each {', '.join(f'{r:.2f}' for r in ratios)}; target <= 1.1x: {verdict})"
        )
        print(table.getvalue(), end="")
        if encoders:
            # What is left once each side's encoders are taken out: framing,
            # muxing, segment and chunk files (the streamer's, FFmpeg's).
            ffmpeg_all = _median([base_line["ffmpeg"], *(b for _, b in pairs)])  # type: ignore[list-item]
            ours_all = _median([encode, *(a for a, _ in pairs)])
            ours_rest = ours_all - encoders["ours"]
            theirs_rest = ffmpeg_all - encoders["theirs"]
            print(
                f"decomposed (medians): streamer {100 * ours_all:.2f} % = encoders "
                f"{100 * encoders['ours']:.2f} + the rest {100 * ours_rest:.2f}; FFmpeg "
                f"{100 * ffmpeg_all:.2f} % = encoders {100 * encoders['theirs']:.2f} + the rest "
                f"{100 * theirs_rest:.2f}"
            )
            print(
                "with the same encoder build on both sides (FFmpeg CLI's encoder figures "
                f"in the streamer's place): {(encoders['theirs'] + ours_rest) / ffmpeg_all:.2f}x"
            )
    return by_case


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--air", type=float, default=60.0, help="seconds of air per CPU case")
    parser.add_argument(
        "--listeners", type=int, default=1000, help="MP3 listeners, and as many HLS"
    )
    parser.add_argument("--listen-s", type=float, default=60.0, help="seconds measured under load")
    parser.add_argument(
        "--segment-s", type=float, default=2.0, help="HLS segment (target) duration"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="extra side-by-side streamer/FFmpeg encode rounds"
    )
    parser.add_argument(
        "--listener-app",
        choices=sorted(LISTENER_APPS),
        default="serving",
        help="the worker listeners reach: the whole API (default) or the listener routes alone",
    )
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-listeners", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lake", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--loadgen", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.listeners <= MAX_LISTENERS:
        parser.error(f"--listeners {args.listeners} is out of range [1, {MAX_LISTENERS}]")
    if not 1 <= args.listen_s <= MAX_LISTEN_S:
        parser.error(f"--listen-s {args.listen_s:g} is out of range [1, {MAX_LISTEN_S:g}]")
    if args.loadgen is not None:
        loadgen_main(args.loadgen, args.listeners, args.listen_s, args.segment_s)
        return
    if args.child:
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            print(json.dumps(child_cpu(args.child, args.air, Path(tmp), args.lake)))
        return
    if not args.skip_cpu:
        cpu_table(args.air, max(0, min(args.rounds, 10)))
    if args.skip_listeners:
        return
    n = args.listeners
    with tempfile.TemporaryDirectory() as tmp:
        r = capacity(Path(tmp), n, args.listen_s, args.segment_s, app=args.listener_app)
    print(
        f"\nListeners on loopback: {n} MP3 + {n} HLS, one uvicorn worker of the "
        f"{args.listener_app!r} app, {args.listen_s:g} s "
        f"measured after a 5 s ramp, HLS segments {args.segment_s:g} s"
    )
    print(f"{'':<6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'samples':>9}")
    print(
        f"{'MP3':<6}{r['mp3_p50_ms']:>9.1f}{r['mp3_p99_ms']:>9.1f}{r['mp3_max_ms']:>9.1f}"
        f"{r['mp3_arrivals']:>9}   lateness vs a player started at its first byte"
    )
    print(
        f"{'HLS':<6}{r['hls_p50_ms']:>9.1f}{r['hls_p99_ms']:>9.1f}{r['hls_max_ms']:>9.1f}"
        f"{r['hls_fetches']:>9}   playlist + segment fetch"
    )
    print(
        f"MP3 received {r['mp3_kbps_each']:.1f} kbps per listener; connections made "
        f"{r['connected']} of {2 * n}; dropped {r['dropped']} {r['drop_reasons'] or ''}"
    )
    print(
        f"CPU (cores of {os.cpu_count()}): API worker {r['api_cores']:.2f}, streamer "
        f"{r['streamer_cores']:.2f}, load generator {r['loadgen_cores']:.2f}"
    )
    worst = max(r["mp3_p99_ms"], r["hls_p99_ms"])
    ok = worst < 250 and r["dropped"] == 0 and r["connected"] == 2 * n
    print(
        f"capacity target ({n} + {n}, p99 lateness < 250 ms, no drops): "
        f"{'met' if ok else 'NOT met'} (worst p99 {worst:.1f} ms)"
    )


if __name__ == "__main__":
    main()
