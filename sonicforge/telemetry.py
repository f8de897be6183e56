"""OpenTelemetry traces for every process: the tracer provider from settings,
and the trace context carried between processes.

Off by default (``SONICFORGE_OTEL_ENABLED``): then nothing here imports the
SDK and every helper is a no-op. On, spans go to an OTLP/HTTP collector
(``SONICFORGE_OTEL_ENDPOINT`` + ``/v1/traces``) through a batching
processor, or to the console. A trace crosses process boundaries as a W3C
``traceparent``: in the ``TRACEPARENT`` environment variable of a child
process, and in the ``sonicforge/traceparent`` tag of a Dagster run, so a
request that launches a run and the run's assets share one trace.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sonicforge.settings import Settings, get_settings

TRACEPARENT_TAG = "sonicforge/traceparent"
TRACEPARENT_ENV = "TRACEPARENT"

_lock = threading.Lock()
_provider: Any = None


def provider() -> Any:
    """The tracer provider set up in this process, or ``None``."""
    return _provider


def setup_tracing(
    settings: Settings | None = None,
    *,
    component: str | None = None,
    exporter: Any = None,
    batch: bool | None = None,
) -> Any:
    """Set this process's tracer provider once; ``None`` when tracing is off.

    ``exporter`` replaces the one settings name (tests pass the SDK's
    in-memory exporter); ``component`` is appended to the service name
    (``sonicforge-api``, ``sonicforge-pipeline``, ``sonicforge-streamer``).
    """
    global _provider
    if _provider is not None and exporter is None:
        return _provider
    settings = settings or get_settings()
    if exporter is None and not settings.otel_enabled:
        return None
    with _lock:
        if _provider is not None:
            if exporter is not None:
                _add_exporter(_provider, exporter, batch=bool(batch))
            return _provider
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        name = settings.otel_service_name + (f"-{component}" if component else "")
        tp = TracerProvider(
            resource=Resource.create({"service.name": name}),
            sampler=ParentBased(TraceIdRatioBased(settings.otel_sample_ratio)),
        )
        if exporter is None:
            exporter = _exporter_from(settings)
            batch = True if batch is None else batch
        _add_exporter(tp, exporter, batch=bool(batch))
        trace.set_tracer_provider(tp)
        _provider = tp
        return tp


def _exporter_from(settings: Settings) -> Any:
    if settings.otel_exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otel_endpoint.rstrip("/") + "/v1/traces", timeout=5)


def _add_exporter(tp: Any, exporter: Any, *, batch: bool) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    tp.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=500)
        if batch
        else SimpleSpanProcessor(exporter)
    )


def flush(timeout_ms: int = 5000) -> None:
    """Send what is buffered (before a short-lived process ends)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def tracer(name: str) -> Any:
    if _provider is None:
        return None
    return _provider.get_tracer(name)


@contextlib.contextmanager
def span(name: str, *, tracer_name: str = "sonicforge", **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` under the current one; nothing when tracing is off."""
    t = tracer(tracer_name)
    if t is None:
        yield None
        return
    with t.start_as_current_span(
        name, attributes={k: v for k, v in attributes.items() if v is not None}
    ) as s:
        yield s


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if one is recording."""
    if _provider is None:
        return os.environ.get(TRACEPARENT_ENV)
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent") or os.environ.get(TRACEPARENT_ENV)


def trace_tags() -> dict[str, str]:
    """Run tags that carry the current trace into a Dagster run."""
    tp = current_traceparent()
    return {TRACEPARENT_TAG: tp} if tp else {}


def trace_env() -> dict[str, str]:
    """Environment that carries the current trace into a child process."""
    tp = current_traceparent()
    return {TRACEPARENT_ENV: tp} if tp else {}


def context_from(traceparent: str | None) -> Any:
    """An OpenTelemetry context whose parent is ``traceparent`` (or none)."""
    if not traceparent or _provider is None:
        return None
    from opentelemetry.propagate import extract

    return extract({"traceparent": traceparent})


def traced_callback(
    name: str, fn: Callable[..., None], attributes: Callable[..., Mapping[str, Any]]
) -> Callable[..., None]:
    """``fn`` wrapped in a span ``name`` whose attributes come from its
    arguments; ``fn`` itself when tracing is off."""
    if _provider is None:
        return fn

    def wrapped(*args: Any, **kwargs: Any) -> None:
        try:
            attrs = dict(attributes(*args, **kwargs))
        except Exception:  # attributes are a courtesy; the callback is not
            attrs = {}
        with span(name, tracer_name="sonicforge.streaming", **attrs):
            fn(*args, **kwargs)

    return wrapped


def reset_for_tests() -> None:
    """Forget this process's provider (tests build their own)."""
    global _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider = None
