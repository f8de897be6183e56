"""A small stateful Stripe stand-in, served over HTTP on loopback.

Why not ``localstripe`` (PyPI, 1.15.6): it has no Checkout Sessions, no
Prices and no billing portal, the three things this API calls (its
resources are Customer, Subscription, Invoice, Plan, Charge and the like).
So this server implements just those parts of Stripe's v1 API, as the
``stripe`` library (16.x) speaks it: form-encoded bodies with bracketed
keys, Bearer secret keys, ``Idempotency-Key`` replays (same key and body:
the first answer again; same key, other body: Stripe's 400), Stripe's error
body. The actions a buyer or Stripe's billing would take (paying a
Checkout, an invoice failing, a refund) are methods that change the state
and return the events Stripe would send; ``sign`` makes the real
``Stripe-Signature`` header for a payload with an endpoint secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_sonicforge_standin"
WEBHOOK_SECRET = "whsec_test_" + "s" * 32
PERIOD_S = 30 * 24 * 3600


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends: HMAC-SHA256 of
    ``"{t}.{payload}"`` with the endpoint secret."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` form pairs as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: Any = value if last else ({} if not parts[i + 1].isdigit() else [])
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append(None)
                if node[idx] is None or last:
                    node[idx] = nxt
                node = node[idx]
            else:
                if part not in node or last:
                    node[part] = nxt
                node = node[part]
    return root


class StripeError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.type = status, type_


@dataclass
class StripeState:
    """The stand-in's objects, by id, and the events it produced."""

    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    idempotent: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)


