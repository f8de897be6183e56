from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from orchestration.resources import S3LakehouseResource
from sonicforge.errors import ConfigurationError, SonicForgeError, StorageError, UnknownTableError
from sonicforge.lakehouse import Lakehouse, safe_storage_options
from sonicforge.storage import ObjectStore, sha256_hex
from sonicforge.tables import CONTRACTS, ROTATION, contract

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def rotation_row(track_id: str, weight: float = 1.0) -> dict:
    return {
        "track_id": track_id,
        "batch_id": "b1",
        "genre": "house",
        "weight": weight,
        "duration_s": 180.0,
        "quality_score": 80.0,
        "eligible_from": NOW,
        "retired_at": None,
    }


def test_every_contract_has_key_columns_in_schema() -> None:
    for c in CONTRACTS.values():
        assert set(c.key) <= set(c.columns), c.name
        for col in c.schema:
            if pa.types.is_timestamp(col.type):
                assert col.type == pa.timestamp("us", tz="UTC"), (c.name, col.name)


def test_unknown_table_lists_known_tables(lakehouse: Lakehouse) -> None:
    with pytest.raises(UnknownTableError, match=r"known tables: .*rotation"):
        contract("rotashun")
    with pytest.raises(UnknownTableError):
        lakehouse.read("rotashun")


def test_ensure_creates_empty_tables_with_contract_schema(lakehouse: Lakehouse) -> None:
    assert lakehouse.table_names() == list(CONTRACTS)
    table = lakehouse.read("rotation")
    assert table.num_rows == 0
    assert table.schema.names == ROTATION.columns


def test_insert_new_is_idempotent(lakehouse: Lakehouse) -> None:
    assert lakehouse.insert_new("rotation", [rotation_row("a"), rotation_row("b")]) == 2
    # Re-running the same partition inserts nothing and keeps the first values.
    assert lakehouse.insert_new("rotation", [rotation_row("a", 9.0), rotation_row("c")]) == 1
    rows = {r["track_id"]: r for r in lakehouse.read("rotation").to_pylist()}
    assert sorted(rows) == ["a", "b", "c"]
    assert rows["a"]["weight"] == 1.0


def test_upsert_updates_matched_rows(lakehouse: Lakehouse) -> None:
    lakehouse.insert_new("rotation", [rotation_row("a")])
    assert lakehouse.upsert("rotation", [rotation_row("a", 2.5), rotation_row("z")]) == {
        "inserted": 1,
        "updated": 1,
    }
    weights = {r["track_id"]: r["weight"] for r in lakehouse.read("rotation").to_pylist()}
    assert weights == {"a": 2.5, "z": 1.0}


def test_read_filters_by_equality(lakehouse: Lakehouse) -> None:
    lakehouse.insert_new("rotation", [rotation_row("a"), {**rotation_row("b"), "batch_id": "b2"}])
    assert lakehouse.read("rotation", where={"batch_id": "b2"})["track_id"].to_pylist() == ["b"]


def test_rows_that_break_the_contract_are_refused(lakehouse: Lakehouse) -> None:
    bad = rotation_row("a")
    del bad["weight"]
    bad["weight"] = "heavy"
    with pytest.raises(SonicForgeError, match="rotation"):
        lakehouse.insert_new("rotation", [bad])
    with pytest.raises(SonicForgeError, match="duplicate"):
        lakehouse.insert_new("rotation", [rotation_row("a"), rotation_row("a")])
    assert lakehouse.count("rotation") == 0


def test_object_store_round_trip_and_atomic_names(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "audio"))
    uri, sha = store.put("raw/b1/x.flac", b"abc")
    assert sha == sha256_hex(b"abc")
    assert store.exists(uri) and store.get(uri) == b"abc"
    assert [p.name for p in (tmp_path / "audio" / "raw" / "b1").iterdir()] == ["x.flac"]
    store.delete(uri)
    assert not store.exists(uri)
    with pytest.raises(StorageError, match="no object"):
        store.get(uri)


def test_object_store_rejects_unknown_scheme() -> None:
    with pytest.raises(StorageError, match="allowed: a local path, file://, s3://"):
        ObjectStore("ftp://host/audio")


def test_s3_store_maps_storage_options() -> None:
    store = ObjectStore(
        "s3://bucket/lake/audio",
        storage_options={
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
        },
    )
    assert store.uri_for("raw/x.flac") == "s3://bucket/lake/audio/raw/x.flac"
    assert store._fs.region == "eu-west-1"


def test_s3_commits_use_conditional_put_never_the_unsafe_rename() -> None:
    resource = S3LakehouseResource(uri="s3://radio/lake", region="eu-west-1", allow_http=True)
    options = resource.storage_options()
    assert options["conditional_put"] == "etag"
    assert not any(k.upper() == "AWS_S3_ALLOW_UNSAFE_RENAME" for k in options)
    # The settings path (Lakehouse.from_settings) gets the same, without the resource.
    assert Lakehouse("s3://radio/lake").storage_options == {"conditional_put": "etag"}
    assert safe_storage_options("s3://radio/lake", {"AWS_CONDITIONAL_PUT": "ETag"}) == {
        "AWS_CONDITIONAL_PUT": "ETag"
    }
    # Local tables commit with an atomic rename of their own: left as given.
    assert safe_storage_options("/var/lake", {}) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, "AWS_S3_ALLOW_UNSAFE_RENAME='true' lets"),
        ({"aws_s3_allow_unsafe_rename": "1"}, "remove it"),
        ({"conditional_put": "disabled"}, "allowed: 'etag'"),
    ],
)
def test_unsafe_s3_commit_options_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Lakehouse("s3://radio/lake", storage_options=options)


def test_the_unsafe_rename_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    with pytest.raises(ConfigurationError, match="environment variable AWS_S3_ALLOW_UNSAFE_RENAME"):
        Lakehouse("s3://radio/lake")
    monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "false")
    assert Lakehouse("s3://radio/lake").storage_options == {"conditional_put": "etag"}


def test_a_merge_that_lost_a_race_is_rerun_only_when_keys_collide(
    lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer whose snapshot is one commit old: disjoint keys commit at
    once (the merge's key filter keeps it off the winner's files); a key the
    winner wrote conflicts, and the merge is re-run on the new version."""
    from deltalake import DeltaTable

    real_open = lakehouse._open
    opened: list[DeltaTable | None] = []
    stale: list[DeltaTable] = []

    def open_stale_first(name: str) -> DeltaTable | None:
        opened.append(stale.pop() if stale else real_open(name))
        return opened[-1]

    monkeypatch.setattr(lakehouse, "_open", open_stale_first)
    other = Lakehouse(lakehouse.root_uri)

    stale.append(DeltaTable(lakehouse.table_uri("rotation")))
    assert other.insert_new("rotation", [rotation_row("a")]) == 1
    assert lakehouse.insert_new("rotation", [rotation_row("b")]) == 1
    assert len(opened) == 1

    opened.clear()
    stale.append(DeltaTable(lakehouse.table_uri("rotation")))
    assert other.insert_new("rotation", [rotation_row("c")]) == 1
    assert lakehouse.insert_new("rotation", [rotation_row("c")]) == 0
    assert len(opened) == 2
    assert sorted(lakehouse.read("rotation")["track_id"].to_pylist()) == ["a", "b", "c"]
