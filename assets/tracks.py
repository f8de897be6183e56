"""The track pipeline: generated → scored → mastered → in rotation.

Each asset reads its inputs from the lakehouse for its batch partition,
skips tracks whose output already exists (so re-runs are idempotent), and
writes its own Delta table.
"""

# No ``from __future__ import annotations`` here: Dagster 1.13 reads the
# ``config`` parameter's annotation raw from the signature, and a string
# ("GenerationConfig") fails with DagsterInvalidPythonicConfigDefinitionError.
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter

from models.errors import ModelsError
from models.pipeline import (
    generate_encoded,
    master_one,
    mastered_row,
    parallel_map,
    rotation_weight,
    score_row,
    track_id_for,
    tracks_row,
)
from orchestration.config import GenerationConfig
from orchestration.partitions import batch_partitions
from orchestration.resources import GeneratorResource, LakehouseResource
from sonicforge.errors import StorageError
from sonicforge.lakehouse import Lakehouse

GROUP = "tracks"
# The blocking check on ``mastered_tracks`` (orchestration/checks.py) that
# the rotation asset asks for before it adds a batch.
MASTERS_GATE = "masters_on_loudness_target"


def _preview(rows: list[dict[str, Any]], columns: list[str], limit: int = 10) -> dg.MetadataValue:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n" for r in rows[:limit]
    )
    return dg.MetadataValue.md(head + body if rows else "_no rows_")


