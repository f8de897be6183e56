"""Listener endpoints for the API to mount: ``/stream.mp3`` (with ICY
metadata), ``/hls/…`` (the ladder's files) and the visualizer feed at
``/viz/ws`` (WebSocket) and ``/viz/events`` (SSE).

    from streaming.http import create_stream_router
    app.include_router(create_stream_router(settings=settings, station=station))

They read what the streamer process writes under ``stream_dir`` (any number
of API workers or replicas can serve one streamer); each tail starts with
its first listener. With ``SONICFORGE_STREAM_EMBEDDED=true`` the router's
lifespan also runs the streamer itself on a thread of the API process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response, StreamingResponse

from sonicforge.settings import Settings, get_settings
from sonicforge.station import StationState, station_state_from_url
from streaming.hub import ChunkTail, HlsListeners, IcyInterleaver
from streaming.outputs.chunks import resolve_stream_dir

ICY_METAINT = 16000
# A streamer that wrote nothing for this long is off air: say so (503)
# instead of holding a player's connection open in silence.
STALE_S = 15.0
MEDIA_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
REPLICA = f"{socket.gethostname()}:{os.getpid()}"


class StreamEndpoints:
    """The state behind the router: tails, counters, listener reports."""

    def __init__(self, stream_dir: Path, station: StationState | None, *, report_s: float) -> None:
        self.dir = stream_dir
        self.station = station
        self.report_s = report_s
        self.mp3 = ChunkTail(stream_dir / "mp3", backlog=2)
        self.viz = ChunkTail(stream_dir / "viz", backlog=1)
        self.hls = HlsListeners()
        self._reporter: asyncio.Task[None] | None = None

    def ensure_reporter(self) -> None:
        loop = asyncio.get_running_loop()
        if self.station is not None and (self._reporter is None or self._reporter.done()):
            self._reporter = loop.create_task(self._report())

    async def _report(self) -> None:
        assert self.station is not None
        while True:
            counts = {"mp3": self.mp3.listeners, "hls": self.hls.count(), "viz": self.viz.listeners}
            try:
                for output, n in counts.items():
                    await asyncio.to_thread(
                        self.station.set_listeners,
                        output,
                        n,
                        replica=REPLICA,
                        ttl_s=3 * self.report_s,
                    )
            except Exception:  # counts are best effort
                pass
            await asyncio.sleep(self.report_s)

    def require_live(self, tail: ChunkTail) -> dict[str, Any]:
        latest = tail.latest()
        if latest is None or time.time() - float(latest.get("written_at", 0)) > STALE_S:
            raise HTTPException(503, detail="the station is off air; try again shortly")
        return latest


def create_stream_router(
    *,
    settings: Settings | None = None,
    station: StationState | None = None,
    stream_dir: Path | None = None,
    report_s: float = 5.0,
) -> APIRouter:
    """Routes for listeners; ``station`` receives the listener counts every
    ``report_s`` seconds."""
    settings = settings or get_settings()
    if stream_dir is None:
        stream_dir = resolve_stream_dir(settings)
    if station is None:
        station = station_state_from_url(settings.redis_url)
    ep = StreamEndpoints(stream_dir, station, report_s=report_s)
    lifespan = None
    if settings.stream_embedded:
        # Here, not at the top: every API worker imports this module, and
        # only one that embeds the streamer needs the encoders (PyAV).
        from streaming.run import EmbeddedStreamer

        embedded = EmbeddedStreamer(settings, station)

        @contextlib.asynccontextmanager
        async def lifespan(_app: Any) -> AsyncIterator[None]:
            # FastAPI merges a router's lifespan into the app's on include.
            await asyncio.to_thread(embedded.start)
            try:
                yield
            finally:
                await asyncio.to_thread(embedded.stop)

    router = APIRouter(tags=["listen"], lifespan=lifespan)

    @router.get("/stream.mp3", summary="The endless MP3 stream (ICY metadata on request)")
    async def read_mp3_stream(request: Request) -> StreamingResponse:
        ep.ensure_reporter()
        latest = ep.require_live(ep.mp3)
        icy = request.headers.get("icy-metadata", "").strip() == "1"
        headers = {
            "Cache-Control": "no-cache, no-store",
            "icy-name": "SonicForge",
            "icy-br": str(latest.get("bitrate_kbps", "")),
            "icy-sr": str(latest.get("sample_rate", "")),
            "icy-pub": "0",
        }
        if icy:
            headers["icy-metaint"] = str(ICY_METAINT)

        async def body() -> AsyncIterator[bytes]:
            interleave = IcyInterleaver(ICY_METAINT) if icy else None
            async with ep.mp3.subscribe() as chunks:
                while (chunk := await chunks.get()) is not None:
                    title = str(chunk.meta.get("title", ""))
                    yield interleave.feed(chunk.data, title) if interleave else chunk.data

        return StreamingResponse(body(), media_type="audio/mpeg", headers=headers)

    @router.get("/hls/{path:path}", summary="HLS playlists and segments")
    async def read_hls_file(path: str, request: Request) -> Response:
        root = (ep.dir / "hls").resolve()
        full = (root / path).resolve()
        suffix = full.suffix
        if not full.is_relative_to(root) or suffix not in MEDIA_TYPES or not full.is_file():
            raise HTTPException(404, detail=f"no HLS file {path!r}")
        if suffix == ".ts":
            ep.ensure_reporter()
            client = request.client.host if request.client else "?"
            ep.hls.touch(f"{client}|{request.headers.get('user-agent', '')}")
            # Segment names never repeat: cache them hard; playlists change.
            cache = "public, max-age=3600, immutable"
            return FileResponse(
                full, media_type=MEDIA_TYPES[suffix], headers={"Cache-Control": cache}
            )
        # A playlist is replaced every segment: read it whole, at once, so its
        # length and its bytes come from the same version of the file.
        return Response(
            full.read_bytes(), media_type=MEDIA_TYPES[suffix], headers={"Cache-Control": "no-cache"}
        )

    # HEAD too (players and CDNs probe), kept out of the schema: one operation.
    router.add_api_route(
        "/hls/{path:path}", read_hls_file, methods=["HEAD"], include_in_schema=False
    )

    async def frames() -> AsyncGenerator[dict[str, Any], None]:
        async with ep.viz.subscribe() as chunks:
            while (chunk := await chunks.get()) is not None:
                title = chunk.meta.get("title", "")
                for frame in json.loads(chunk.data)["frames"]:
                    # Released when it airs; a frame far off (a test clock,
                    # a skewed host) goes out at once rather than wait.
                    delay = float(frame["at"]) - time.time()
                    if 0 < delay < 3:
                        await asyncio.sleep(delay)
                    yield {**frame, "title": title}

    @router.websocket("/viz/ws")
    async def viz_websocket(websocket: WebSocket) -> None:
        await websocket.accept()
        ep.ensure_reporter()

        async def send() -> None:
            async with contextlib.aclosing(frames()) as feed:
                async for frame in feed:
                    await websocket.send_text(json.dumps(frame, separators=(",", ":")))

        # Read too: only a reader sees the client's close frame and answers it.
        sender = asyncio.create_task(send())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    @router.get("/viz/events", summary="Spectrum frames as server-sent events")
    async def read_viz_events() -> StreamingResponse:
        ep.ensure_reporter()
        ep.require_live(ep.viz)

        async def body() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(frames()) as feed:
                async for frame in feed:
                    yield f"data: {json.dumps(frame, separators=(',', ':'))}\n\n".encode()

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return router


def create_stream_app(
    *,
    settings: Settings | None = None,
    station: StationState | None = None,
    stream_dir: Path | None = None,
    report_s: float = 5.0,
) -> FastAPI:
    """The listener endpoints as their own app (``sonicforge stream --serve``)."""
    app = FastAPI(title="SonicForge stream", docs_url=None, redoc_url=None)
    app.include_router(
        create_stream_router(
            settings=settings, station=station, stream_dir=stream_dir, report_s=report_s
        )
    )
    return app
