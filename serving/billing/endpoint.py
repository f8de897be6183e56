"""What ``POST /api/v1/webhooks/stripe`` does, once for both ways in: the
FastAPI route (the reference, which documents it) and the hot path
(``serving.hot``), which serves Stripe's deliveries without FastAPI's
routing and dependency solving, which cost more than applying an event.

The signature is verified by the stripe library with the endpoint secret
and a 300 s tolerance, and the payload parsed once; each event applies
once (its id is stored with its effect, in the group-commit writer's
transaction). A bad or missing signature is a 400 and changes nothing; a
failure while applying is a 500, rolled back whole, so Stripe's next
delivery applies it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from serving.billing.webhooks import WebhookContext
from serving.exceptions import BadRequestError, ServingError
from serving.schemas.billing import WebhookAck

if TYPE_CHECKING:
    from serving.context import AppContext

log = logging.getLogger("serving.routes.billing")

#: Stripe's signed payloads are a few kilobytes; anything larger is not one.
MAX_WEBHOOK_BYTES = 512 * 1024


class WebhookFailedError(ServingError):
    status_code = 500
    code = "webhook_failed"


def webhook_context(ctx: AppContext) -> WebhookContext:
    """Price ids to plans, from the settings (built once per settings)."""
    settings = ctx.settings
    cached = _contexts.get(id(settings))
    if cached is None or cached[0] is not settings:
        hook = WebhookContext(price_plans={v: k for k, v in settings.stripe_price_ids.items()})
        cached = (settings, hook)
        _contexts[id(settings)] = cached
    return cached[1]


_contexts: dict[int, tuple[object, WebhookContext]] = {}


async def receive_webhook(ctx: AppContext, payload: bytes, signature: str | None) -> WebhookAck:
    """Verify, apply and acknowledge one delivery; raises a ``ServingError``
    (400, 500, 503) that says what was wrong."""
    import stripe

    if len(payload) > MAX_WEBHOOK_BYTES:
        raise BadRequestError(f"the payload is over {MAX_WEBHOOK_BYTES} bytes; no Stripe event is")
    try:
        event = ctx.payments.verify_event(payload, signature)
    except stripe.SignatureVerificationError as exc:
        raise BadRequestError(
            f"the Stripe-Signature header does not verify with this endpoint's secret: {exc}"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the payload is not a Stripe event: {exc}") from None
    try:
        # Group commit: events arriving together share one transaction.
        outcome = await ctx.webhooks.apply(event, webhook_context(ctx))
    except Exception as exc:
        log.exception("stripe event %s (%s) failed", event.get("id"), event.get("type"))
        raise WebhookFailedError(
            f"event {event.get('id')} could not be applied; nothing of it was kept, and "
            "Stripe's next delivery applies it"
        ) from exc
    return WebhookAck(event_id=str(event["id"]), outcome=outcome)