def _batch_rows(lh: Lakehouse, table: str, batch_id: str) -> dict[str, dict[str, Any]]:
    """The batch's rows of ``table`` by track id."""
    return {r["track_id"]: r for r in lh.read(table, where={"batch_id": batch_id}).to_pylist()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def _commercial(
    generator: GeneratorResource,
    choice: Any,
    config: GenerationConfig,
    context: dg.AssetExecutionContext,
) -> Any:
    """The choice for sold work: kept if its license allows commercial use,
    else the commercial fallback, or a failure that says why (refuse)."""
    from models.provenance import LicenseError, commercial_choice

    try:
        name = commercial_choice(choice.backend.name, policy=config.license_policy)
    except LicenseError as exc:
        raise dg.Failure(description=f"license: {exc}") from exc
    if name == choice.backend.name:
        return choice
    context.log.warning(
        f"{choice.backend.name} is not licensed for commercial use; this paid request uses {name}"
    )
    return generator.choose(name, overrides=config.sampling())


@dg.asset(
    partitions_def=batch_partitions,
    group_name=GROUP,
    kinds={"python", "deltalake"},
    metadata={"table": "tracks"},
)
def generated_tracks(
    context: dg.AssetExecutionContext,
    config: GenerationConfig,
    lakehouse: LakehouseResource,
    generator: GeneratorResource,
) -> dg.MaterializeResult:
    """Raw tracks of one batch, generated and stored with what they really are."""
    batch_id = context.partition_key
    lh = lakehouse.open()
    choice = generator.choose(config.backend, overrides=config.sampling())
    if config.commercial_only:
        choice = _commercial(generator, choice, config, context)
    backend = choice.backend
    seed = config.resolved_seed(batch_id)
    specs = backend.validate(
        config.track_specs(),
        duration_s=config.duration_s,
    )
    ids = [
        track_id_for(batch_id=batch_id, index=i, genre=s.genre, seed=seed + i, backend=backend.name)
        for i, s in enumerate(specs)
    ]
    existing = lh.ids("tracks", where={"batch_id": batch_id})
    todo = [(ids[i], spec, seed + i) for i, spec in enumerate(specs) if ids[i] not in existing]
    # The batch's MLflow run opens before anything can fail (even locating
    # the model's weights), so the rows carry its id and a failed batch is
    # recorded as a failed run.
    tracking = generator.tracking() if todo else None
    mlflow_run_id = None
    if tracking is not None:
        mlflow_run_id = tracking.start_batch(
            backend=backend.name,
            batch_id=batch_id,
            tags={"dagster.run_id": context.run_id, "dagster.partition": batch_id, **choice.tags},
        )
    try:
        if tracking is not None and mlflow_run_id is not None:
            from models.tracking import batch_params

            genres = [spec.genre for _, spec, _ in todo]
            params = batch_params(
                backend, duration_s=config.duration_s, seed=seed, count=len(todo), genres=genres
            )
            tracking.log_params(mlflow_run_id, params)
        encoded = generate_encoded(
            backend,
            [(spec, s) for _, spec, s in todo],
            duration_s=config.duration_s,
            workers=generator.workers,
            backend_options=choice.options,
        )
    except Exception as exc:
        if tracking is not None and mlflow_run_id is not None:
            tracking.fail_batch(mlflow_run_id, exc)
        raise
    rows = []
    for (track_id, _, _), enc in zip(todo, encoded, strict=True):
        uri, sha = lh.audio.put(f"raw/{batch_id}/{track_id}.flac", enc.flac)
        rows.append(
            tracks_row(
                enc,
                track_id=track_id,
                batch_id=batch_id,
                backend=backend,
                requested_duration_s=config.duration_s,
                raw_uri=uri,
                sha256=sha,
                request_id=config.request_id,
                dagster_run_id=context.run_id,
                mlflow_run_id=mlflow_run_id,
            )
        )
    inserted = lh.insert_new("tracks", rows)
    if tracking is not None and mlflow_run_id is not None:
        tracking.finish_batch(mlflow_run_id, tracks=rows)
    audio_s = sum(r["duration_s"] for r in rows)
    gen_s = sum(r["generation_s"] for r in rows)
    context.log.info(f"batch {batch_id}: generated {len(rows)}, skipped {len(existing)} existing")
    return dg.MaterializeResult(
        metadata={
            "generated": inserted,
            "skipped_existing": len(existing),
            "backend": backend.name,
            "model": f"{backend.model_name}@{backend.model_version}",
            "audio_seconds": audio_s,
            "realtime_factor": (audio_s / gen_s) if gen_s else 0.0,
            "mlflow_run_id": mlflow_run_id or "",
            "generator": dg.MetadataValue.json(choice.tags),
            "preview": _preview(rows, ["track_id", "genre", "bpm", "musical_key", "duration_s"]),
        }
    )


@dg.asset(
    partitions_def=batch_partitions,
    group_name=GROUP,
    kinds={"python", "deltalake"},
    deps=[generated_tracks],
    metadata={"table": "track_scores"},
)
def track_scores(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    generator: GeneratorResource,
) -> dg.MaterializeResult:
    """Loudness, peaks, tempo and spectrum of each raw track, and its quality verdict."""
    batch_id = context.partition_key
    lh = lakehouse.open()
    tracks = lh.read("tracks", where={"batch_id": batch_id}).to_pylist()
    done = lh.ids("track_scores", where={"batch_id": batch_id})
    jobs = []
    for t in tracks:
        if t["track_id"] in done:
            continue
        try:
            data = lh.audio.get(t["raw_uri"])
        except StorageError as exc:
            # A missing file scores as broken audio (reason recorded) rather
            # than stopping the batch.
            context.log.warning(str(exc))
            data = b""
        jobs.append((t, data))
    rows = parallel_map(score_row, jobs, workers=generator.workers)
    lh.insert_new("track_scores", rows)
    tracking = generator.tracking() if rows else None
    if tracking is not None:
        from models.tracking import log_batch_quality

        # Quality lands on the generation run each track came from.
        log_batch_quality(tracking, tracks, rows)
    passed = [r for r in rows if r["passed"]]
    failed = [r for r in rows if not r["passed"]]
    return dg.MaterializeResult(
        metadata={
            "scored": len(rows),
            "passed": len(passed),
            "failed": len(failed),
            "mean_quality_score": (sum(r["quality_score"] for r in rows) / len(rows))
            if rows
            else 0.0,
            "preview": _preview(
                rows, ["track_id", "quality_score", "passed", "integrated_lufs", "tempo_bpm_est"]
            ),
            "failures": _preview(failed, ["track_id", "reasons"]),
        }
    )


def _master_safely(job: tuple[dict[str, Any], bytes]) -> Any:
    try:
        return master_one(job)
    except ModelsError as exc:
        return f"{job[0]['track_id']}: {exc}"


@dg.asset(
    partitions_def=batch_partitions,
    group_name=GROUP,
    kinds={"python", "deltalake", "pedalboard"},
    deps=[track_scores],
    metadata={"table": "mastered_tracks"},
)
def mastered_tracks(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    generator: GeneratorResource,
) -> dg.MaterializeResult:
    """Passing tracks mastered to −14 LUFS / −1 dBTP, as a FLAC master and an MP3 rendition."""
    batch_id = context.partition_key
    lh = lakehouse.open()
    tracks = _batch_rows(lh, "tracks", batch_id)
    scores = lh.read("track_scores", where={"batch_id": batch_id}).to_pylist()
    done = lh.ids("mastered_tracks", where={"batch_id": batch_id})
    jobs = []
    for s in scores:
        if s["passed"] and s["track_id"] not in done:
            t = tracks[s["track_id"]]
            jobs.append((t, lh.audio.get(t["raw_uri"])))
    results = parallel_map(_master_safely, jobs, workers=generator.workers)
    rows, errors = [], []
    for m in results:
        if isinstance(m, str):
            context.log.error(f"mastering failed: {m}")
            errors.append(m)
            continue
        master_uri, master_sha = lh.audio.put(f"masters/{batch_id}/{m.track_id}.flac", m.flac)
        mp3_uri, mp3_sha = lh.audio.put(f"masters/{batch_id}/{m.track_id}.mp3", m.mp3)
        rows.append(
            mastered_row(
                m,
                batch_id=batch_id,
                master_uri=master_uri,
                master_sha256=master_sha,
                mp3_uri=mp3_uri,
                mp3_sha256=mp3_sha,
            )
        )
    lh.insert_new("mastered_tracks", rows)
    return dg.MaterializeResult(
        metadata={
            "mastered": len(rows),
            "failed": len(errors),
            "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in errors) or "_none_"),
            "max_lufs_deviation": max((abs(r["lufs_after"] + 14.0) for r in rows), default=0.0),
            "max_true_peak_dbtp": max((r["true_peak_after"] for r in rows), default=-120.0),
            "preview": _preview(rows, ["track_id", "lufs_before", "lufs_after", "true_peak_after"]),
        }
    )


@dg.asset(
    partitions_def=batch_partitions,
    group_name=GROUP,
    kinds={"python", "deltalake"},
    deps=[mastered_tracks],
    metadata={"table": "rotation"},
)
def rotation(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    """Mastered, passing tracks of the batch made eligible to air, weighted by quality."""
    batch_id = context.partition_key
    refusal = masters_gate_refusal(context.instance, batch_id)
    if refusal is not None:
        raise dg.Failure(description=f"batch {batch_id} is not added to the rotation: {refusal}")
    lh = lakehouse.open()
    tracks = _batch_rows(lh, "tracks", batch_id)
    scores = _batch_rows(lh, "track_scores", batch_id)
    masters = lh.read("mastered_tracks", where={"batch_id": batch_id}).to_pylist()
    now = datetime.now(UTC)
    rows = [
        {
            "track_id": m["track_id"],
            "batch_id": batch_id,
            "genre": tracks[m["track_id"]]["genre"],
            "weight": rotation_weight(scores[m["track_id"]]["quality_score"]),
            "duration_s": m["duration_s"],
            "quality_score": scores[m["track_id"]]["quality_score"],
            "eligible_from": now,
            "retired_at": None,
        }
        for m in masters
        if scores.get(m["track_id"], {}).get("passed")
    ]
    added = lh.insert_new("rotation", rows)
    return dg.MaterializeResult(
        metadata={
            "added": added,
            "rotation_size": lh.count("rotation"),
            "airtime_added_s": sum(r["duration_s"] for r in rows),
            "preview": _preview(rows, ["track_id", "genre", "weight", "quality_score"]),
        }
    )


def masters_gate_refusal(instance: dg.DagsterInstance, batch_id: str) -> str | None:
    """Why the batch may not enter the rotation, or None when the masters gate
    passed on the batch's latest masters.

    Dagster's blocking check stops ``rotation`` only inside the run that ran
    the check; a run that selects ``rotation`` alone would skip it. So the
    asset reads the gate's last verdict for its partition from the instance.
    """
    key = dg.AssetCheckKey(mastered_tracks.key, MASTERS_GATE)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=batch_id)
    ).get(key)
    evaluation = latest.evaluation if latest is not None else None
    if evaluation is None:
        return f"the masters gate ({MASTERS_GATE}) has not run on this batch; run it first"
    if not evaluation.passed:
        return f"the masters gate ({MASTERS_GATE}) failed: {evaluation.description}"
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=mastered_tracks.key, asset_partitions=[batch_id]),
        limit=1,
    ).records
    target = evaluation.target_materialization_data
    if records and target is not None and records[0].storage_id != target.storage_id:
        return (
            "mastered_tracks was materialized again after the masters gate last passed; "
            "run the gate again"
        )
    return None
