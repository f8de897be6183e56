"""Analytics for the API: the per-worker state (event writer, caches, the
DuckDB engine), experiments (assignment, exposure, conversion) and the
dashboard and public statistics.

Experiments: the variant is ``analytics.experiments.assign`` (a hash), the
same in every worker; the first time a unit is served a running
experiment, an ``experiment_assignments`` row and an ``exposure`` event
commit together, so exactly one exposure is recorded per unit however many
workers serve it. A conversion of a unit that was never exposed is
recorded with the flag ``no_exposure`` and not counted.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analytics import readout
from analytics.experiments import EXPERIMENTS, UnknownExperimentError, assign, get_experiment
from serving.cache import RefreshingCache
from serving.db.models import ExperimentAssignment
from serving.db.types import utcnow
from serving.exceptions import BadRequestError, NotFoundError
from serving.schemas.analytics import (
    AssignmentPublic,
    ConversionCreate,
    ConversionPublic,
    Dashboard,
    ExperimentList,
    ExperimentPublic,
    ExperimentSummary,
    GenerationHealth,
    KpiDay,
    OutboxLag,
    PublicStats,
    TopTrackToday,
    TrendingTrack,
    VariantPublic,
)
from serving.services.analytics_ingest import EventWriter
from serving.services.outbox import record_event

if TYPE_CHECKING:
    from analytics.experiments import Experiment
    from analytics.sql import SqlEngine
    from serving.context import AppContext

PUBLIC_STATS_CACHE_S = 15.0


class AnalyticsState:
    """What analytics keeps per worker; started and stopped with the app."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.writer = EventWriter(ctx.db)
        self.dashboard_cache: RefreshingCache[Dashboard] = RefreshingCache(
            ctx.settings.analytics_dashboard_cache_s, max_entries=2
        )
        self.public_cache: RefreshingCache[PublicStats] = RefreshingCache(
            PUBLIC_STATS_CACHE_S, max_entries=2
        )
        self._engine: SqlEngine | None = None
        self._engine_lock = threading.Lock()

    def start(self) -> None:
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def sql(self) -> SqlEngine:
        """One DuckDB engine per worker (queries take their own cursors)."""
        with self._engine_lock:
            if self._engine is None:
                from analytics.sql import SqlEngine

                self._engine = SqlEngine(self.ctx.lakehouse)
            return self._engine


# -- experiments -----------------------------------------------------------------


def _experiment(experiment_id: str) -> Experiment:
    try:
        return get_experiment(experiment_id)
    except UnknownExperimentError as exc:
        raise NotFoundError(str(exc)) from None


def experiment_public(e: Experiment) -> ExperimentPublic:
    return ExperimentPublic(
        experiment_id=e.experiment_id,
        description=e.description,
        status=e.status,
        metric=e.metric.name,
        metric_kind=e.metric.kind,
        metric_event=e.metric.event,
        direction=e.metric.direction,
        min_sample=e.min_sample,
        variants=[VariantPublic(name=v.name, weight=v.weight, config=v.config) for v in e.variants],
    )


def list_experiments() -> ExperimentList:
    return ExperimentList(items=[experiment_public(e) for e in EXPERIMENTS.values()])


def _unit(user_id: str | None, anonymous_id: str | None) -> str:
    if user_id is not None:
        return f"u:{user_id}"
    if anonymous_id is not None:
        return f"a:{anonymous_id}"
    raise BadRequestError(
        "an experiment needs a unit: send an access token, or ?anonymous_id= without one"
    )


def serve_variant(
    session: Session, experiment_id: str, *, user_id: str | None, anonymous_id: str | None
) -> AssignmentPublic:
    """The unit's variant; records the exposure the first time it is served."""
    exp = _experiment(experiment_id)
    unit = _unit(user_id, anonymous_id)
    variant = assign(exp, unit)
    shown = unit.split(":", 1)[1]
    if exp.status != "running":  # no exposures outside a running experiment
        return AssignmentPublic(experiment_id=exp.experiment_id, variant=variant.name,
                                config=variant.config, unit_id=shown, first_exposure=False,
                                exposed_at=utcnow())  # fmt: skip
    found = session.get(ExperimentAssignment, (exp.experiment_id, unit))
    first = False
    if found is None:
        event = record_event(
            session, "exposure", user_id=user_id, anonymous_id=anonymous_id,
            experiment_id=exp.experiment_id, variant=variant.name,
            properties={"unit_id": unit},
        )  # fmt: skip
        found = ExperimentAssignment(
            experiment_id=exp.experiment_id, unit_id=unit, variant=variant.name, user_id=user_id,
            anonymous_id=anonymous_id, exposure_event_id=event.event_id, assigned_at=event.ts,
        )  # fmt: skip
        session.add(found)
        try:
            session.commit()
            first = True
        except IntegrityError:  # another worker served it first: one exposure
            session.rollback()
            found = session.get(ExperimentAssignment, (exp.experiment_id, unit))
            assert found is not None
    return AssignmentPublic(experiment_id=exp.experiment_id, variant=found.variant,
                            config=exp.variant(found.variant).config, unit_id=shown,
                            first_exposure=first, exposed_at=found.assigned_at)  # fmt: skip


