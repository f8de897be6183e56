"""Prometheus metrics (prometheus-client), correct under several workers.

Two kinds of samples:

- **Counted in the worker** — HTTP requests and their latency by route,
  events accepted and rejected. With more than one API worker they live in
  prometheus-client's multiprocess mode: every worker writes its samples to
  memory-mapped files in one directory (``metrics_multiproc_dir``, or
  ``PROMETHEUS_MULTIPROC_DIR``, or ``var/prometheus`` when
  ``api_workers > 1``), and a scrape of any worker sums them all. The
  directory must be chosen before prometheus-client is first imported,
  which ``configure`` does (this module imports it lazily).
- **Read at scrape time** — listeners by output, output state and
  restarts, generation counts and pass rate, outbox lag, and the business
  KPIs: read from the shared stores (station state, app database,
  lakehouse) by whichever worker is scraped, cached for a few seconds, so
  every worker reports the same values and none are summed twice.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI

    from serving.context import AppContext
    from sonicforge.settings import Settings

log = logging.getLogger("serving.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
LIVE_CACHE_S = 5.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Answered before routing (serving.hot, the analytics fast path): labelled by path.
FIXED_ROUTES = frozenset(
    {"/health", "/live", "/ready", "/api/v1/stream/status", "/api/v1/top-tracks",
     "/api/v1/vote", "/api/v1/analytics/track", "/metrics"}
)  # fmt: skip
_PID_FILE = re.compile(r"_(\d+)\.db$")


def multiproc_dir(settings: Settings) -> Path | None:
    """Where the workers share samples, or ``None`` (one worker: in memory)."""
    if settings.metrics_multiproc_dir is not None:
        return settings.metrics_multiproc_dir.absolute()
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    if settings.api_workers > 1:
        return (settings.var_dir / "prometheus").absolute()
    return None


def configure(settings: Settings) -> None:
    """Choose single- or multiprocess mode before prometheus-client loads."""
    path = multiproc_dir(settings)
    if path is None:
        return
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    _forget_dead_workers(path)


def _forget_dead_workers(path: Path) -> None:
    """Live gauges of workers that are gone would be summed in; counters
    stay (a restarted worker's past requests still happened)."""
    from prometheus_client import multiprocess

    for file in path.glob("gauge_live*.db"):
        match = _PID_FILE.search(file.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(path))
        except PermissionError:  # alive, another user's
            pass


class Instruments:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "sonicforge_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
        )
        self.latency = Histogram(
            "sonicforge_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        )
        self.events_accepted = Counter(
            "sonicforge_events_accepted_total", "Tracked events accepted into the outbox."
        )
        self.events_rejected = Counter(
            "sonicforge_events_rejected_total", "Tracked events refused as invalid."
        )
        self.in_flight = Gauge(
            "sonicforge_http_requests_in_flight",
            "Requests being answered now.",
            multiprocess_mode="livesum",
        )


@functools.cache
def instruments() -> Instruments:
    return Instruments()


# A route included through routers knows only its own part of the path
# ("/analytics/events"); the prefixes above it are static, so the full
# template is found once per route from the first path it answered.
_LABEL_ATTR = "_sonicforge_metrics_route"


def full_template(path: str, template: str) -> str:
    """``/api/v1`` + ``/analytics/experiments/{id}``: the path's leading
    segments that the route's own template does not cover, then the template."""
    own = template.strip("/").split("/") if template.strip("/") else []
    parts = path.strip("/").split("/") if path.strip("/") else []
    prefix = parts[: max(0, len(parts) - len(own))]
    return "/" + "/".join([*prefix, *own])


def _route_label(scope: Scope) -> str:
    path: str = scope.get("path", "")
    if path in FIXED_ROUTES:
        return path
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        full = getattr(route, _LABEL_ATTR, None)
        if full is None:  # kept on the route itself (routes are not hashable)
            full = full_template(path, template)
            setattr(route, _LABEL_ATTR, full)
        return str(full)
    if path.startswith("/hls/"):
        return "/hls/{path}"
    return "unmatched"  # unknown paths would make one series each


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI, outermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.m = instruments()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.m.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.m.in_flight.dec()
            route = _route_label(scope)
            method = scope["method"]
            self.m.requests.labels(method, route, str(status)).inc()
            self.m.latency.labels(method, route).observe(time.perf_counter() - start)


# -- samples read at scrape time ---------------------------------------------------


class LiveCollector:
    """Listeners, outputs, generation, outbox lag and KPIs, from the stores."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._cached: tuple[float, list[Any]] | None = None

    def collect(self) -> Iterable[Any]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > LIVE_CACHE_S:
            self._cached = (now, self._families())
        return list(self._cached[1])

    def describe(self) -> Iterable[Any]:
        return []  # values come from the stores; nothing to check at registration

    def _families(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ctx = self.ctx
        out: list[Any] = []
        listeners = GaugeMetricFamily(
            "sonicforge_listeners", "Listeners connected now, by output.", labels=["output"]
        )
        counts = ctx.station.listener_counts()
        for output in sorted({"hls", "mp3", *counts}):
            listeners.add_metric([output], float(counts.get(output, 0)))
        out.append(listeners)
        state = GaugeMetricFamily(
            "sonicforge_output_state", "1 for each output's current state.",
            labels=["output", "state"],
        )  # fmt: skip
        restarts = CounterMetricFamily(
            "sonicforge_output_restarts", "Times the streamer restarted an output.",
            labels=["output"],
        )  # fmt: skip
        for status in ctx.station.outputs():
            state.add_metric([status.name, status.state], 1.0)
            restarts.add_metric([status.name], float(status.restarts))
        out += [state, restarts]
        out += self._generation()
        out += self._outbox()
        out += self._kpis()
        return out

    def _generation(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        lh = self.ctx.lakehouse
        try:
            batches = len(set(lh.read("tracks", columns=["batch_id"])["batch_id"].to_pylist()))
            passed = lh.read("track_scores", columns=["passed"])["passed"].to_pylist()
        except Exception:  # the lakehouse is unreachable: report what is known
            log.warning("metrics: reading the lakehouse failed", exc_info=True)
            return []
        n_passed = sum(1 for p in passed if p)
        runs = GaugeMetricFamily(
            "sonicforge_generation_batches", "Generation batches (runs) in the lakehouse."
        )
        runs.add_metric([], float(batches))
        tracks = GaugeMetricFamily(
            "sonicforge_generation_tracks", "Generated tracks scored, by gate verdict.",
            labels=["verdict"],
        )  # fmt: skip
        tracks.add_metric(["passed"], float(n_passed))
        tracks.add_metric(["failed"], float(len(passed) - n_passed))
        rate = GaugeMetricFamily(
            "sonicforge_generation_pass_ratio", "Share of scored tracks that passed the gate."
        )
        rate.add_metric([], n_passed / len(passed) if passed else 0.0)
        return [runs, tracks, rate]

    def _outbox(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from analytics.drain import pending_events

        try:
            pending, oldest = pending_events(self.ctx.db.engine)
        except Exception:
            log.warning("metrics: reading the outbox failed", exc_info=True)
            return []
        lag = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        g1 = GaugeMetricFamily(
            "sonicforge_outbox_pending_events", "Outbox events not in Delta yet."
        )
        g1.add_metric([], float(pending))
        g2 = GaugeMetricFamily(
            "sonicforge_outbox_lag_seconds", "Age of the oldest outbox event not in Delta yet."
        )
        g2.add_metric([], max(0.0, lag))
        return [g1, g2]

    def _kpis(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from analytics.readout import latest_kpis

        try:
            rows = latest_kpis(self.ctx.lakehouse, days=2)
        except Exception:
            log.warning("metrics: reading the KPIs failed", exc_info=True)
            return []
        family = GaugeMetricFamily(
            "sonicforge_kpi", "The latest day's business KPIs (kpis_daily), by name.",
            labels=["kpi"],
        )  # fmt: skip
        names = ("dau", "wau", "mau", "new_users", "listening_hours", "votes", "shares",
                 "requests", "plays", "peak_concurrent_listeners", "generation_count",
                 "conversions", "mrr")  # fmt: skip
        latest = rows[0] if rows else {}
        for name in names:
            value = latest.get(name)
            family.add_metric([name], float(value) if value is not None else 0.0)
        day = GaugeMetricFamily("sonicforge_kpi_day", "The day the KPIs are of (Unix time).")
        if latest:
            day.add_metric(
                [], datetime.combine(latest["day"], datetime.min.time(), UTC).timestamp()
            )
        else:
            day.add_metric([], 0.0)
        return [family, day]


def _registry(app: FastAPI) -> Any:
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    live = getattr(app.state, "metrics_live", None)
    if live is None:
        live = app.state.metrics_live = LiveCollector(app.state.ctx)
    if os.environ.get(ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Delegate(REGISTRY))
    registry.register(live)
    return registry


class _Delegate:
    """The process's default registry, as one collector of a scrape registry."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return list(self.registry.collect())

    def describe(self) -> Iterable[Any]:
        return []


async def exposition(app: FastAPI) -> tuple[bytes, str]:
    """The text exposition of every metric (run off the event loop)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    instruments()  # registered even before the first request was counted
    body = await anyio.to_thread.run_sync(lambda: generate_latest(_registry(app)))
    return body, CONTENT_TYPE_LATEST
