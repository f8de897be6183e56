"""Running the streamer: as its own process (``sonicforge stream``) or
embedded in the API process (``SONICFORGE_STREAM_EMBEDDED=true``, for the
no-Redis default, where the in-process station state is shared only inside
one process). A lock on the stream folder keeps a second streamer off it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from pathlib import Path
from typing import IO

from sonicforge.settings import Settings
from sonicforge.station import StationState, station_state_from_url
from streaming.errors import StreamingError
from streaming.outputs.chunks import resolve_stream_dir
from streaming.service import build_streamer

log = logging.getLogger(__name__)


class StreamLock:
    """An exclusive ``flock`` on ``<stream_dir>/.streamer.lock``."""

    def __init__(self, stream_dir: Path) -> None:
        self.path = stream_dir / ".streamer.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StreamingError(
                f"another streamer already writes {self.path.parent}; "
                "run one streamer per stream folder (SONICFORGE_STREAM_DIR)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class EmbeddedStreamer:
    """The streamer on a thread of the current process."""

    def __init__(self, settings: Settings, station: StationState) -> None:
        self._settings, self._station = settings, station
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = StreamLock(resolve_stream_dir(settings))

    def start(self) -> bool:
        try:
            self._lock.acquire()
        except StreamingError as exc:
            log.warning("not embedding the streamer: %s", exc)
            return False
        streamer = build_streamer(self._settings, station=self._station)
        self._thread = threading.Thread(
            target=streamer.run, kwargs={"stop": self._stop}, name="streamer", daemon=True
        )
        self._thread.start()
        log.info("streamer embedded in this process")
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._lock.release()


def streamer_station(settings: Settings) -> StationState:
    """The station state for a streamer process: through Redis, commands give
    up after about a second, so a failover never stalls the air for long
    (the loop logs and goes on; the calls are retried on its next turn)."""
    if settings.redis_url:
        from sonicforge.station_redis import RedisStationState

        return RedisStationState.from_url(settings.redis_url, retries=4, backoff_cap_s=0.25)
    return station_state_from_url(settings.redis_url)


def run_stream_process(
    settings: Settings,
    *,
    serve: tuple[str, int] | None = None,
    max_air_s: float | None = None,
) -> None:
    """``sonicforge stream``: play until SIGTERM/SIGINT; optionally serve the
    listener endpoints (MP3, HLS, visualizer) from this process too."""
    from sonicforge import telemetry

    telemetry.setup_tracing(settings, component="streamer")  # no-op unless enabled
    station = streamer_station(settings)
    if not settings.redis_url:
        log.warning(
            "no SONICFORGE_REDIS_URL: queue, control and now-playing stay inside this "
            "process; the API sees them only with SONICFORGE_STREAM_EMBEDDED=true instead"
        )
    lock = StreamLock(resolve_stream_dir(settings))
    if not settings.stream_standby:  # a standby locks the folder once it holds the lease
        lock.acquire()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = None
    if serve is not None:
        import uvicorn

        from streaming.http import create_stream_app

        app = create_stream_app(settings=settings, station=station)
        server = uvicorn.Server(
            uvicorn.Config(app, host=serve[0], port=serve[1], log_level="warning")
        )
        # On a thread uvicorn leaves signals alone: ours stop the streamer.
        threading.Thread(target=server.run, name="listen", daemon=True).start()
        log.info("listeners: http://%s:%d/stream.mp3 and /hls/master.m3u8", *serve)
    try:
        if settings.stream_standby:
            from streaming.lease import run_standby

            run_standby(settings, station, stop=stop, max_air_s=max_air_s)
        else:
            build_streamer(settings, station=station).run(stop=stop, max_air_s=max_air_s)
    finally:
        if server is not None:
            server.should_exit = True
        lock.release()
