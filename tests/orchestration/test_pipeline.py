"""The track pipeline end to end through Dagster, into a temporary lakehouse."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.tracks import generated_tracks, mastered_tracks, rotation, track_scores
from models.pipeline import plan_specs
from orchestration.checks import track_checks
from orchestration.definitions import defs
from orchestration.jobs import GENERATE_JOB
from orchestration.partitions import BATCHES
from orchestration.resources import LocalGeneratorResource, LocalLakehouseResource
from sonicforge.lakehouse import Lakehouse

ASSETS = [generated_tracks, track_scores, mastered_tracks, rotation]


def test_definitions_load() -> None:
    job = defs.resolve_job_def(GENERATE_JOB)
    assert {n.name for n in job.graph.nodes} >= {"generated_tracks", "rotation"}
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys >= {"generated_tracks", "track_scores", "mastered_tracks", "rotation"}
    assert {"listener_interactions", "track_features", "recommender_model"} <= keys  # ml group


def _materialize(lake: Path, instance: dg.DagsterInstance, key: str, *, selection=None, **config):
    run_config = {
        "ops": {
            "generated_tracks": {
                "config": {"genres": ["house", "ambient"], "count": 2, "duration_s": 12.0, **config}
            }
        }
    }
    return dg.materialize(
        [*ASSETS, *track_checks],
        instance=instance,
        partition_key=key,
        resources={
            "lakehouse": LocalLakehouseResource(root=str(lake)),
            "generator": LocalGeneratorResource(workers=1),
        },
        run_config=run_config if selection is None or "generated_tracks" in selection else {},
        selection=selection,
        raise_on_error=False,
    )


@pytest.fixture
def instance() -> dg.DagsterInstance:
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions(BATCHES, ["b1", "b2"])
    return inst


def test_pipeline_materializes_every_table(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    lake = tmp_path / "lake"
    result = _materialize(lake, instance, "b1")
    assert result.success
    lh = Lakehouse(str(lake))
    tracks = lh.read("tracks").to_pylist()
    assert [t["genre"] for t in sorted(tracks, key=lambda t: t["seed"])] == ["house", "ambient"]
    for t in tracks:
        assert t["batch_id"] == "b1" and t["sample_rate"] == 44100 and t["channels"] == 2
        assert abs(t["duration_s"] - 12.0) < 0.5
        assert lh.audio.exists(t["raw_uri"])
    scores = {s["track_id"]: s for s in lh.read("track_scores").to_pylist()}
    assert set(scores) == {t["track_id"] for t in tracks}
    assert all(s["passed"] for s in scores.values()), [s["reasons"] for s in scores.values()]
    masters = lh.read("mastered_tracks").to_pylist()
    assert len(masters) == 2
    for m in masters:
        assert abs(m["lufs_after"] + 14.0) <= 1.0 and m["true_peak_after"] <= -1.0
        assert {r["codec"] for r in m["renditions"]} == {"flac", "mp3"}
        assert all(lh.audio.exists(r["uri"]) for r in m["renditions"])
    on_air = lh.read("rotation").to_pylist()
    assert {r["track_id"] for r in on_air} == set(scores)
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    assert (
        result.asset_materializations_for_node("generated_tracks")[0].metadata["generated"].value
        == 2
    )


def test_rerunning_a_partition_adds_nothing(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    lake = tmp_path / "lake"
    assert _materialize(lake, instance, "b1").success
    lh = Lakehouse(str(lake))
    before = {
        name: lh.count(name) for name in ("tracks", "track_scores", "mastered_tracks", "rotation")
    }
    versions = {name: lh.version(name) for name in before}
    assert _materialize(lake, instance, "b1").success
    after = {name: lh.count(name) for name in before}
    assert after == before
    assert (
        lh.read("tracks")["track_id"].to_pylist()
        == lh.read("tracks")["track_id"].unique().to_pylist()
    )
    # Nothing was regenerated or rewritten: no table took a new commit.
    assert {name: lh.version(name) for name in before} == versions


def test_a_corrupt_track_fails_scoring_without_stopping_the_batch(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    lake = tmp_path / "lake"
    assert _materialize(lake, instance, "b2", selection=["generated_tracks"]).success
    lh = Lakehouse(str(lake))
    broken, healthy = sorted(lh.read("tracks").to_pylist(), key=lambda t: t["seed"])
    raw = Path(broken["raw_uri"])
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 10])  # truncated upload
    result = _materialize(
        lake, instance, "b2", selection=["track_scores", "mastered_tracks", "rotation"]
    )
    assert result.success
    scores = {s["track_id"]: s for s in lh.read("track_scores").to_pylist()}
    assert not scores[broken["track_id"]]["passed"]
    assert any("truncated" in r or "corrupt" in r for r in scores[broken["track_id"]]["reasons"])
    assert scores[healthy["track_id"]]["passed"]
    assert lh.read("rotation")["track_id"].to_pylist() == [healthy["track_id"]]


def test_bad_config_is_refused_with_allowed_values(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = _materialize(tmp_path / "lake", instance, "b1", genres=["polka"])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.cause.message  # type: ignore[union-attr]
    assert "polka" in message and "house" in message


@pytest.mark.parametrize("count", [0, -1, 65, 1000])
def test_plan_specs_refuses_a_count_outside_1_to_64(count: int) -> None:
    with pytest.raises(ValueError, match=rf"value {count} for 'count' is out of range \[1, 64\]"):
        plan_specs(["house"], count)


@pytest.mark.parametrize("count", [1, 64])
def test_plan_specs_accepts_the_ends_of_the_range(count: int) -> None:
    specs = plan_specs(["house", "ambient"], count)
    assert len(specs) == count and specs[0].genre == "house"
