"""The one ``Definitions`` object of the SonicForge code location."""

from __future__ import annotations

import dagster as dg

from assets.analytics import (
    ANALYTICS_ASSETS,
    ANALYTICS_CHECKS,
    ANALYTICS_JOBS,
    ANALYTICS_SCHEDULES,
    ANALYTICS_SENSORS,
    analytics_resources,
)
from assets.ml import ML_ASSETS, ML_CHECKS, ML_JOBS, ML_SCHEDULES
from assets.tracks import generated_tracks, mastered_tracks, rotation, track_scores
from orchestration.checks import track_checks
from orchestration.environment import resources_for
from orchestration.instance import executor_for
from orchestration.jobs import generate_tracks_job
from orchestration.maintenance import lakehouse_maintenance_job, lakehouse_maintenance_schedule
from orchestration.sensors import air_feed_sensor


def build_definitions() -> dg.Definitions:
    """Definitions with resources for the settings in force now (the CLI
    builds them per call, so a changed environment is honoured)."""
    return dg.Definitions(
        assets=[
            *(generated_tracks, track_scores, mastered_tracks, rotation),
            *ML_ASSETS,
            *ANALYTICS_ASSETS,
        ],
        asset_checks=[*track_checks, *ML_CHECKS, *ANALYTICS_CHECKS],
        jobs=[generate_tracks_job, lakehouse_maintenance_job, *ML_JOBS, *ANALYTICS_JOBS],
        schedules=[lakehouse_maintenance_schedule, *ML_SCHEDULES, *ANALYTICS_SCHEDULES],
        sensors=[air_feed_sensor, *ANALYTICS_SENSORS],
        resources={**resources_for(), **analytics_resources()},
        executor=executor_for(),
    )


defs = build_definitions()
