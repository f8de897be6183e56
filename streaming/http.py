"""Listener endpoints for the API to mount: ``/stream.mp3`` (with ICY
metadata), ``/hls/…`` (the ladder's files) and the visualizer feed at
``/viz/ws`` (WebSocket) and ``/viz/events`` (SSE).

    from streaming.http import create_stream_router
    app.include_router(create_stream_router(settings=settings, station=station))

They read what the streamer process writes under ``stream_dir`` (any number
of API workers or replicas can serve one streamer); each tail starts with
its first listener. With ``SONICFORGE_STREAM_EMBEDDED=true`` the router's
lifespan also runs the streamer itself on a thread of the API process.

One worker serves thousands of listeners: MP3 listeners read one shared
buffer of encoded chunks and are written to the ASGI ``send`` directly
(one send per chunk, no generator or queue per listener); HLS files are
answered from memory with their headers ready (``streaming.hls_files``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    FastAPI,
    HTTPException,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from sonicforge.settings import Settings, get_settings
from sonicforge.station import StationState, station_state_from_url
from streaming.hls_files import MASTER, HlsFile, HlsFiles
from streaming.hub import ChunkTail, HlsListeners, IcyInterleaver, TailReader
from streaming.listening import ListeningRecorder
from streaming.outputs.chunks import resolve_stream_dir

ICY_METAINT = 16000
# A streamer that wrote nothing for this long is off air: say so (503)
# instead of holding a player's connection open in silence.
STALE_S = 15.0
REPLICA = f"{socket.gethostname()}:{os.getpid()}"
# The key an HLS player keeps, so that it counts once (AzuraCast's rule):
# ``?sid=`` on its requests, or the cookie we hand out with a playlist.
SESSION_COOKIE = "sf_listener"
SESSION_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_SESSION = re.compile(SESSION_PATTERN)

# The error body the API answers with (``serving``'s ErrorBody), inline so
# that it documents this router in the API and in the stream app alike.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["not_found"]},
                "message": {"type": "string"},
                "request_id": {"type": ["string", "null"]},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again",
        "schema": {"type": "integer"},
    }
}


def _error(description: str, *, retry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_SCHEMA}},
    }
    if retry:
        out["headers"] = RETRY_AFTER
    return out


OFF_AIR = _error("The station is off air (nothing written for 15 s); try again shortly")
HLS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A playlist or a segment the streamer wrote",
        "content": {
            "application/vnd.apple.mpegurl": {"schema": {"type": "string"}},
            "video/mp2t": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    404: _error("No such file: only names the streamer wrote are served"),
    422: _error("`sid` is not a session key (8-64 letters, digits, '-' or '_')"),
    503: _error(
        "The master playlist is not published yet: a variant it names has fewer than "
        "three segments (the ladder is starting, or off air)",
        retry=True,
    ),
}


class StreamEndpoints:
    """The state behind the router: tails, counters, listener reports."""

    def __init__(
        self,
        stream_dir: Path,
        station: StationState | None,
        *,
        report_s: float,
        segment_s: float,
        segment_max_age_s: int = 86400,
    ) -> None:
        self.dir = stream_dir
        self.station = station
        self.report_s = report_s
        self.segment_s = segment_s
        self.mp3 = ChunkTail(stream_dir / "mp3", backlog=2, stale_s=STALE_S)
        self.viz = ChunkTail(stream_dir / "viz", backlog=1, stale_s=STALE_S)
        self.hls_files = HlsFiles(stream_dir / "hls", segment_max_age_s=segment_max_age_s)
        self.hls = HlsListeners(2 * segment_s)
        self._reporter: asyncio.Task[None] | None = None

    def ensure_reporter(self) -> None:
        if self.station is not None and (self._reporter is None or self._reporter.done()):
            self._reporter = asyncio.get_running_loop().create_task(self._report())

    async def _report(self) -> None:
        assert self.station is not None
        while True:
            counts = {"mp3": self.mp3.listeners, "hls": self.hls_count(), "viz": self.viz.listeners}
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

    def hls_count(self) -> int:
        # Twice the segment duration the playlists declare (AzuraCast's rule).
        self.hls.window_s = 2 * (self.hls_files.target_s or self.segment_s)
        return self.hls.count()

    def require_live(self, tail: ChunkTail) -> dict[str, Any]:
        latest = tail.latest()
        if latest is None or time.time() - float(latest.get("written_at", 0)) > STALE_S:
            raise HTTPException(503, detail="the station is off air; try again shortly")
        return latest

    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.hls_files.target_s or self.segment_s))


class Mp3Response(Response):
    """The endless MP3 body, sent chunk by chunk from the shared buffer."""

    media_type = "audio/mpeg"

    def __init__(
        self,
        tail: ChunkTail,
        *,
        headers: dict[str, str],
        icy: bool,
        recorder: ListeningRecorder | None = None,
        client: tuple[str, str] = ("?", ""),
    ) -> None:
        self.status_code = 200
        self.background = None
        self.tail, self.icy = tail, icy
        self.recorder, self.client = recorder, client
        self.init_headers(headers)  # no body: no Content-Length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        interleave = IcyInterleaver(ICY_METAINT) if self.icy else None
        recorder = self.recorder
        listener = None if recorder is None else recorder.mp3_open(*self.client)
        try:
            await self._send_chunks(receive, send, interleave, listener)
        finally:
            if recorder is not None and listener is not None:
                recorder.mp3_close(listener)

    async def _send_chunks(
        self, receive: Receive, send: Send, interleave: IcyInterleaver | None, listener: Any
    ) -> None:
        async with self.tail.subscribe() as reader:
            # Only a reader of the ASGI channel hears that the client left.
            watcher = asyncio.get_running_loop().create_task(_watch(receive, reader))
            try:
                while (chunks := await reader.batch()) is not None:
                    if interleave is not None:
                        body = b"".join(
                            interleave.feed(c.data, str(c.meta.get("title", ""))) for c in chunks
                        )
                    else:
                        body = (
                            chunks[0].data if len(chunks) == 1 else b"".join(c.data for c in chunks)
                        )
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    if listener is not None:
                        listener.bytes += len(body)
            finally:
                watcher.cancel()
        # Dropped (fell behind) or off air: end the body cleanly.
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _watch(receive: Receive, reader: TailReader) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    reader.close()


class HlsResponse(Response):
    """A file from the index: body and headers built once, per file."""

    def __init__(self, item: HlsFile, cookie: bytes | None) -> None:
        self.status_code = 200
        self.background = None
        self.body = item.body
        # A copy: middleware may add headers to the list it is given.
        self.raw_headers = list(item.headers)
        if cookie is not None:
            self.raw_headers.append((b"set-cookie", cookie))


def _session(request: Request, sid: str | None) -> tuple[str, bool]:
    """The listener's key, and whether it came from the player."""
    if sid is not None:
        return f"sid:{sid}", True
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None and _SESSION.match(cookie):
        return f"sid:{cookie}", True
    # No key: one listener per address (never per User-Agent).
    return f"addr:{request.client.host if request.client else '?'}", False


