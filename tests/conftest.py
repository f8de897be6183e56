"""Shared fixtures: a temporary lakehouse and settings, and the real
PostgreSQL / Redis when CI provides their URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads or writes the developer's ./var or their SONICFORGE_*."""
    for key in list(os.environ):
        if key.startswith("SONICFORGE_") and not key.startswith("SONICFORGE_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SONICFORGE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture
def lakehouse(tmp_path: Path) -> Lakehouse:
    lh = Lakehouse(str(tmp_path / "lake"))
    lh.ensure_all()
    return lh


def _ci_service_url(variable: str, service: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set; .ci/run sets it to the CI {service}")
    return url


@pytest.fixture
def postgres_url() -> str:
    return _ci_service_url("SONICFORGE_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    return _ci_service_url("SONICFORGE_TEST_REDIS_URL", "Redis")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models' matrices are too small to share out; on a busy machine
    extra torch threads only spin and wait."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# What the CI service fixtures above skip is counted and explained once at
# the end of a run, with the local services it could have used: a machine
# where PostgreSQL and Redis run should not skip those tests unnoticed.
_SERVICES = {
    "SONICFORGE_TEST_POSTGRES_URL": (
        "PostgreSQL",
        ("127.0.0.1", 5432),
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ),
    "SONICFORGE_TEST_REDIS_URL": ("Redis", ("127.0.0.1", 6379), "redis://127.0.0.1:6379/15"),
}


def _listening(address: tuple[str, int]) -> bool:
    import socket

    try:
        with socket.create_connection(address, timeout=0.2):
            return True
    except OSError:
        return False


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    for variable, (service, address, example) in _SERVICES.items():
        count = sum(
            1 for r in skipped if variable in str(getattr(r, "longrepr", "")) and r.when == "setup"
        )
        if not count:
            continue
        here = f"; a {service} listens on {address[0]}:{address[1]}" if _listening(address) else ""
        terminalreporter.write_line(
            f"{count} tests skipped because {variable} is unset{here}: run them with "
            f"{variable}={example} (or .ci/run, which sets it)",
            yellow=True,
        )
