"""Plans and credit packs, defined once.

Prices are this module's; the Stripe price ids that charge them come from
settings (``SONICFORGE_STRIPE_PRICE_IDS``), so test and live mode differ by
environment only. Which generators a plan may use follows from the license
table in ``models.provenance``: paid work uses commercially licensed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from models.provenance import BACKEND_LICENSES, commercial_backends

PlanId = Literal["free", "pro", "premium", "enterprise"]


@dataclass(frozen=True)
class Plan:
    id: PlanId
    name: str
    monthly_price_cents: int
    features: tuple[str, ...]
    #: Requests the plan includes, per UTC day and per UTC month.
    quota_per_day: int
    quota_per_month: int
    max_request_duration_s: float
    #: Among queued requests, higher airs first (operators' picks go before all).
    request_priority: int
    #: Requests that may be in flight (not yet aired, failed or refunded) at once.
    max_pending: int
    #: Seconds between two requests of one user (AzuraCast's request delay).
    request_delay_s: float
    #: Paid plans are commercial use: only commercially licensed generators.
    paid: bool = True
    generators: tuple[str, ...] = field(default_factory=tuple)

    @property
    def subscription(self) -> bool:
        return self.monthly_price_cents > 0


@dataclass(frozen=True)
class CreditPack:
    id: str
    name: str
    credits: int
    price_cents: int


_COMMERCIAL = tuple(commercial_backends())

PLANS: dict[str, Plan] = {
    p.id: p
    for p in (
        Plan(
            id="free",
            name="Free",
            monthly_price_cents=0,
            features=("Listen to the station", "Vote and share", "3 track requests a day"),
            quota_per_day=3,
            quota_per_month=30,
            max_request_duration_s=60.0,
            request_priority=0,
            max_pending=1,
            request_delay_s=300.0,
            paid=False,
            # Free requests are not sold: any installed generator may serve them.
            generators=tuple(sorted(BACKEND_LICENSES)),
        ),
        Plan(
            id="pro",
            name="Pro",
            monthly_price_cents=999,
            features=("20 track requests a day", "Requests up to 3 minutes", "Priority airing"),
            quota_per_day=20,
            quota_per_month=300,
            max_request_duration_s=180.0,
            request_priority=1,
            max_pending=2,
            request_delay_s=60.0,
            generators=_COMMERCIAL,
        ),
        Plan(
            id="premium",
            name="Premium",
            monthly_price_cents=1999,
            features=("50 track requests a day", "Requests up to 5 minutes", "Higher priority"),
            quota_per_day=50,
            quota_per_month=1000,
            max_request_duration_s=300.0,
            request_priority=2,
            max_pending=3,
            request_delay_s=30.0,
            generators=_COMMERCIAL,
        ),
        Plan(
            id="enterprise",
            name="Enterprise",
            monthly_price_cents=9900,
            features=("500 track requests a day", "Requests up to 10 minutes", "Top priority"),
            quota_per_day=500,
            quota_per_month=10_000,
            max_request_duration_s=600.0,
            request_priority=3,
            max_pending=10,
            request_delay_s=0.0,
            generators=_COMMERCIAL,
        ),
    )
}

CREDIT_PACKS: dict[str, CreditPack] = {
    p.id: p
    for p in (
        CreditPack("credits_10", "10 request credits", 10, 499),
        CreditPack("credits_50", "50 request credits", 50, 1999),
        CreditPack("credits_200", "200 request credits", 200, 6999),
    )
}

FREE = PLANS["free"]
#: A request paid with a credit is sold work: it may use these generators,
#: and the longest duration any plan allows for it is the buyer's plan's.
CREDIT_GENERATORS = _COMMERCIAL


def plan(plan_id: str) -> Plan:
    try:
        return PLANS[plan_id]
    except KeyError:
        raise KeyError(f"unknown plan {plan_id!r}; plans: {', '.join(PLANS)}") from None


def purchasable(item: str) -> Plan | CreditPack | None:
    """The subscription plan or credit pack named ``item`` (Free is not sold)."""
    if item in CREDIT_PACKS:
        return CREDIT_PACKS[item]
    p = PLANS.get(item)
    return p if p is not None and p.subscription else None


def purchasable_ids() -> list[str]:
    return [p.id for p in PLANS.values() if p.subscription] + list(CREDIT_PACKS)
