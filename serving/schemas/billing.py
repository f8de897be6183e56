"""Plans, subscriptions, checkout and webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from serving.schemas.common import Schema


class GeneratorPublic(Schema):
    backend: str = Field(examples=["procedural"])
    license: str = Field(examples=["apache-2.0"], description="SPDX id of the weights' license.")
    commercial_use: bool


class PlanPublic(Schema):
    id: str = Field(examples=["pro"])
    name: str = Field(examples=["Pro"])
    monthly_price_cents: int = Field(ge=0, examples=[999])
    currency: str = Field(examples=["usd"])
    features: list[str]
    quota_per_day: int = Field(ge=0)
    quota_per_month: int = Field(ge=0)
    max_request_duration_s: float
    request_priority: int
    max_pending_requests: int
    request_delay_s: float
    paid: bool
    generators: list[GeneratorPublic] = Field(
        description="The generators requests under this plan may use (paid plans: only "
        "commercially licensed ones)."
    )
    purchasable: bool = Field(description="Whether checkout can sell it on this server now.")


class CreditPackPublic(Schema):
    id: str = Field(examples=["credits_10"])
    name: str
    credits: int = Field(ge=1)
    price_cents: int = Field(ge=0)
    currency: str
    purchasable: bool


class PlansPublic(Schema):
    plans: list[PlanPublic]
    credit_packs: list[CreditPackPublic]


class QuotaPublic(Schema):
    used_today: int = Field(ge=0)
    used_this_month: int = Field(ge=0)
    left_today: int = Field(ge=0)
    left_this_month: int = Field(ge=0)
    resets_at: datetime


class SubscriptionPublic(Schema):
    plan: str = Field(examples=["pro"])
    status: str = Field(
        examples=["active"],
        description="Stripe's subscription status, or 'none' on Free without a subscription.",
    )
    subscription_id: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    in_grace_period: bool = False
    grace_ends_at: datetime | None = Field(
        default=None, description="When an unpaid plan drops to Free."
    )
    quota: QuotaPublic
    credit_balance: int = Field(
        description="Negative after a refund of spent credits: spending stops."
    )
    pending_requests: int = Field(ge=0)


class CheckoutCreate(Schema):
    item: str = Field(
        pattern=r"^[a-z0-9_]{1,32}$",
        description="A plan id (a subscription) or a credit pack id (a one-time payment).",
        examples=["pro"],
    )
    model_config = ConfigDict(json_schema_extra={"examples": [{"item": "credits_10"}]})


class CheckoutPublic(Schema):
    session_id: str = Field(examples=["cs_test_a1b2c3"])
    url: str = Field(description="Send the buyer here (Stripe Checkout).")
    mode: Literal["subscription", "payment"]
    item: str


class PortalPublic(Schema):
    url: str = Field(description="The Stripe customer portal for this user.")


class WebhookAck(Schema):
    received: bool = True
    event_id: str
    outcome: Literal["applied", "duplicate", "stale", "ignored"] = Field(
        description="applied: its effect was recorded now; duplicate: it was applied before; "
        "stale: a newer state is stored already; ignored: not a type or object this API acts on."
    )


class CanGeneratePublic(Schema):
    allowed: bool
    reason: str = Field(examples=["2 of 3 requests left today on Free"])
    charge: Literal["quota", "credit"] | None = Field(
        description="What the next request would use."
    )
    plan: str
    quota_left: int = Field(ge=0)
    credit_balance: int
    resets_at: datetime | None = Field(description="When the plan's quota frees a request.")
    retry_after_s: float | None = Field(
        default=None,
        description="Seconds until the plan's request delay or pending limit allows one.",
    )
