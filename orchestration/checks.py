"""Quality gates on the track tables, as asset checks backed by
great-expectations suites (``analytics.quality``).

Checks run per batch partition on that batch's rows. The masters gate is
blocking and measures what mastering did not itself guarantee: it decodes
the stored files and meters them again with meters that share no code with
mastering (``models.meters``). Dagster skips the assets downstream of a
failed blocking check in the same run and marks the run failed, so a batch
whose masters miss the loudness target or the true-peak ceiling never
reaches the rotation.
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
from models.meters import FileLimits, check_file
from models.pipeline import (
    MASTER_CEILING_DBTP,
    RENDITION_CEILING_DBTP,
    TARGET_LUFS,
    parallel_map,
)
from orchestration.partitions import batch_partitions
from orchestration.resources import GeneratorResource, LakehouseResource
from sonicforge.errors import StorageError
from sonicforge.lakehouse import Lakehouse
from sonicforge.storage import sha256_hex

# Checks on partitioned assets are "preview" in Dagster 1.13; they are what
# lets each batch be gated on its own rows, so we use them knowingly.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

LUFS_TOLERANCE_LU = 0.5
CEILING_DBTP = MASTER_CEILING_DBTP
LOSSLESS_CODECS = frozenset({"flac", "wav"})
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


def _measure_job(job: tuple[str, bytes, FileLimits]) -> dict[str, Any]:
    what, data, limits = job
    m, problems = check_file(data, what=what, limits=limits)
    return {
        "decoded": m is not None,
        "lufs_pyloudnorm": m.lufs_pyloudnorm if m else None,
        "lufs_ffmpeg": m.lufs_ffmpeg if m else None,
        "true_peak_dbtp": m.true_peak_dbtp if m else None,
        "duration_s": m.duration_s if m else None,
        "problems": problems,
    }


def _master_files(lh: Lakehouse, batch_id: str, *, workers: int) -> pd.DataFrame:
    """One row per stored file of the batch's masters (the FLAC master and
    every rendition), decoded from the audio store and measured again."""
    masters = lh.read("mastered_tracks", where={"batch_id": batch_id}).to_pylist()
    scores = {
        r["track_id"]: r["passed"]
        for r in lh.read("track_scores", where={"batch_id": batch_id}).to_pylist()
    }
    rows: list[dict[str, Any]] = []
    jobs: list[tuple[str, bytes, FileLimits]] = []
    for m in masters:
        for r in m["renditions"] or []:
            codec = r["codec"]
            lossless = codec in LOSSLESS_CODECS
            what = f"{m['track_id']} {'master' if lossless else 'rendition'} ({codec})"
            row = {
                "file": f"{m['track_id']}|{codec}|{r.get('bitrate_kbps')}",
                "track_id": m["track_id"],
                "what": what,
                "uri": r["uri"],
                "ceiling_dbtp": CEILING_DBTP if lossless else RENDITION_CEILING_DBTP,
                "score_passed": scores.get(m["track_id"]),
            }
            problems = []
            if row["score_passed"] is not True:
                problems.append(
                    "its track has no passing quality score"
                    if row["score_passed"] is None
                    else "its track failed quality scoring"
                )
            try:
                data = lh.audio.get(r["uri"])
            except StorageError as exc:
                data = b""
                problems.append(str(exc))
            row["sha256_matches"] = bool(data) and sha256_hex(data) == r["sha256"]
            if data and not row["sha256_matches"]:
                problems.append("stored bytes differ from what mastering wrote (sha256)")
            row["problems"] = problems
            rows.append(row)
            limits = FileLimits(
                target_lufs=TARGET_LUFS,
                lufs_tolerance=LUFS_TOLERANCE_LU,
                ceiling_dbtp=row["ceiling_dbtp"],
                duration_s=float(m["duration_s"]),
                duration_tolerance_s=DURATION_TOLERANCE_S,
            )
            jobs.append((what, data, limits))
    measured = parallel_map(_measure_job, jobs, workers=workers)
    for row, meas in zip(rows, measured, strict=True):
        row["problems"] = [*row["problems"], *meas.pop("problems")]
        row.update(meas)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["peak_over_ceiling_db"] = frame["true_peak_dbtp"] - frame["ceiling_dbtp"]
    return frame


def _describe(frame: pd.DataFrame, *, what: str, limit: int = 10) -> str:
    lines = [
        f"{r['what']}: {'; '.join(r['problems'])}" for _, r in frame.iterrows() if r["problems"]
    ]
    dupes = frame.loc[frame["file"].duplicated(), "what"].tolist() if "file" in frame else []
    lines += [f"{d}: listed more than once (duplicate track id)" for d in dupes]
    if not lines:
        return f"all {len(frame)} {what} on target"
    more = f" (and {len(lines) - limit} more)" if len(lines) > limit else ""
    return f"{len(lines)} problem(s) in {len(frame)} {what}{more}: " + " | ".join(lines[:limit])


@dg.asset_check(asset=mastered_tracks, partitions_def=batch_partitions, blocking=True)
def masters_on_loudness_target(
    context: dg.AssetCheckExecutionContext,
    lakehouse: LakehouseResource,
    generator: GeneratorResource,
) -> dg.AssetCheckResult:
    """The stored masters and renditions, decoded and measured again with
    independent meters: −14 LUFS ±0.5 (pyloudnorm), true peak ≤ −1 dBTP for
    masters and ≤ −0.5 dBTP for lossy renditions (FFmpeg ebur128), intact
    (sha256), of the right length, of tracks that passed scoring, each once.
    Blocking: a batch that fails never reaches the rotation."""
    lh = lakehouse.open()
    frame = _master_files(lh, context.partition_key, workers=generator.workers)
    threshold = {
        "lufs": [TARGET_LUFS - LUFS_TOLERANCE_LU, TARGET_LUFS + LUFS_TOLERANCE_LU],
        "true_peak_max_master": CEILING_DBTP,
        "true_peak_max_rendition": RENDITION_CEILING_DBTP,
        "meters": "pyloudnorm (loudness), FFmpeg ebur128 peak=true (true peak)",
    }
    if frame.empty:
        return dg.AssetCheckResult(
            passed=True,
            metadata={"rows": 0, "threshold": dg.MetadataValue.json(threshold)},
            description="no masters in this batch",
        )
    outcome = validate(
        frame.drop(columns=["problems"]),
        [
            *ids_unique_not_null("file"),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "track_id"}),
            in_set("decoded", [True]),
            in_set("sha256_matches", [True]),
            in_set("score_passed", [True]),
            between(
                "lufs_pyloudnorm",
                TARGET_LUFS - LUFS_TOLERANCE_LU,
                TARGET_LUFS + LUFS_TOLERANCE_LU,
            ),
            between("peak_over_ceiling_db", None, 0.0),
        ],
        name="master_files",
    )
    description = _describe(frame, what="stored files")
    passed = outcome.passed and description.startswith("all ")
    return dg.AssetCheckResult(
        passed=passed,
        description=description,
        metadata={
            "files": len(frame),
            "expectations": outcome.evaluated,
            "threshold": dg.MetadataValue.json(threshold),
            "actual": dg.MetadataValue.json(
                {
                    "lufs_min": _num(frame["lufs_pyloudnorm"].min()),
                    "lufs_max": _num(frame["lufs_pyloudnorm"].max()),
                    "peak_over_ceiling_max_db": _num(frame["peak_over_ceiling_db"].max()),
                    "undecodable": int((~frame["decoded"]).sum()),
                }
            ),
            "failures": dg.MetadataValue.json(outcome.failures),
            "files_measured": dg.MetadataValue.md(_files_table(frame)),
        },
    )


def _num(value: Any) -> float | None:
    return None if pd.isna(value) else round(float(value), 3)


def _files_table(frame: pd.DataFrame) -> str:
    head = "| file | LUFS (pyloudnorm) | dBTP (ebur128) | ceiling | problems |\n|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r['what']} | {_num(r['lufs_pyloudnorm'])} | {_num(r['true_peak_dbtp'])} "
        f"| {r['ceiling_dbtp']:g} | {'; '.join(r['problems']) or 'ok'} |\n"
        for _, r in frame.head(50).iterrows()
    )


@dg.asset_check(asset=rotation, partitions_def=batch_partitions, blocking=True)
def rotation_tracks_passed(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """The rotation rows this batch added: each once, each with a passing
    score and a master of this batch."""
    batch_id = context.partition_key
    lh = lakehouse.open()
    rot = lh.read("rotation", where={"batch_id": batch_id}, columns=["track_id"]).to_pandas()
    scores = lh.read("track_scores", where={"batch_id": batch_id}, columns=["track_id", "passed"])
    masters = lh.ids("mastered_tracks", where={"batch_id": batch_id})
    df = rot.merge(scores.to_pandas(), on="track_id", how="left")
    df["passed"] = df["passed"].astype("object").where(df["passed"].notna(), None)
    df["mastered"] = df["track_id"].isin(masters)
    bad = df[(df["passed"] != True) | ~df["mastered"]]  # noqa: E712
    result = _result(
        df,
        [
            *ids_unique_not_null("track_id"),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "passed"}),
            in_set("passed", [True]),
            in_set("mastered", [True]),
        ],
        name="rotation",
        threshold="every track this batch put in rotation passed scoring and was mastered",
        actual=len(bad) + int(df["track_id"].duplicated().sum()),
        allow_empty=True,
    )
    return result


track_checks = [
    tracks_ids_and_durations,
    scores_complete,
    masters_on_loudness_target,
    rotation_tracks_passed,
]
