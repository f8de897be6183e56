"""Plans, the caller's subscription, checkout, the customer portal, Stripe's
webhooks, and whether the caller may generate now."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request, status

from serving.billing.endpoint import receive_webhook
from serving.deps import ContextDep, CurrentPrincipal, SessionDep
from serving.routing import ResourceRouter
from serving.schemas.billing import (
    CanGeneratePublic,
    CheckoutCreate,
    CheckoutPublic,
    PlansPublic,
    PortalPublic,
    SubscriptionPublic,
    WebhookAck,
)
from serving.schemas.common import error_responses
from serving.services import billing as service

plans_router = ResourceRouter(prefix="/plans", tags=["billing"])
subscription_router = ResourceRouter(prefix="/subscription", tags=["billing"])
portal_router = ResourceRouter(prefix="/billing", tags=["billing"])
checkout_router = ResourceRouter(prefix="/checkout", tags=["billing"])
webhooks_router = ResourceRouter(prefix="/webhooks", tags=["billing"])
can_generate_router = ResourceRouter(prefix="/can-generate", tags=["requests"])

routers = (
    plans_router,
    subscription_router,
    portal_router,
    checkout_router,
    webhooks_router,
    can_generate_router,
)


@plans_router.get(
    "",
    response_model=PlansPublic,
    responses=error_responses(429),
    summary="Plans and credit packs, with the generators each plan may use",
)
def read_plans(ctx: ContextDep) -> PlansPublic:
    return service.list_plans(ctx.settings, ctx.payments)


@subscription_router.get(
    "",
    response_model=SubscriptionPublic,
    responses=error_responses(401, 429),
    summary="Your plan, its status and period, quota used and left, credit balance",
)
def read_subscription(
    principal: CurrentPrincipal, ctx: ContextDep, session: SessionDep
) -> SubscriptionPublic:
    return service.read_subscription(session, principal.user_id, ctx.settings)


@portal_router.post(
    "/portal",
    response_model=PortalPublic,
    responses=error_responses(401, 409, 429, 502, 503),
    summary="A link to the Stripe customer portal (cards, invoices, cancelling)",
)
def create_portal_session(
    principal: CurrentPrincipal, ctx: ContextDep, session: SessionDep
) -> PortalPublic:
    return service.open_portal(session, ctx.payments, ctx.settings, principal.user_id)


@checkout_router.post(
    "",
    response_model=CheckoutPublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 422, 429, 502, 503),
    summary="Start a Stripe Checkout: a plan (subscription) or a credit pack (payment)",
)
def create_checkout(
    body: CheckoutCreate,
    principal: CurrentPrincipal,
    ctx: ContextDep,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
            description="Repeat it to get the same session back; without it, repeats within "
            "ten minutes do.",
        ),
    ] = None,
) -> CheckoutPublic:
    """One session per user, item and key: a double click opens one Checkout.
    The Stripe customer is created on the first checkout and reused."""
    user = service.user_or_404(session, principal.user_id)
    return service.start_checkout(
        session, ctx.payments, ctx.settings, user, body.item, idempotency_key=idempotency_key
    )


@webhooks_router.post(
    "/stripe",
    response_model=WebhookAck,
    responses=error_responses(400, 429, 503),
    summary="Stripe's webhook endpoint (signed with the endpoint secret)",
)
async def receive_stripe_webhook(request: Request, ctx: ContextDep) -> WebhookAck:
    """Verified with the endpoint secret and a 300 s tolerance; each event
    applies once (its id is stored with its effect). A bad or missing
    signature is a 400 and changes nothing; a failure while applying is a
    500, rolled back whole, so Stripe's next delivery applies it.

    Deliveries with a JSON body (as Stripe sends them) are served by the
    hot path (``serving.hot``) through the same ``receive_webhook``."""
    payload = await request.body()
    return await receive_webhook(ctx, payload, request.headers.get("stripe-signature"))


@can_generate_router.get(
    "",
    response_model=CanGeneratePublic,
    responses=error_responses(401, 429),
    summary="Whether your next track request would be accepted, and why",
)
def read_can_generate(
    principal: CurrentPrincipal, ctx: ContextDep, session: SessionDep
) -> CanGeneratePublic:
    return service.can_generate(session, principal.user_id, ctx.settings)
