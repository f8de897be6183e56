"""Jobs that launch the asset pipeline."""

from __future__ import annotations

import dagster as dg

from orchestration.partitions import batch_partitions
from orchestration.telemetry import ASSET_SPAN_HOOKS

GENERATE_JOB = "generate_tracks_job"

generate_tracks_job = dg.define_asset_job(
    name=GENERATE_JOB,
    selection=dg.AssetSelection.groups("tracks"),
    partitions_def=batch_partitions,
    description="Generate, score, master and rotate one batch of tracks.",
    hooks=ASSET_SPAN_HOOKS,  # a span per asset step (orchestration.telemetry)
    # The queued run coordinator's limits (deploy/dagster/values.yaml) count these.
    run_tags={"sonicforge/kind": "generation"},
)
