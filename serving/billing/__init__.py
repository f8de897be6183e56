"""Payments: plans and credit packs (``plans``), the Stripe gateway
(``stripe_client``), credits and entitlements (``ledger``) and webhook
application (``webhooks``)."""
