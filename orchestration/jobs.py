"""Jobs that launch the asset pipeline."""

from __future__ import annotations

import dagster as dg

from orchestration.partitions import batch_partitions

GENERATE_JOB = "generate_tracks_job"

generate_tracks_job = dg.define_asset_job(
    name=GENERATE_JOB,
    selection=dg.AssetSelection.groups("tracks"),
    partitions_def=batch_partitions,
    description="Generate, score, master and rotate one batch of tracks.",
)
