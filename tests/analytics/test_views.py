"""Every analytics table is a DuckDB view in ``sonicforge sql`` and the DuckDB file."""

from __future__ import annotations

from pathlib import Path

from analytics.sql import SqlEngine
from sonicforge.lakehouse import Lakehouse

TABLES = {"events", "votes", "listener_sessions", "daily_track_metrics", "trending_tracks",
          "kpis_daily", "experiment_results"}  # fmt: skip


def test_the_analytics_tables_are_views(lakehouse: Lakehouse, tmp_path: Path) -> None:
    engine = SqlEngine(lakehouse, database=tmp_path / "sonicforge.duckdb")
    assert set(engine.views) >= TABLES
    assert dict(engine.table_counts())["events"] == 0
    engine.close()


def test_event_tables_are_partitioned_by_day(lakehouse: Lakehouse) -> None:
    from deltalake import DeltaTable

    for name in ("events", "votes", "listener_sessions", "daily_track_metrics", "kpis_daily"):
        assert DeltaTable(lakehouse.table_uri(name)).metadata().partition_columns == ["day"], name
