"""Traces of API requests: the FastAPI, SQLAlchemy, Redis and httpx
instrumentations on the provider of ``sonicforge.telemetry``.

``create_app`` calls :func:`instrument_app` only when tracing is on, so the
instrumentation packages are never imported otherwise. A request that
launches a generation run carries its trace into the run: the launchers put
``sonicforge.telemetry.trace_tags()`` on the Dagster run and
``trace_env()`` in the environment of the embedded run process.
"""

from __future__ import annotations

from typing import Any

from sonicforge import telemetry

# Probes and listener fetches are many and say nothing about the app.
EXCLUDED_URLS = "/live,/ready,/health,/hls/,/stream.mp3,/viz/,/metrics"


def instrument_app(app: Any, ctx: Any, *, tracer_provider: Any = None) -> bool:
    """Instrument ``app`` and the clients in ``ctx``; False when tracing is off."""
    tp = tracer_provider or telemetry.setup_tracing(ctx.settings, component="api")
    if tp is None:
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tp, excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )
    # Its declared range stops below SQLAlchemy 2.1, which it instruments
    # all the same (engine events; tests/scale/test_telemetry.py sees the spans).
    SQLAlchemyInstrumentor().instrument(
        engine=ctx.db.engine, tracer_provider=tp, skip_dep_check=True
    )
    redis_instrumentor = RedisInstrumentor()
    if not redis_instrumentor.is_instrumented_by_opentelemetry:
        redis_instrumentor.instrument(tracer_provider=tp)
    client = getattr(ctx.pipeline, "_client", None)
    if client is not None:  # the GraphQL launcher's calls to Dagster
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tp)
    return True
