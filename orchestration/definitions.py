"""The one ``Definitions`` object of the SonicForge code location."""

from __future__ import annotations

import dagster as dg

from assets.tracks import generated_tracks, mastered_tracks, rotation, track_scores
from orchestration.checks import track_checks
from orchestration.environment import resources_for
from orchestration.jobs import generate_tracks_job

defs = dg.Definitions(
    assets=[generated_tracks, track_scores, mastered_tracks, rotation],
    asset_checks=track_checks,
    jobs=[generate_tracks_job],
    resources=resources_for(),
)
