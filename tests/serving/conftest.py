"""Fixtures of the serving suite: the app on a migrated app database
(SQLite, and PostgreSQL when CI gives its URL: every test that takes
``database`` runs on both), a lakehouse seeded with real rows and MP3s,
an in-memory station, and helpers to create users of any role."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text, update

from serving.app import create_app
from serving.context import AppContext, build_context
from serving.db.models import Base, User
from serving.db.session import Database, migrate
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from tests.serving.factories import SeededTrack, seed_tracks

JWT_SECRET = "test-secret-" + "k" * 40
PASSWORD = "Tempo-Rubato-42"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating is slower)."""
    path = tmp_path_factory.mktemp("appdb") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[tuple[str, str] | None]:
    url = os.environ.get("SONICFORGE_TEST_POSTGRES_URL")
    if not url:
        yield None
        return
    schema = f"sf_serving_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    migrate(url, schema=schema)
    yield url, schema
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite:///{path}")
    else:
        request.getfixturevalue("postgres_url")  # skips, with its reason, when unset
        url, schema = request.getfixturevalue("pg_schema")
        db = Database(url, schema=schema)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.dispose()


@pytest.fixture
def serving_settings(tmp_path: Path, lakehouse: Lakehouse) -> Settings:
    return settings_for(tmp_path, lakehouse)


def settings_for(tmp_path: Path, lakehouse: Lakehouse, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "environment": "test",
        "jwt_secret": JWT_SECRET,
        "bcrypt_rounds": 4,
        "access_log": False,
        "lakehouse_uri": lakehouse.root_uri,
        "lakehouse_cache_check_s": 0.0,
        "top_tracks_cache_s": 0.0,
        "rate_limit_ip": "100000/minute",
        "rate_limit_principal": "100000/minute",
        "login_rate_limit_ip": "1000/minute",
        "web_base_url": "https://radio.example.com",
    }
    return Settings(**(values | overrides))


@pytest.fixture
def station() -> InMemoryStationState:
    return InMemoryStationState()


@pytest.fixture
def make_context(
    serving_settings: Settings,
    database: Database,
    lakehouse: Lakehouse,
    station: InMemoryStationState,
) -> Callable[..., AppContext]:
    def make(**overrides: Any) -> AppContext:
        settings = serving_settings.model_copy(update=overrides) if overrides else serving_settings
        return build_context(settings, db=database, lakehouse=lakehouse, station=station)

    return make


@pytest.fixture
def ctx(make_context: Callable[..., AppContext]) -> AppContext:
    return make_context()


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(context=ctx)) as c:
        yield c


@pytest.fixture
def seeded(lakehouse: Lakehouse) -> list[SeededTrack]:
    return seed_tracks(lakehouse)


@dataclass
class Account:
    user_id: str
    email: str
    password: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


class Users:
    """Registers accounts through the API and gives them roles."""

    def __init__(self, client: TestClient, ctx: AppContext) -> None:
        self.client = client
        self.ctx = ctx
        self.count = 0

    def create(self, role: str = "listener", *, email: str | None = None) -> Account:
        self.count += 1
        email = email or f"user{self.count}-{secrets.token_hex(3)}@example.com"
        r = self.client.post(
            "/api/v1/auth/register",
            json={"email": email, "display_name": "U", "password": PASSWORD},
        )
        assert r.status_code == 202, r.text
        with self.ctx.db.session() as s:
            user_id = s.scalars(select(User.id).where(User.email == email.lower())).one()
            if role != "listener":
                s.execute(update(User).where(User.id == user_id).values(role=role))
                s.commit()
        tokens = self.login(email)
        return Account(user_id, email, PASSWORD, tokens["access_token"], tokens["refresh_token"])

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def users(client: TestClient, ctx: AppContext) -> Users:
    return Users(client, ctx)


@pytest.fixture
def dagster_webserver() -> Iterator[tuple[Any, Any]]:
    """A real Dagster webserver app (ASGI, in process) on the project's code
    location, with a queued run coordinator and no daemon: runs are created
    and stay QUEUED, so nothing executes. Yields ``(asgi_app, instance)``."""
    from dagster import instance_for_test
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster_webserver.app import create_app_from_workspace_process_context

    queued = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            module_name="orchestration.definitions", working_directory=os.getcwd()
        ),
        location_name="sonicforge",
    )
    with (
        instance_for_test(overrides={"run_coordinator": queued}) as instance,
        WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(origin)) as workspace,
    ):
        yield create_app_from_workspace_process_context(workspace), instance


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api_workers(tmp_path: Path) -> Iterator[Callable[..., list[str]]]:
    """Starts API processes (as uvicorn workers or replicas would run)
    sharing one app database and the given Redis, each on its own port so a
    test can pick the worker: ``api_workers(redis_url=..., env={...})``
    returns their base URLs. Stopped at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*, redis_url: str, env: dict[str, str] | None = None, n: int = 2) -> list[str]:
        db = f"sqlite:///{tmp_path / 'app.db'}"
        migrate(db)
        environ = {
            **os.environ,
            "SONICFORGE_ENVIRONMENT": "test",
            "SONICFORGE_JWT_SECRET": JWT_SECRET,
            "SONICFORGE_BCRYPT_ROUNDS": "4",
            "SONICFORGE_VAR_DIR": str(tmp_path / "var"),
            "SONICFORGE_APP_DATABASE_URL": db,
            "SONICFORGE_REDIS_URL": redis_url,
            "SONICFORGE_RATE_LIMIT_KEY_PREFIX": f"sonicforge-test:{secrets.token_hex(4)}",
            "SONICFORGE_ACCESS_LOG": "false",
            "SONICFORGE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        ports = [_free_port() for _ in range(n)]
        for port in ports:
            argv = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
                    "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
            procs.append(subprocess.Popen(argv, env=environ))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/live", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the API workers did not start"
                time.sleep(0.2)
        return urls

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
