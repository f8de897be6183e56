"""Spans for generation runs: one per asset step, in the trace of the
request that launched the run.

The generation job carries two hooks. When a step ends they record a span
``asset <name>`` from the step's start event to now, with the batch id
(the partition), the run id and the step's outcome; its parent is the
``sonicforge/traceparent`` tag of the run (set by the API's launchers from
the request's trace), or, for runs nobody traced (the feed sensor's, the
schedule's), a parent derived from the run id, so each run is still one
trace. Hooks run in the step's own process, which under
``k8s_job_executor`` is its own pod: the provider is set up there on first
use and flushed after each span.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

from sonicforge import telemetry

PARTITION_TAG = "dagster/partition"


def _step_started_at(context: dg.HookContext) -> float | None:
    records = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.STEP_START
    ).records
    for record in records:
        if record.event_log_entry.step_key == context.step_key:
            return record.event_log_entry.timestamp
    return None


def run_parent(run_id: str, tags: dict[str, str]) -> Any:
    """The context a run's asset spans hang under."""
    parent = telemetry.context_from(tags.get(telemetry.TRACEPARENT_TAG))
    if parent is not None:
        return parent
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    hexid = run_id.replace("-", "")
    try:
        trace_id, span_id = int(hexid[:32], 16), int(hexid[-16:], 16)
    except ValueError:
        return None
    ctx = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def record_step_span(context: dg.HookContext, *, failed: bool) -> None:
    """End the step's span (no-op while tracing is off)."""
    tp = telemetry.setup_tracing(component="pipeline")
    if tp is None:
        return
    from opentelemetry.trace import Status, StatusCode

    run = context.instance.get_run_by_id(context.run_id)
    tags = dict(run.tags) if run is not None else {}
    started = _step_started_at(context) or time.time()
    attributes = {
        "sonicforge.batch_id": tags.get(PARTITION_TAG, ""),
        "dagster.run_id": context.run_id,
        "dagster.job": context.job_name,
        "dagster.step": context.step_key,
    }
    name = f"asset {context.op.name}"
    span = tp.get_tracer("sonicforge.orchestration").start_span(
        name,
        context=run_parent(context.run_id, tags),
        attributes=attributes,
        start_time=int(started * 1e9),
    )
    if failed:
        error = context.op_exception
        span.set_status(Status(StatusCode.ERROR, str(error) if error else "step failed"))
        if isinstance(error, BaseException):
            span.record_exception(error)
    span.end()
    telemetry.flush()


@dg.success_hook(name="asset_span_success")
def asset_span_success(context: dg.HookContext) -> None:
    record_step_span(context, failed=False)


@dg.failure_hook(name="asset_span_failure")
def asset_span_failure(context: dg.HookContext) -> None:
    record_step_span(context, failed=True)


ASSET_SPAN_HOOKS = {asset_span_success, asset_span_failure}
