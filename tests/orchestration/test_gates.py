"""The masters gate fails on broken batches, and a failed gate keeps the
batch out of the rotation: the run fails and the rotation table takes no
new commit."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf
from deltalake import DeltaTable, write_deltalake

from assets.tracks import MASTERS_GATE, generated_tracks, mastered_tracks, rotation, track_scores
from orchestration.checks import masters_on_loudness_target, track_checks
from orchestration.partitions import BATCHES
from orchestration.resources import LocalGeneratorResource, LocalLakehouseResource
from sonicforge.lakehouse import Lakehouse
from sonicforge.storage import sha256_hex

ASSETS = [generated_tracks, track_scores, mastered_tracks, rotation]
GOOD, BAD = "good", "bad"


def _instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, [GOOD, BAD])
    return instance


def _run(
    lake: Path,
    key: str,
    *,
    with_checks: bool = True,
    selection: list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    instance = instance or _instance()
    config = {"genres": ["house", "drum_and_bass"], "count": 2, "duration_s": 12.0}
    run_selection = selection or [a.key.to_user_string() for a in ASSETS]
    return dg.materialize(
        [*ASSETS, *(track_checks if with_checks else [])],
        instance=instance,
        partition_key=key,
        resources={
            "lakehouse": LocalLakehouseResource(root=str(lake)),
            "generator": LocalGeneratorResource(workers=1),
        },
        run_config={"ops": {"generated_tracks": {"config": config}}}
        if "generated_tracks" in run_selection
        else {},
        selection=run_selection,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake where batch ``good`` is on air and batch ``bad`` is mastered
    (its gate not yet run)."""
    lake = tmp_path_factory.mktemp("gates") / "lake"
    assert _run(lake, GOOD).success
    assert _run(
        lake,
        BAD,
        with_checks=False,
        selection=["generated_tracks", "track_scores", "mastered_tracks"],
    ).success
    return lake


def _copy(prepared: Path, lake: Path) -> Lakehouse:
    """A copy of the prepared lake whose master rows point at the copy's own
    files (stored URIs are absolute), so a test may tamper with them."""
    shutil.copytree(prepared, lake)
    lh = Lakehouse(str(lake))
    uri = lh.table_uri("mastered_tracks")
    old, new = str(prepared.resolve()), str(lake.resolve())
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    for row in rows:
        row["master_uri"] = row["master_uri"].replace(old, new)
        row["renditions"] = [{**r, "uri": r["uri"].replace(old, new)} for r in row["renditions"]]
    schema = pa.schema(DeltaTable(uri).schema().to_arrow())
    write_deltalake(uri, pa.Table.from_pylist(rows, schema=schema), mode="overwrite")
    return lh


def _masters(lh: Lakehouse) -> list[dict[str, Any]]:
    return sorted(
        lh.read("mastered_tracks", where={"batch_id": BAD}).to_pylist(), key=lambda m: m["track_id"]
    )


def _replace_master_flac(lh: Lakehouse, master: dict[str, Any], flac: bytes) -> None:
    """Store new FLAC bytes for ``master`` and rewrite its row to match, as
    a mastering bug would have written it."""
    Path(master["master_uri"]).write_bytes(flac)
    sha = sha256_hex(flac)
    renditions = [{**r, "sha256": sha} if r["codec"] == "flac" else r for r in master["renditions"]]
    DeltaTable(lh.table_uri("mastered_tracks")).delete(f"track_id = '{master['track_id']}'")
    lh.insert_new("mastered_tracks", [{**master, "master_sha256": sha, "renditions": renditions}])


def _louder_by_3_lu(lh: Lakehouse) -> str:
    master = _masters(lh)[0]
    audio, sr = sf.read(master["master_uri"], dtype="float32", always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, audio * np.float32(10 ** (3 / 20)), sr, format="FLAC", subtype="PCM_24")
    _replace_master_flac(lh, master, buf.getvalue())
    return master["track_id"]


def _corrupt_master_file(lh: Lakehouse) -> str:
    master = _masters(lh)[0]
    path = Path(master["master_uri"])
    data = path.read_bytes()
    path.write_bytes(data[:64] + bytes(len(data) - 64))  # header kept, frames zeroed
    return master["track_id"]


def _score_failed(lh: Lakehouse) -> str:
    track_id = _masters(lh)[0]["track_id"]
    DeltaTable(lh.table_uri("track_scores")).update(
        predicate=f"track_id = '{track_id}'", updates={"passed": "false"}
    )
    return track_id


