from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from analytics.sql import SqlEngine, SqlError, delta_extension_path, format_grid, render
from cli.main import main
from sonicforge.lakehouse import Lakehouse

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _rows(n: int) -> list[dict]:
    return [
        {
            "track_id": f"t{i}",
            "batch_id": "b1",
            "genre": "house" if i % 2 else "techno",
            "weight": 1.0 + i,
            "duration_s": 180.0,
            "quality_score": 50.0 + i,
            "eligible_from": NOW,
            "retired_at": None,
        }
        for i in range(n)
    ]


def test_bundled_delta_extension_is_used(lakehouse: Lakehouse) -> None:
    assert delta_extension_path() is not None
    engine = SqlEngine(lakehouse)
    assert engine.uses_delta_extension


def test_views_see_new_table_versions(lakehouse: Lakehouse) -> None:
    engine = SqlEngine(lakehouse)
    assert dict(engine.table_counts())["rotation"] == 0
    lakehouse.insert_new("rotation", _rows(4))
    result = engine.query(
        "select genre, count(*) n, sum(weight) w from rotation group by 1 order by 1"
    ).to_pylist()
    assert result == [{"genre": "house", "n": 2, "w": 6.0}, {"genre": "techno", "n": 2, "w": 4.0}]


def test_query_parameters_and_errors(lakehouse: Lakehouse) -> None:
    lakehouse.insert_new("rotation", _rows(3))
    engine = SqlEngine(lakehouse)
    assert engine.query("select track_id from rotation where track_id = ?", ["t1"]).num_rows == 1
    with pytest.raises(SqlError, match="tables: tracks"):
        engine.query("select * from no_such_table")
    with pytest.raises(SqlError, match="empty query"):
        engine.query("  ")


def test_render_formats(lakehouse: Lakehouse, tmp_path) -> None:
    lakehouse.insert_new("rotation", _rows(2))
    table = SqlEngine(lakehouse).query("select track_id, weight from rotation order by 1")
    assert render(table, "csv").decode().splitlines() == ['"track_id","weight"', '"t0",1', '"t1",2']
    assert json.loads(render(table, "json")) == [
        {"track_id": "t0", "weight": 1.0},
        {"track_id": "t1", "weight": 2.0},
    ]
    grid = format_grid(table)
    assert "| track_id | weight |" in grid and grid.rstrip().endswith("(2 rows)")


def test_database_file_keeps_views(lakehouse: Lakehouse, tmp_path) -> None:
    lakehouse.insert_new("rotation", _rows(2))
    db = tmp_path / "analyst.duckdb"
    SqlEngine(lakehouse, database=db).close()
    # A later session opens the file: the views are there and see new rows.
    lakehouse.insert_new("rotation", _rows(5))
    engine = SqlEngine(Lakehouse(lakehouse.root_uri), database=db)
    assert engine.con.execute("select count(*) from rotation").fetchone() == (5,)


def test_cli_sql(lakehouse: Lakehouse, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("SONICFORGE_LAKEHOUSE_URI", lakehouse.root_uri)
    from sonicforge.settings import get_settings

    get_settings.cache_clear()
    lakehouse.insert_new("rotation", _rows(3))
    assert main(["sql"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"\| rotation +\| 3 +\|", listing), listing  # width follows the names
    assert main(["sql", "select count(*) as n from rotation"]) == 0
    assert "| 3 |" in capsys.readouterr().out
    out = tmp_path / "r.parquet"
    assert main(["sql", "select * from rotation", "--format", "parquet", "--output", str(out)]) == 0
    assert pq.read_table(out).num_rows == 3
    out_csv = tmp_path / "r.csv"
    assert main(["sql", "select track_id from rotation order by 1", "-o", str(out_csv)]) == 0
    assert out_csv.read_text().splitlines()[1] == '"t0"'
    capsys.readouterr()
    assert main(["sql", "select * from nowhere"]) == 2
    assert "error: Catalog Error" in capsys.readouterr().err
    assert main(["sql", "select 1", "--format", "parquet"]) == 2
    assert "needs --output" in capsys.readouterr().err
