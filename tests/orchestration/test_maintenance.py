from __future__ import annotations

from datetime import UTC, datetime

from orchestration.maintenance import lakehouse_maintenance_job
from orchestration.resources import LocalLakehouseResource
from sonicforge.lakehouse import Lakehouse


def test_maintenance_compacts_small_files(lakehouse: Lakehouse) -> None:
    for i in range(5):  # five appends, five small files
        lakehouse.insert_new(
            "plays",
            [
                {
                    "play_id": f"p{i}",
                    "track_id": "t",
                    "started_at": datetime(2026, 11, 24, tzinfo=UTC),
                    "ended_at": None,
                    "listeners": 3,
                    "skipped": False,
                    "channel": "main",
                }
            ],
        )
    files_before = len(lakehouse._open("plays").file_uris())  # type: ignore[union-attr]
    result = lakehouse_maintenance_job.execute_in_process(
        resources={"lakehouse": LocalLakehouseResource(root=lakehouse.root_uri)},
        run_config={"ops": {"compact_and_vacuum_tables": {"config": {"retention_hours": 0}}}},
        raise_on_error=False,
    )
    assert result.success
    report = result.output_for_node("compact_and_vacuum_tables")
    assert report["plays"]["files_removed"] == files_before >= 5
    assert len(lakehouse._open("plays").file_uris()) == 1  # type: ignore[union-attr]
    assert lakehouse.count("plays") == 5