def _duplicate_id(lh: Lakehouse) -> str:
    table = lh.read("mastered_tracks", where={"batch_id": BAD})
    first = table.slice(0, 1)
    schema = pa.schema(DeltaTable(lh.table_uri("mastered_tracks")).schema().to_arrow())
    write_deltalake(lh.table_uri("mastered_tracks"), first.cast(schema), mode="append")
    return str(first["track_id"][0])


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_louder_by_3_lu, "integrated loudness"),
        (
            _corrupt_master_file,
            "master (flac): stored bytes differ from what mastering wrote (sha256); does not decode",
        ),
        (_score_failed, "failed quality scoring"),
        (_duplicate_id, "duplicate track id"),
    ],
    ids=["master-3-LU-too-loud", "corrupt-master-file", "score-failed", "duplicate-id"],
)
def test_a_broken_batch_fails_the_gate_and_never_reaches_the_rotation(
    prepared: Path, tmp_path: Path, tamper: Callable[[Lakehouse], str], expected: str
) -> None:
    lake = tmp_path / "lake"
    lh = _copy(prepared, lake)
    broken_id = tamper(lh)
    rotation_version = lh.version("rotation")
    on_air = lh.count("rotation")

    result = _run(lake, BAD, selection=["mastered_tracks", "rotation"])

    assert not result.success  # a failed blocking check fails the run
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == masters_on_loudness_target.check_key.name
    ]
    assert not evaluation.passed
    assert evaluation.description is not None
    assert expected in evaluation.description and broken_id in evaluation.description
    assert not result.asset_materializations_for_node("rotation")
    assert lh.version("rotation") == rotation_version  # no new commit
    assert lh.count("rotation") == on_air


def test_an_intact_batch_passes_the_gate_and_goes_on_air(prepared: Path, tmp_path: Path) -> None:
    """The control: the same run on the untouched batch adds it to the rotation."""
    lake = tmp_path / "lake"
    lh = _copy(prepared, lake)
    version = lh.version("rotation")
    assert version is not None

    result = _run(lake, BAD, selection=["mastered_tracks", "rotation"])

    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gate = evaluations[masters_on_loudness_target.check_key.name]
    assert gate.passed, gate.description
    assert gate.description == "all 4 stored files on target"
    assert evaluations["rotation_tracks_passed"].passed
    assert lh.version("rotation") == version + 1
    assert set(lh.ids("rotation", where={"batch_id": BAD})) == {m["track_id"] for m in _masters(lh)}


def test_the_rotation_check_sees_only_its_own_batch(prepared: Path, tmp_path: Path) -> None:
    """A bad row another batch left in the rotation does not fail this batch's
    check; a bad row of this batch does."""
    lake = tmp_path / "lake"
    lh = _copy(prepared, lake)
    instance = _instance()  # the good batch's gate passes here before the tampering
    assert _run(lake, GOOD, selection=["mastered_tracks"], instance=instance).success
    good_track = sorted(lh.ids("rotation", where={"batch_id": GOOD}))[0]
    DeltaTable(lh.table_uri("track_scores")).update(
        predicate=f"track_id = '{good_track}'", updates={"passed": "false"}
    )
    result = _run(lake, BAD, selection=["mastered_tracks", "rotation"])
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "masters_on_loudness_target": True,
        "rotation_tracks_passed": True,
    }

    again = _run(lake, GOOD, selection=["rotation"], instance=instance)
    assert not again.success
    (evaluation,) = again.get_asset_check_evaluations()
    assert evaluation.check_name == "rotation_tracks_passed" and not evaluation.passed


def _failure_description(result: dg.ExecuteInProcessResult, step: str) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
    data = failure.step_failure_data
    assert data.user_failure_data is not None, data.error
    return str(data.user_failure_data.description)


def test_a_run_of_the_rotation_alone_cannot_bypass_a_failed_gate(
    prepared: Path, tmp_path: Path
) -> None:
    """Dagster stops downstream assets only inside the run of a failed
    blocking check; a later run that selects the rotation alone must still be
    refused, and so must one on an instance where the gate never ran."""
    assert masters_on_loudness_target.check_key.name == MASTERS_GATE
    lake = tmp_path / "lake"
    lh = _copy(prepared, lake)
    broken_id = _louder_by_3_lu(lh)
    version, on_air = lh.version("rotation"), lh.count("rotation")
    instance = _instance()
    assert not _run(lake, BAD, selection=["mastered_tracks", "rotation"], instance=instance).success

    alone = _run(lake, BAD, selection=["rotation"], instance=instance)
    assert not alone.success
    why = _failure_description(alone, "rotation")
    assert "masters gate (masters_on_loudness_target) failed" in why and broken_id in why

    never_gated = _run(lake, BAD, selection=["rotation"])
    assert not never_gated.success
    assert "has not run on this batch" in _failure_description(never_gated, "rotation")
    assert lh.version("rotation") == version and lh.count("rotation") == on_air


def test_the_rotation_alone_adds_a_batch_whose_gate_passed(prepared: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lh = _copy(prepared, lake)
    instance = _instance()
    gated = _run(lake, BAD, selection=["mastered_tracks"], instance=instance)
    assert gated.success
    assert not lh.ids("rotation", where={"batch_id": BAD})
    assert _run(lake, BAD, selection=["rotation"], instance=instance).success
    assert set(lh.ids("rotation", where={"batch_id": BAD})) == {m["track_id"] for m in _masters(lh)}