class StripeStandIn:
    """The server and the state behind it. ``clock`` is Stripe's time; it
    moves one second per change, as events of real Stripe are ordered."""

    def __init__(self) -> None:
        self.state = StripeState()
        self.lock = threading.RLock()
        self.clock = int(time.time())
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StripeStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                status, data = standin.handle(
                    method,
                    self.path,
                    body,
                    auth=self.headers.get("Authorization"),
                    idempotency_key=self.headers.get("Idempotency-Key"),
                )
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(6))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- request handling ------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}_test_{secrets.token_hex(8)}"

    def _tick(self) -> int:
        # Strictly increasing, and no slower than real time.
        self.clock = max(self.clock + 1, int(time.time()))
        return self.clock

    def handle(
        self,
        method: str,
        path: str,
        body: str,
        *,
        auth: str | None,
        idempotency_key: str | None,
    ) -> tuple[int, dict[str, Any]]:
        url = urlsplit(path)
        with self.lock:
            self.state.requests.append((method, url.path))
            if auth != f"Bearer {API_KEY}":
                return self._error(
                    StripeError(401, "Invalid API Key provided", type_="invalid_request_error")
                )
            params = _nest(parse_qsl(body, keep_blank_values=True))
            if method == "POST" and idempotency_key:
                seen = self.state.idempotent.get((url.path, idempotency_key))
                if seen is not None:
                    if seen[0] != body:
                        return self._error(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with.",
                                type_="idempotency_error",
                            )
                        )
                    return seen[1], seen[2]
            try:
                status, data = 200, self._route(method, url.path, params)
            except StripeError as exc:
                status, data = self._error(exc)
            if method == "POST" and idempotency_key:
                self.state.idempotent[(url.path, idempotency_key)] = (body, status, data)
            return status, data

    @staticmethod
    def _error(exc: StripeError) -> tuple[int, dict[str, Any]]:
        return exc.status, {"error": {"type": exc.type, "message": str(exc)}}

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        if parts[0] != "v1":
            raise StripeError(404, f"Unrecognized request URL ({method}: {path})")
        parts = parts[1:]
        if parts == ["customers"] and method == "POST":
            return self._create_customer(params)
        if len(parts) == 2 and parts[0] == "customers" and method == "GET":
            return self._get(self.state.customers, parts[1], "customer")
        if len(parts) == 2 and parts[0] == "prices" and method == "GET":
            return self._get(self.state.prices, parts[1], "price")
        if parts == ["checkout", "sessions"] and method == "POST":
            return self._create_session(params)
        if len(parts) == 3 and parts[:2] == ["checkout", "sessions"] and method == "GET":
            return self._get(self.state.sessions, parts[2], "checkout.session")
        if parts == ["billing_portal", "sessions"] and method == "POST":
            customer = params.get("customer")
            self._get(self.state.customers, str(customer), "customer")
            pid = self._id("bps")
            return {
                "id": pid,
                "object": "billing_portal.session",
                "customer": customer,
                "return_url": params.get("return_url"),
                "url": f"{self.url}/portal/{pid}",
                "created": self.clock,
                "livemode": False,
            }
        if len(parts) == 2 and parts[0] == "subscriptions":
            if method == "GET":
                return self._get(self.state.subscriptions, parts[1], "subscription")
            if method == "DELETE":
                return self.cancel_subscription(parts[1])[0]["data"]["object"]
        if parts == ["events"] and method == "GET":
            return {"object": "list", "data": list(reversed(self.state.events)), "has_more": False}
        raise StripeError(404, f"Unrecognized request URL ({method}: /{'/'.join(['v1', *parts])})")

    def _get(self, store: dict[str, dict[str, Any]], obj_id: str, kind: str) -> dict[str, Any]:
        if obj_id not in store:
            raise StripeError(404, f"No such {kind}: '{obj_id}'", type_="invalid_request_error")
        return store[obj_id]

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = self._id("cus")
        customer = {
            "id": cid,
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
            "created": self._tick(),
            "livemode": False,
        }
        self.state.customers[cid] = customer
        return customer

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeError(400, "Invalid mode: must be one of payment, setup, or subscription")
        for required in ("success_url", "line_items"):
            if not params.get(required):
                raise StripeError(400, f"Missing required param: {required}.")
        customer = params.get("customer")
        if customer is not None:
            self._get(self.state.customers, str(customer), "customer")
        total = 0
        for item in params["line_items"]:
            price = self._get(self.state.prices, str(item.get("price")), "price")
            recurring = price.get("recurring") is not None
            if recurring != (mode == "subscription"):
                raise StripeError(
                    400,
                    "You must provide at least one recurring price in `subscription` mode"
                    if mode == "subscription"
                    else "You specified `payment` mode but passed a recurring price.",
                )
            total += int(price["unit_amount"]) * int(item.get("quantity") or 1)
        sid = self._id("cs")
        session = {
            "id": sid,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "line_items_prices": [i["price"] for i in params["line_items"]],
            "subscription_data": params.get("subscription_data") or {},
            "payment_intent_data": params.get("payment_intent_data") or {},
            "amount_total": total,
            "currency": "usd",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.url}/pay/{sid}",
            "subscription": None,
            "payment_intent": None,
            "created": self._tick(),
            "livemode": False,
        }
        self.state.sessions[sid] = session
        return session

    # -- what the buyer and Stripe's billing do ------------------------------------------------
    def _event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": self._tick(),
            "type": type_,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},  # a snapshot
        }
        self.state.events.append(event)
        return event

    def complete_checkout(self, session_id: str) -> list[dict[str, Any]]:
        """The buyer pays: the session completes and, in subscription mode,
        a subscription and its first paid invoice appear. The events, in
        the order Stripe sends them."""
        with self.lock:
            session = self._get(self.state.sessions, session_id, "checkout.session")
            session["status"] = "complete"
            session["payment_status"] = "paid"
            events: list[dict[str, Any]] = []
            if session["mode"] == "subscription":
                sub = self._create_subscription(session)
                session["subscription"] = sub["id"]
                events.append(self._event("customer.subscription.created", sub))
                events.append(self._event("invoice.paid", self._invoice(sub, paid=True)))
            else:
                charge = self._charge(session)
                session["payment_intent"] = charge["payment_intent"]
            events.append(self._event("checkout.session.completed", session))
            return events

    def _create_subscription(self, session: dict[str, Any]) -> dict[str, Any]:
        now = self._tick()
        sid = self._id("sub")
        sub = {
            "id": sid,
            "object": "subscription",
            "customer": session["customer"],
            "status": "active",
            "cancel_at_period_end": False,
            "canceled_at": None,
            "metadata": (session.get("subscription_data") or {}).get("metadata") or {},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self._id("si"),
                        "object": "subscription_item",
                        "price": self.state.prices[session["line_items_prices"][0]],
                        "current_period_start": now,
                        "current_period_end": now + PERIOD_S,
                    }
                ],
            },
            "created": now,
            "livemode": False,
        }
        self.state.subscriptions[sid] = sub
        return sub

    def _invoice(self, sub: dict[str, Any], *, paid: bool) -> dict[str, Any]:
        item = sub["items"]["data"][0]
        iid = self._id("in")
        invoice = {
            "id": iid,
            "object": "invoice",
            "customer": sub["customer"],
            "status": "paid" if paid else "open",
            "amount_paid": item["price"]["unit_amount"] if paid else 0,
            "attempt_count": 1,
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": sub["id"]},
            },
            "lines": {
                "object": "list",
                "data": [
                    {
                        "period": {
                            "start": item["current_period_start"],
                            "end": item["current_period_end"],
                        }
                    }
                ],
            },
            "created": self.clock,
        }
        self.state.invoices[iid] = invoice
        return invoice

    def _charge(self, session: dict[str, Any]) -> dict[str, Any]:
        cid = self._id("ch")
        charge = {
            "id": cid,
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": 0,
            "refunded": False,
            "customer": session["customer"],
            "payment_intent": self._id("pi"),
            "status": "succeeded",
            "created": self._tick(),
        }
        self.state.charges[cid] = charge
        return charge

    def renew(self, sub_id: str, *, paid: bool) -> list[dict[str, Any]]:
        """The next period's invoice is paid, or its payment fails (past_due)."""
        with self.lock:
            sub = self._get(self.state.subscriptions, sub_id, "subscription")
            item = sub["items"]["data"][0]
            item["current_period_start"] = item["current_period_end"]
            item["current_period_end"] += PERIOD_S
            invoice = self._invoice(sub, paid=paid)
            if paid:
                sub["status"] = "active"
                return [self._event("invoice.paid", invoice)]
            sub["status"] = "past_due"
            return [
                self._event("invoice.payment_failed", invoice),
                self._event("customer.subscription.updated", sub),
            ]

    def set_cancel_at_period_end(self, sub_id: str) -> list[dict[str, Any]]:
        with self.lock:
            sub = self._get(self.state.subscriptions, sub_id, "subscription")
            sub["cancel_at_period_end"] = True
            return [self._event("customer.subscription.updated", sub)]

    def cancel_subscription(self, sub_id: str) -> list[dict[str, Any]]:
        with self.lock:
            sub = self._get(self.state.subscriptions, sub_id, "subscription")
            sub["status"] = "canceled"
            sub["canceled_at"] = self._tick()
            return [self._event("customer.subscription.deleted", sub)]

    def refund(self, payment_intent: str, amount: int | None = None) -> list[dict[str, Any]]:
        """Refund (part of) the charge of a payment."""
        with self.lock:
            charge = next(
                c for c in self.state.charges.values() if c["payment_intent"] == payment_intent
            )
            left = charge["amount"] - charge["amount_refunded"]
            charge["amount_refunded"] += left if amount is None else min(amount, left)
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            return [self._event("charge.refunded", charge)]

    def add_price(self, price_id: str, unit_amount: int, *, recurring: bool) -> None:
        self.state.prices[price_id] = {
            "id": price_id,
            "object": "price",
            "unit_amount": unit_amount,
            "currency": "usd",
            "recurring": {"interval": "month"} if recurring else None,
            "type": "recurring" if recurring else "one_time",
        }


@contextmanager
def running_standin() -> Iterator[StripeStandIn]:
    standin = StripeStandIn().start()
    try:
        yield standin
    finally:
        standin.stop()