def _client(request: Request) -> tuple[str, str]:
    """Address and User-Agent, for the recorder's keyed hash (never stored raw)."""
    host = request.client.host if request.client else "?"
    return host, request.headers.get("user-agent", "")


def create_stream_router(
    *,
    settings: Settings | None = None,
    station: StationState | None = None,
    stream_dir: Path | None = None,
    report_s: float = 5.0,
    recorder: ListeningRecorder | None = None,
) -> APIRouter:
    """Routes for listeners; ``station`` receives the listener counts every
    ``report_s`` seconds. ``recorder`` (the API's, which flushes it to the
    outbox) hears every MP3 connection and HLS request; without one (the
    standalone streamer, which has no app database) nothing is recorded."""
    settings = settings or get_settings()
    if stream_dir is None:
        stream_dir = resolve_stream_dir(settings)
    if station is None:
        station = station_state_from_url(settings.redis_url)
    ep = StreamEndpoints(
        stream_dir,
        station,
        report_s=report_s,
        segment_s=settings.stream_hls_segment_s,
        segment_max_age_s=settings.stream_hls_segment_max_age_s,
    )
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

    @router.get(
        "/stream.mp3",
        summary="The endless MP3 stream (ICY metadata on request)",
        response_class=Mp3Response,
        status_code=200,
        responses={
            200: {
                "description": "MP3 frames, endless; with `Icy-MetaData: 1`, ICY blocks every "
                "`icy-metaint` bytes",
                "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}},
            },
            503: OFF_AIR,
        },
    )
    async def read_mp3_stream(request: Request) -> Mp3Response:
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
        return Mp3Response(
            ep.mp3, headers=headers, icy=icy, recorder=recorder, client=_client(request)
        )

    @router.get(
        "/hls/{path:path}",
        summary="HLS playlists and segments",
        response_class=HlsResponse,
        status_code=200,
        responses=HLS_RESPONSES,
    )
    async def read_hls_file(
        path: str,
        request: Request,
        sid: Annotated[
            str | None,
            Query(
                pattern=SESSION_PATTERN,
                description="A session key the player keeps (8–64 letters, digits, '-' or "
                "'_'), so that it counts as one listener; or the `sf_listener` cookie",
            ),
        ] = None,
    ) -> HlsResponse:
        item = ep.hls_files.get(path)
        if item is None:
            if path == MASTER:
                wait = ep.retry_after_s()
                raise HTTPException(
                    503,
                    detail="the HLS ladder is not ready: every variant needs three segments "
                    f"before the master playlist is published; retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            # Never echo the name back: it may be 5,000 characters or hold a NUL.
            raise HTTPException(404, detail="no such HLS file; start at /hls/master.m3u8")
        key, kept = _session(request, sid)
        cookie = None
        if path != MASTER:
            ep.ensure_reporter()
            ep.hls.touch(key)
        if recorder is not None:
            recorder.hls(*_client(request), len(item.body) if request.method == "GET" else 0)
        if not kept and path.endswith(".m3u8"):
            cookie = (
                f"{SESSION_COOKIE}={secrets.token_urlsafe(12)}; Path=/hls; Max-Age=86400; "
                "SameSite=Lax; HttpOnly"
            ).encode()
        return HlsResponse(item, cookie)

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

    @router.get(
        "/viz/events",
        summary="Spectrum frames as server-sent events",
        response_class=StreamingResponse,
        status_code=200,
        responses={
            200: {
                "description": "Endless `data: {json}` events, 25 a second",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            503: OFF_AIR,
        },
    )
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


HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_request",
    503: "unavailable",
}


def _error_body(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    code = HTTP_CODES.get(status, "error")
    body = {
        "error": {"code": code, "message": message, "request_id": None, "details": details or []}
    }
    return JSONResponse(body, status_code=status)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    response = _error_body(exc.status_code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [
        {"loc": [p for p in e.get("loc", ()) if isinstance(p, (str, int))], "msg": e.get("msg", "")}
        for e in exc.errors()
    ]
    first = issues[0] if issues else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "request"
    return _error_body(422, f"{where}: {first['msg']}", issues)


def create_stream_app(
    *,
    settings: Settings | None = None,
    station: StationState | None = None,
    stream_dir: Path | None = None,
    report_s: float = 5.0,
) -> FastAPI:
    """The listener endpoints as their own app (``sonicforge stream --serve``),
    answering errors with the API's error body."""
    app = FastAPI(title="SonicForge stream", docs_url=None, redoc_url=None)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(
        create_stream_router(
            settings=settings, station=station, stream_dir=stream_dir, report_s=report_s
        )
    )
    return app
