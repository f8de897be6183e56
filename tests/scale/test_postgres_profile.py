"""The production profile on a real PostgreSQL: Dagster's run, event-log and
schedule storage on dagster-postgres, MLflow's backend store and the app
database on PostgreSQL. A batch is materialized and its runs read back
through fresh connections."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orchestration.config import GenerationConfig
from orchestration.launch import ensure_dagster_home, launch_generation
from serving.db.session import Database, migrate
from sonicforge.settings import Settings, get_settings


@pytest.fixture
def databases(postgres_url: str) -> Iterator[dict[str, str]]:
    """Three fresh databases on the test server: app, dagster, mlflow."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    tag = secrets.token_hex(3)
    names = {kind: f"sf15_{kind}_{tag}" for kind in ("app", "dagster", "mlflow")}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(postgres_url)
    yield {
        kind: base.set(database=name).render_as_string(hide_password=False)
        for kind, name in names.items()
    }
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.mark.slow
def test_a_batch_on_the_postgresql_profile(
    tmp_path: Path,
    databases: dict[str, str],
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "SONICFORGE_ENVIRONMENT": "production",
        "SONICFORGE_LAKEHOUSE_URI": str(tmp_path / "lake"),
        "SONICFORGE_REDIS_URL": redis_url,
        "SONICFORGE_APP_DATABASE_URL": databases["app"],
        "SONICFORGE_MLFLOW_TRACKING_URI": databases["mlflow"],
        "SONICFORGE_DAGSTER_POSTGRES_URL": databases["dagster"],
        "SONICFORGE_JWT_SECRET": secrets.token_hex(32),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    get_settings.cache_clear()
    settings = get_settings()
    settings.check_production()
    settings.check_serving()

    # The app database: migrated and answering as PostgreSQL.
    migrate(settings.resolved_app_database_url)
    app_db = Database(settings.resolved_app_database_url)
    app_db.ping()
    assert app_db.backend == "postgresql"
    app_db.dispose()

    ensure_dagster_home(settings)
    assert "postgres_url" in (home / "dagster.yaml").read_text()
    from orchestration.definitions import build_definitions

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = launch_generation(
            GenerationConfig(genres=["house"], count=2, duration_s=10.0, seed=5),
            defs=build_definitions(),
            instance=instance,
        )
    assert result.success, (result.failed_steps, result.failed_checks)

    # Read back through a new instance: the run, its partition, its assets.
    with dg.DagsterInstance.from_config(str(home)) as fresh:
        records = fresh.get_run_records(dg.RunsFilter(tags={"dagster/partition": result.batch_id}))
        assert [r.dagster_run.run_id for r in records] == [result.run_id]
        assert records[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert result.batch_id in fresh.get_dynamic_partitions("batches")
        for key in ("generated_tracks", "track_scores", "mastered_tracks", "rotation"):
            event = fresh.get_latest_materialization_event(dg.AssetKey(key))
            assert event is not None and event.run_id == result.run_id, key

    # MLflow's backend store on PostgreSQL holds the batch's run.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, filter_string=f"tags.`sonicforge.batch_id` = '{result.batch_id}'"
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert Settings().dagster_postgres_url == databases["dagster"]
