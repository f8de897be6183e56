"""Fixtures of the payments suite: the serving app (SQLite, and PostgreSQL
when CI gives its URL) wired to a Stripe stand-in on loopback, webhook
delivery with real signatures, and a launcher that records the runs a
request asks Dagster for (the end-to-end test uses the real one)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext, build_context
from serving.db.session import Database
from serving.schemas.pipeline import PipelineRunCreate, PipelineRunPublic
from serving.services.dagster import PipelineLauncher
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from tests.payments.stripe_standin import API_KEY, WEBHOOK_SECRET, StripeStandIn, sign
from tests.serving.conftest import (  # noqa: F401  (fixtures)
    Users,
    database,
    pg_schema,
    settings_for,
    sqlite_template,
)

PRICES = {
    "pro": ("price_pro_monthly", 999, True),
    "premium": ("price_premium_monthly", 1999, True),
    "enterprise": ("price_enterprise_monthly", 9900, True),
    "credits_10": ("price_credits_10", 499, False),
    "credits_50": ("price_credits_50", 1999, False),
}


@pytest.fixture(scope="session")
def standin() -> Iterator[StripeStandIn]:
    server = StripeStandIn().start()
    for price_id, amount, recurring in PRICES.values():
        server.add_price(price_id, amount, recurring=recurring)
    yield server
    server.stop()


@pytest.fixture
def pay_settings(tmp_path: Path, lakehouse: Lakehouse, standin: StripeStandIn) -> Settings:
    return settings_for(
        tmp_path,
        lakehouse,
        stripe_api_key=API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=standin.url,
        stripe_max_network_retries=0,
        stripe_timeout_s=5.0,
        stripe_price_ids={k: v[0] for k, v in PRICES.items()},
        request_poll_s=0.05,
        stream_crossfade_s=1.0,
    )


@dataclass
class RecordingLauncher(PipelineLauncher):
    """Records the generation runs asked for, with the partition and
    config each named; a run's status is what the test sets (Dagster
    itself is exercised by the end-to-end test)."""

    mode = "embedded"
    launches: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    fail_with: Exception | None = None

    async def launch(
        self,
        data: PipelineRunCreate,
        *,
        requested_by: str,
        batch_id: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> PipelineRunPublic:
        if self.fail_with is not None:
            raise self.fail_with
        run_id = f"run-{len(self.launches) + 1}"
        self.launches.append(
            {"data": data, "batch_id": batch_id, "config": dict(config or {}), "run_id": run_id}
        )
        self.statuses[run_id] = "STARTED"
        return PipelineRunPublic(
            run_id=run_id, batch_id=batch_id, status="STARTED", mode="embedded", job_name="job"
        )

    async def run(self, run_id: str) -> PipelineRunPublic:
        return PipelineRunPublic(
            run_id=run_id,
            batch_id=None,
            status=self.statuses.get(run_id, "STARTED"),
            mode="embedded",
            job_name="job",
        )

    async def ping(self) -> str:
        return "recording launcher"


@pytest.fixture
def launcher() -> RecordingLauncher:
    return RecordingLauncher()


@pytest.fixture
def station() -> InMemoryStationState:
    return InMemoryStationState()


@pytest.fixture
def make_ctx(
    pay_settings: Settings,
    database: Database,  # noqa: F811
    lakehouse: Lakehouse,
    station: InMemoryStationState,
    launcher: RecordingLauncher,
) -> Callable[..., AppContext]:
    def make(*, pipeline: PipelineLauncher | None = None, **overrides: Any) -> AppContext:
        settings = pay_settings.model_copy(update=overrides) if overrides else pay_settings
        return build_context(
            settings,
            db=database,
            lakehouse=lakehouse,
            station=station,
            pipeline=pipeline or launcher,
        )

    return make


@pytest.fixture
def ctx(make_ctx: Callable[..., AppContext]) -> AppContext:
    return make_ctx()


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(context=ctx)) as c:
        yield c


@pytest.fixture
def users(client: TestClient, ctx: AppContext) -> Users:
    return Users(client, ctx)


class Deliver:
    """Posts events to the webhook endpoint as Stripe does, signed."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __call__(
        self,
        event: dict[str, Any],
        *,
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
        signature: str | None = "sign",
    ) -> Any:
        payload = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["Stripe-Signature"] = sign(payload, secret, timestamp=timestamp)
        elif signature is not None:
            headers["Stripe-Signature"] = signature
        return self.client.post("/api/v1/webhooks/stripe", content=payload, headers=headers)

    def all(self, events: list[dict[str, Any]]) -> list[str]:
        outcomes = []
        for event in events:
            r = self(event)
            assert r.status_code == 200, r.text
            outcomes.append(r.json()["outcome"])
        return outcomes


@pytest.fixture
def deliver(client: TestClient) -> Deliver:
    return Deliver(client)


def checkout(client: TestClient, headers: dict[str, str], item: str) -> dict[str, Any]:
    r = client.post("/api/v1/checkout", json={"item": item}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def buy(
    client: TestClient, standin: StripeStandIn, deliver: Deliver, headers: dict[str, str], item: str
) -> list[dict[str, Any]]:
    """Checkout, pay at the stand-in, deliver the events Stripe sends."""
    session = checkout(client, headers, item)
    events = standin.complete_checkout(session["session_id"])
    deliver.all(events)
    return events
