"""Fifty requests of one user at once, on the real PostgreSQL (and on
SQLite, the embedded default): quota and credits are never spent twice,
and the pending limit holds."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.billing import plans
from serving.billing.ledger import add_credits
from serving.context import AppContext
from serving.db.models import BillingAccount, CreditEntry, TrackRequest
from tests.serving.conftest import Account, Users

N = 50
pytestmark = pytest.mark.parametrize("database", ["postgresql", "sqlite"], indirect=True)


def race(client: TestClient, account: Account) -> list[Any]:
    """N POST /requests released together from N threads."""
    barrier = threading.Barrier(N)

    def one(i: int) -> Any:
        barrier.wait()
        return client.post(
            "/api/v1/requests",
            json={"prompt": f"race {i}", "genre": "techno", "duration_s": 20},
            headers=account.headers,
        )

    with ThreadPoolExecutor(N) as pool:
        return list(pool.map(one, range(N)))


def test_fifty_concurrent_requests_spend_quota_and_credits_exactly(
    client: TestClient, users: Users, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plan with room for every request but two in its quota.
    roomy = dataclasses.replace(
        plans.PLANS["free"], quota_per_day=2, quota_per_month=2, max_pending=N, request_delay_s=0.0
    )
    monkeypatch.setitem(plans.PLANS, "free", roomy)
    user = users.create()
    with ctx.db.session() as s:
        add_credits(s, user.user_id, 5, kind="purchase", ref=f"test:{user.user_id}")
        s.commit()
    responses = race(client, user)
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 7 + [402] * (N - 7), codes
    accepted = [r.json() for r in responses if r.status_code == 201]
    assert sorted(a["charge"] for a in accepted) == ["credit"] * 5 + ["quota"] * 2
    with ctx.db.session() as s:
        account = s.get(BillingAccount, user.user_id)
        assert account is not None and account.credit_balance == 0
        spends = s.scalar(
            select(func.count()).select_from(CreditEntry).where(CreditEntry.kind == "spend")
        )
        assert spends == 5
        total = s.scalar(
            select(func.sum(CreditEntry.delta)).where(CreditEntry.user_id == user.user_id)
        )
        assert total == 0  # the balance is the ledger's sum
        assert s.scalar(select(func.count()).select_from(TrackRequest)) == 7
    refused = next(r for r in responses if r.status_code == 402)
    assert "no credits" in refused.json()["error"]["message"]


def test_fifty_concurrent_requests_on_free_make_one_pending_request(
    client: TestClient, users: Users, ctx: AppContext
) -> None:
    user = users.create()
    responses = race(client, user)
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [429] * (N - 1), codes
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TrackRequest)) == 1