def record_conversion(
    session: Session,
    experiment_id: str,
    body: ConversionCreate,
    *,
    user_id: str | None,
) -> ConversionPublic:
    exp = _experiment(experiment_id)
    unit = _unit(user_id, body.anonymous_id)
    found = session.scalar(
        select(ExperimentAssignment).where(
            ExperimentAssignment.experiment_id == exp.experiment_id,
            ExperimentAssignment.unit_id == unit,
        )
    )
    flags = [] if found is not None else ["no_exposure"]
    properties = dict(body.properties)
    properties["unit_id"] = unit
    if body.value is not None:
        properties["value"] = body.value
    event = record_event(
        session, "conversion", event=body.event or exp.metric.event, user_id=user_id,
        anonymous_id=body.anonymous_id, experiment_id=exp.experiment_id,
        variant=found.variant if found else None, properties=properties, flags=flags,
    )  # fmt: skip
    session.commit()
    return ConversionPublic(experiment_id=exp.experiment_id, event_id=event.event_id,
                            variant=found.variant if found else None, counted=found is not None,
                            flags=flags)  # fmt: skip


# -- dashboard and public stats ----------------------------------------------------


def outbox_lag(ctx: AppContext, now: datetime | None = None) -> OutboxLag:
    from analytics.drain import pending_events

    pending, oldest = pending_events(ctx.db.engine)
    now = now or datetime.now(UTC)
    return OutboxLag(pending=pending, oldest_pending_at=oldest,
                     lag_s=(now - oldest).total_seconds() if oldest else None)  # fmt: skip


def _kpi(row: dict[str, Any]) -> KpiDay:
    return KpiDay.model_validate({k: row[k] for k in KpiDay.model_fields})


def build_dashboard(ctx: AppContext) -> Dashboard:
    lh = ctx.lakehouse
    now = datetime.now(UTC)
    today = now.date()
    kpis = readout.latest_kpis(lh, today=today)
    by_day = {r["day"]: r for r in kpis}
    top_day = today if readout.top_tracks_of(lh, today, limit=1) else today - timedelta(days=1)
    summaries: dict[str, list[dict[str, Any]]] = {}
    for r in readout.rows(lh, "experiment_results"):
        keep = ("variant", "exposures", "conversions", "rate", "mean", "ci_low", "ci_high",
                "diff", "p_value", "significant", "srm", "status")  # fmt: skip
        summaries.setdefault(r["experiment_id"], []).append({k: r[k] for k in keep})
    experiments = [
        ExperimentSummary(
            experiment_id=e.experiment_id,
            status=(summaries.get(e.experiment_id) or [{"status": "no_data"}])[0]["status"],
            variants=summaries.get(e.experiment_id, []),
        )
        for e in EXPERIMENTS.values()
    ]
    counts = ctx.station.listener_counts()
    return Dashboard(
        generated_at=now,
        listeners_now=sum(counts.values()),
        listeners_by_output=counts,
        today=_kpi(by_day[today]) if today in by_day else None,
        trailing=[_kpi(r) for r in kpis[:7]],
        top_tracks=[
            TopTrackToday.model_validate({k: r[k] for k in TopTrackToday.model_fields})
            for r in readout.top_tracks_of(lh, top_day)
        ],
        trending=[
            TrendingTrack.model_validate({k: r[k] for k in TrendingTrack.model_fields})
            for r in readout.trending(lh)
        ],
        generation=GenerationHealth(**readout.generation_health(lh)),
        experiments=experiments,
        outbox=outbox_lag(ctx, now),
    )


def build_public_stats(ctx: AppContext, engine: SqlEngine) -> PublicStats:
    return PublicStats(
        listeners_now=ctx.station.total_listeners(),
        tracks_generated=ctx.lakehouse.count("tracks"),
        hours_aired=round(readout.hours_aired(engine), 3),
        generated_at=utcnow(),
    )
