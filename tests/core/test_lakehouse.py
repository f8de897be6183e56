from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sonicforge.errors import SonicForgeError, StorageError, UnknownTableError
from sonicforge.lakehouse import Lakehouse
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
