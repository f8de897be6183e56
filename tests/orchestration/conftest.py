"""Fixtures shared by the Dagster and MLflow tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.resources import LocalMLflowResource


@pytest.fixture
def mlflow_local(tmp_path: Path) -> LocalMLflowResource:
    """An embedded MLflow store (SQLite + artifact folder) in the test's tmp dir."""
    return LocalMLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=str(tmp_path / "mlartifacts"),
    )
