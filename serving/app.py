"""The app factory: ``uvicorn --factory serving.app:create_app`` (or
``sonicforge serve``, which migrates first).

Middleware, outermost first: request context (request id, JSON access log,
security headers, body-size limit, the last-resort error body), CORS from
settings, rate limits, then the hot path for the three most-polled reads
and JWT votes (``serving.hot``). Routers live under /api/v1; health
endpoints at the root too, for probes. The streaming service's /stream.mp3 and /hls routes
are mounted when ``streaming.http`` is importable.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from serving import metrics
from serving.context import AppContext, build_context
from serving.errors import install_error_handlers
from serving.hot import VERSION, HotPathMiddleware
from serving.logs import AccessLog, configure_logging
from serving.middleware import RateLimitMiddleware, RequestContextMiddleware
from serving.openapi import TAGS, custom_openapi
from serving.routes import analytics as analytics_routes
from serving.routes import (
    apikeys,
    auth,
    billing,
    health,
    live,
    pipeline,
    pipeline_monitor,
    recommendations,
    requests,
    shares,
    stream,
    tracks,
    users,
    votes,
)
from serving.routing import ResourceRouter, include
from serving.services.analytics import AnalyticsState
from serving.services.analytics_fastpath import AnalyticsFastPath
from serving.services.recommend import RecommendationService
from serving.web import create_web_router
from sonicforge.settings import Settings, get_settings
from sonicforge.station import StationState

log = logging.getLogger("serving.app")

API_PREFIX = "/api/v1"

DESCRIPTION = """\
The app-facing API of SonicForge, a 24/7 AI music radio.

Authenticate with `Authorization: Bearer <access token>` (from `/api/v1/auth/login`)
or an API key (`Authorization: Bearer sfk_...` or `X-API-Key: sfk_...`).
Errors share one body: `{"error": {"code", "message", "request_id", "details"}}`.
Responses carry `X-Request-ID` and, where limited, `X-RateLimit-Limit`,
`X-RateLimit-Remaining`, `X-RateLimit-Reset` (and `Retry-After` on 429).
"""


def _mount_streaming(
    app: FastAPI, settings: Settings, station: StationState, analytics: AnalyticsState | None = None
) -> bool:
    """Mount the streaming service's HTTP routes if that package provides them."""
    try:  # imported by name: the API runs without the streaming package
        streaming_http = importlib.import_module("streaming.http")
    except ImportError:
        log.info("streaming.http is not available; /stream.mp3 and /hls are not mounted")
        return False
    factory = getattr(streaming_http, "create_stream_router", None)
    if callable(factory):
        extra: dict[str, Any] = {}
        if analytics is not None and "recorder" in inspect.signature(factory).parameters:
            # MP3 connections and HLS clients become heartbeats in the outbox.
            from serving.services.listening import ListeningFlusher
            from streaming.listening import ListeningRecorder

            recorder = ListeningRecorder(
                "listening:" + settings.resolved_jwt_secret(),
                segment_s=settings.stream_hls_segment_s,
            )
            app.state.listening = ListeningFlusher(recorder, analytics.writer)
            extra["recorder"] = recorder
        app.include_router(factory(settings=settings, station=station, **extra))
        return True
    router = getattr(streaming_http, "router", None)
    if isinstance(router, APIRouter):
        app.include_router(router)
        return True
    asgi = getattr(streaming_http, "app", None)
    if asgi is not None:
        app.mount("/", asgi)  # last, so the API's own routes match first
        return True
    log.warning("streaming.http has neither 'router' nor 'app'; nothing mounted")
    return False


def create_app(settings: Settings | None = None, *, context: AppContext | None = None) -> FastAPI:
    """Build the API. ``context`` injects prepared dependencies (tests)."""
    settings = settings or (context.settings if context else get_settings())
    configure_logging(settings.log_level)
    metrics.configure(settings)  # before prometheus-client loads: one or several workers
    ctx = context or build_context(settings)
    access_log = AccessLog() if settings.access_log else None
    analytics_state = AnalyticsState(ctx)
    recommender = RecommendationService.from_context(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        analytics_state.start()
        listening = getattr(_app.state, "listening", None)
        if listening is not None:
            listening.start()  # the stream's heartbeats, flushed every few seconds
        recommender.start()  # loads the champion in the background, then follows its alias
        # Everything built so far lives as long as the worker: moved out of
        # the collector's generations, full collections stop walking it
        # (they took tens of milliseconds, seen as the votes' p99). No
        # collection first: in a process that has imported much (tests) it
        # costs a second, and the start-up garbage it would free is small.
        gc.freeze()
        try:
            yield
        finally:
            recommender.stop()
            if listening is not None:
                await listening.stop()  # before the writer stops: the last beats
            await anyio.to_thread.run_sync(analytics_state.stop)
            await ctx.stop()
            if access_log is not None:
                access_log.flush()
            gc.unfreeze()  # an app stopped in a live process (tests) can be collected

    app = FastAPI(
        title="SonicForge API",
        version=VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks cost more than the rest of a
        # request together; nothing here exports traces, so they stay off.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.ctx = ctx
    app.state.analytics = analytics_state
    app.state.recommender = recommender
    install_error_handlers(app)

    # FastAPI tries routes in order, at a few microseconds each: resource
    # routers decline foreign prefixes at once (serving.routing), and the
    # hottest go first.
    api = ResourceRouter(prefix=API_PREFIX)
    api.mounted_at = API_PREFIX
    for module in (stream, votes, tracks, shares, auth, apikeys, users, pipeline):
        include(api, module.router)
    include(api, live.router)  # now playing pushed (SSE) and history
    include(api, pipeline_monitor.router)  # recent runs and the sensor, for the console
    include(api, recommendations.router)
    for router in (*billing.routers, requests.router):  # payments and track requests
        include(api, router)
    include(api, analytics_routes.router)
    app.include_router(api)
    app.include_router(analytics_routes.metrics_router)
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX, include_in_schema=False)
    app.state.listening = None
    app.state.streaming_mounted = _mount_streaming(app, settings, ctx.station, analytics_state)
    # The listener page, the embeddable player and the operator console (serving.web).
    app.include_router(live.events_router)
    app.include_router(create_web_router())

    # add_middleware wraps: the last added runs first.
    app.add_middleware(AnalyticsFastPath, context=lambda: ctx, analytics=lambda: analytics_state)
    app.add_middleware(HotPathMiddleware, context=lambda: ctx)
    app.add_middleware(RateLimitMiddleware, context=lambda: ctx)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "Range"],
            expose_headers=[
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Retry-After",
                "Content-Range",
            ],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, access_log=access_log)
    app.add_middleware(metrics.MetricsMiddleware)  # outermost: every answer is counted
    if settings.otel_enabled:  # FastAPI, SQLAlchemy, Redis and httpx spans
        from serving.telemetry import instrument_app

        instrument_app(app, ctx)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = analytics_routes.document(custom_openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
