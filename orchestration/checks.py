"""Quality gates on the track tables, as asset checks backed by
great-expectations suites (``analytics.quality``).

Checks run per batch partition on that batch's rows. The mastering gates
are blocking: a batch whose masters miss the loudness target or the
true-peak ceiling never reaches the rotation.
"""

# No ``from __future__ import annotations`` here: Dagster 1.13 checks the
# ``context`` annotation raw from the signature and refuses a string.
import warnings
from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from analytics.quality import Expect, between, ids_unique_not_null, in_set, validate
from assets.tracks import generated_tracks, mastered_tracks, rotation, track_scores
from orchestration.partitions import batch_partitions
from orchestration.resources import LakehouseResource

# Checks on partitioned assets are "preview" in Dagster 1.13; they are what
# lets each batch be gated on its own rows, so we use them knowingly.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

TARGET_LUFS = -14.0
LUFS_TOLERANCE_LU = 1.0
CEILING_DBTP = -1.0
# Durations may differ from the request by at most this much (windowed
# model backends trim to the nearest frame).
DURATION_TOLERANCE_S = 0.5


def _result(
    frame: pd.DataFrame,
    expectations: Sequence[Expect],
    *,
    name: str,
    threshold: Any,
    actual: Any,
    allow_empty: bool = False,
) -> dg.AssetCheckResult:
    if frame.empty and allow_empty:
        return dg.AssetCheckResult(
            passed=True, metadata={"rows": 0, "note": "no rows in this batch"}
        )
    outcome = validate(frame, expectations, name=name)
    return dg.AssetCheckResult(
        passed=outcome.passed,
        metadata={
            "rows": outcome.rows,
            "expectations": outcome.evaluated,
            "actual": actual,
            "threshold": threshold,
            "failures": dg.MetadataValue.json(outcome.failures),
        },
    )


def _batch(lakehouse: LakehouseResource, table: str, batch_id: str) -> pd.DataFrame:
    return lakehouse.open().read(table, where={"batch_id": batch_id}).to_pandas()


@dg.asset_check(asset=generated_tracks, partitions_def=batch_partitions)
def tracks_ids_and_durations(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """Track ids are unique and non-null; durations match the request."""
    df = _batch(lakehouse, "tracks", context.partition_key)
    df["duration_error_s"] = (df["duration_s"] - df["requested_duration_s"]).abs()
    return _result(
        df,
        [*ids_unique_not_null("track_id"), between("duration_error_s", 0.0, DURATION_TOLERANCE_S)],
        name="tracks",
        threshold=DURATION_TOLERANCE_S,
        actual=float(df["duration_error_s"].max()) if len(df) else None,
    )


@dg.asset_check(asset=track_scores, partitions_def=batch_partitions)
def scores_complete(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """Every score row has a unique track id and a quality score in [0, 100]."""
    df = _batch(lakehouse, "track_scores", context.partition_key)
    return _result(
        df,
        [*ids_unique_not_null("track_id"), between("quality_score", 0.0, 100.0)],
        name="track_scores",
        threshold=[0.0, 100.0],
        actual=float(df["quality_score"].mean()) if len(df) else None,
    )


@dg.asset_check(asset=mastered_tracks, partitions_def=batch_partitions, blocking=True)
def masters_on_loudness_target(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """Masters measure within ±1 LU of −14 LUFS integrated and ≤ −1 dBTP."""
    df = _batch(lakehouse, "mastered_tracks", context.partition_key)
    return _result(
        df,
        [
            *ids_unique_not_null("track_id"),
            between("lufs_after", TARGET_LUFS - LUFS_TOLERANCE_LU, TARGET_LUFS + LUFS_TOLERANCE_LU),
            between("true_peak_after", None, CEILING_DBTP),
        ],
        name="mastered_tracks",
        threshold={
            "lufs": [TARGET_LUFS - LUFS_TOLERANCE_LU, TARGET_LUFS + LUFS_TOLERANCE_LU],
            "true_peak_max": CEILING_DBTP,
        },
        actual={
            "lufs_min": float(df["lufs_after"].min()) if len(df) else None,
            "lufs_max": float(df["lufs_after"].max()) if len(df) else None,
            "true_peak_max": float(df["true_peak_after"].max()) if len(df) else None,
        },
        allow_empty=True,
    )


@dg.asset_check(asset=rotation, partitions_def=batch_partitions, blocking=True)
def rotation_tracks_passed(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """Every track in the rotation has a passing quality score."""
    lh = lakehouse.open()
    rot = lh.read("rotation", columns=["track_id"]).to_pandas()
    scores = lh.read("track_scores", columns=["track_id", "passed"]).to_pandas()
    df = rot.merge(scores, on="track_id", how="left")
    df["passed"] = df["passed"].astype("object").where(df["passed"].notna(), None)
    return _result(
        df,
        [
            *ids_unique_not_null("track_id"),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "passed"}),
            in_set("passed", [True]),
        ],
        name="rotation",
        threshold="all rotation tracks passed scoring",
        actual=int((df["passed"] != True).sum()),  # noqa: E712
        allow_empty=True,
    )


track_checks = [
    tracks_ids_and_durations,
    scores_complete,
    masters_on_loudness_target,
    rotation_tracks_passed,
]
