"""Now playing pushed to players (server-sent events) and what played before.

``GET /stream/events`` sends the stream status at once and again
every time the track changes (the station's now-playing channel: Redis
pub/sub, or the in-process state beside an embedded streamer), with a
keep-alive comment in between, so a player never polls for the next track.
One subscription per worker feeds every connection (``NowPlayingHub``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from serving.deps import ContextDep, context_of
from serving.hot import stream_status_body
from serving.routing import ResourceRouter
from serving.schemas.common import Schema, error_responses
from sonicforge.station import NowPlayingChange, StationState

KEEPALIVE_S = 15.0
HISTORY_CACHE_S = 5.0


class NowPlayingHub:
    """One subscription to the station's now-playing channel for the whole
    worker, read on a thread and fanned out to the event loop: each change
    sets the current ``asyncio.Event`` and replaces it."""

    def __init__(self, station: StationState, *, recent: int = 20) -> None:
        self.station = station
        self.version = 0
        self.recent: deque[NowPlayingChange] = deque(maxlen=recent)
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.subscribed = threading.Event()  # set while the thread holds a subscription

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="now-playing-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.station.subscribe() as sub:
                    self.subscribed.set()
                    while not self._stop.is_set():
                        change = sub.get(timeout_s=0.5)
                        if change is not None and self._loop is not None:
                            self._loop.call_soon_threadsafe(self._publish, change)
            except Exception:  # the store went away: subscribe again shortly
                self.subscribed.clear()
                self._stop.wait(1.0)
        self.subscribed.clear()

    def _publish(self, change: NowPlayingChange) -> None:
        self.version += 1
        if change.now_playing is not None:
            self.recent.appendleft(change)
        event, self._changed = self._changed, asyncio.Event()
        if event is not None:
            event.set()

    async def wait(self, timeout_s: float) -> bool:
        """True when the track changed within ``timeout_s``."""
        event = self._changed
        if event is None:
            await asyncio.sleep(timeout_s)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)
            return True
        return False


def hub_of(request: Request) -> NowPlayingHub:
    state = request.app.state
    hub: NowPlayingHub | None = getattr(state, "now_playing_hub", None)
    if hub is None:
        hub = state.now_playing_hub = NowPlayingHub(context_of(request).station)
    hub.start()
    return hub


@contextlib.asynccontextmanager
async def _hub_lifespan(app: Any) -> AsyncIterator[None]:
    # Subscribed from the start, so that "recently played" knows the tracks
    # that aired before the first player connected.
    ctx = getattr(app.state, "ctx", None)
    if ctx is not None and getattr(app.state, "now_playing_hub", None) is None:
        app.state.now_playing_hub = NowPlayingHub(ctx.station)
        app.state.now_playing_hub.start()
    yield
    hub: NowPlayingHub | None = getattr(app.state, "now_playing_hub", None)
    if hub is not None:
        await anyio.to_thread.run_sync(hub.stop)


router = ResourceRouter(prefix="/stream", tags=["stream"])
# At the root beside /stream.mp3 and /viz/events, the other endless listener
# responses (outside /api/v1, where every operation answers and ends).
events_router = APIRouter(tags=["stream"], lifespan=_hub_lifespan)


@events_router.get(
    "/stream/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Endless server-sent events: `event: status` with the stream "
            "status (as GET /stream/status) at once and at every track change; a "
            "`: keep-alive` comment every 15 s",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(429),
    },
    summary="Now playing, pushed: the stream status at every track change",
)
async def read_stream_events(request: Request) -> StreamingResponse:
    ctx = context_of(request)
    hub = hub_of(request)

    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 3000\n\n"
        while True:
            status = await stream_status_body(ctx)
            yield b"event: status\ndata: " + status + b"\n\n"
            while not await hub.wait(KEEPALIVE_S):
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
            ctx.status_cache.clear()  # the cached view is of the previous track

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class PlayedPublic(Schema):
    play_id: str | None
    track_id: str
    title: str | None = Field(description="As on air, when this worker saw it start.")
    genre: str | None
    bpm: float | None
    musical_key: str | None
    started_at: datetime
    skipped: bool | None = None


class HistoryPublic(Schema):
    items: list[PlayedPublic]


_history_cache: dict[int, tuple[float, list[dict[str, Any]]]] = {}


def _lake_plays(ctx: Any, limit: int) -> list[dict[str, Any]]:
    now = time.monotonic()
    cached = _history_cache.get(id(ctx))
    if cached is not None and now - cached[0] < HISTORY_CACHE_S:
        return cached[1]
    table = ctx.lakehouse.read("plays", columns=["play_id", "track_id", "started_at", "skipped"])
    rows = sorted(table.to_pylist(), key=lambda r: r["started_at"], reverse=True)[: limit * 2]
    _history_cache[id(ctx)] = (now, rows)
    return rows


@router.get(
    "/history",
    response_model=HistoryPublic,
    responses=error_responses(422, 429),
    summary="Recently played tracks, newest first",
)
async def read_stream_history(
    request: Request,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> HistoryPublic:
    """What this worker saw go on air, and the plays the streamer recorded
    in the lakehouse (written in batches, so the newest may only be in the
    first)."""
    hub = hub_of(request)
    seen: dict[str, dict[str, Any]] = {}
    for change in hub.recent:
        np = change.now_playing
        if np is not None:
            key = np.play_id or f"{np.track_id}@{np.started_at.isoformat()}"
            seen[key] = {"play_id": np.play_id, "track_id": np.track_id, "title": np.title,
                         "started_at": np.started_at, "skipped": None}  # fmt: skip
    for row in await anyio.to_thread.run_sync(_lake_plays, ctx, limit):
        key = row["play_id"] or f"{row['track_id']}@{row['started_at'].isoformat()}"
        seen.setdefault(key, {**row, "title": None})
    snapshot = await ctx.catalog.asnapshot()
    tracks = snapshot.tracks
    items = []
    for row in sorted(seen.values(), key=lambda r: r["started_at"], reverse=True)[:limit]:
        track = tracks.get(row["track_id"])
        items.append(
            PlayedPublic(
                **row,
                genre=track.genre if track else None,
                bpm=track.bpm if track else None,
                musical_key=track.musical_key if track else None,
            )
        )
    return HistoryPublic(items=items)
