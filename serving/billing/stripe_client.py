"""The Stripe calls the API makes, through the ``stripe`` library.

One small wrapper so the rest of the billing code (and its tests) sees
plain dicts and the serving package's errors: an unreachable Stripe is a
503 that says so, a Stripe refusal a 502 with Stripe's message. The API
base is a setting, which is how the tests point it at their stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from serving.exceptions import UnavailableError, UpstreamError
from sonicforge.settings import Settings

if TYPE_CHECKING:
    import stripe

# ``stripe`` is imported on first use (about 0.13 s): API start-up and
# the routes that never pay do not wait for it.


class PaymentsNotConfiguredError(UnavailableError):
    code = "payments_not_configured"


class StripeUnavailableError(UnavailableError):
    code = "payments_unavailable"


def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as plain nested dicts and lists."""
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    return dict(obj)


class StripeGateway:
    """Customers, Checkout Sessions, customer-portal sessions, and
    webhook verification, against ``settings.stripe_api_base`` if set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
        self._client: stripe.StripeClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self._key)

    def _require(self) -> stripe.StripeClient:
        if not self._key:
            raise PaymentsNotConfiguredError(
                "payments are not configured on this server (SONICFORGE_STRIPE_API_KEY is unset)"
            )
        if self._client is None:
            import stripe

            s = self.settings
            addresses: Any = {"api": s.stripe_api_base.rstrip("/")} if s.stripe_api_base else {}
            self._client = stripe.StripeClient(
                self._key,
                base_addresses=addresses,
                max_network_retries=s.stripe_max_network_retries,
                http_client=stripe.RequestsClient(timeout=s.stripe_timeout_s),
            )
        return self._client

    def _call(self, what: str, fn: Any, params: Mapping[str, Any], key: str | None) -> Any:
        import stripe

        options: dict[str, Any] = {"idempotency_key": key} if key else {}
        try:
            return _plain(fn(params=dict(params), options=options))
        except stripe.APIConnectionError as exc:
            raise StripeUnavailableError(
                f"Stripe could not be reached to {what}; nothing was charged or saved, "
                "try again in a minute"
            ) from exc
        except stripe.StripeError as exc:
            message = getattr(exc, "user_message", None) or str(exc).strip() or type(exc).__name__
            raise UpstreamError(f"Stripe refused to {what}: {message}") from exc

    # -- API calls ------------------------------------------------------------
    def create_customer(self, *, user_id: str, email: str, name: str) -> dict[str, Any]:
        client = self._require()
        return self._call(
            "create the customer",
            client.v1.customers.create,
            {"email": email, "name": name, "metadata": {"user_id": user_id}},
            # One customer per user, even when two first checkouts race.
            f"sonicforge-customer-{user_id}",
        )

    def create_checkout_session(self, params: Mapping[str, Any], *, key: str) -> dict[str, Any]:
        client = self._require()
        return self._call("start the checkout", client.v1.checkout.sessions.create, params, key)

    def create_portal_session(self, *, customer: str, return_url: str) -> dict[str, Any]:
        client = self._require()
        return self._call(
            "open the billing portal",
            client.v1.billing_portal.sessions.create,
            {"customer": customer, "return_url": return_url},
            None,
        )

    # -- webhooks ---------------------------------------------------------------
    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event in ``payload`` once its signature checks out with the
        endpoint secret (and is no older than the tolerance); raises
        ``stripe.SignatureVerificationError`` or ``ValueError`` otherwise."""
        import stripe

        if not signature:
            raise stripe.SignatureVerificationError("no Stripe-Signature header", signature)
        secret = self.settings.stripe_webhook_secret
        if secret is None:
            raise PaymentsNotConfiguredError(
                "webhooks are not configured on this server (SONICFORGE_STRIPE_WEBHOOK_SECRET is unset)"
            )
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            signature,
            secret.get_secret_value(),
            self.settings.stripe_webhook_tolerance_s,
        )
        import json

        event = json.loads(payload)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise ValueError("the payload is not a Stripe event object")
        return event
