"""The client's address, validated.

Behind a trusted proxy uvicorn takes the client from ``X-Forwarded-For``
as it stands (``forwarded_allow_ips``), so ``scope["client"]`` may hold
anything that header held. Only a real IP address is used (rate-limit
keys, the address kept with a session); anything else counts as one
unknown client, so garbage can neither overflow a column nor spread one
client over many rate-limit budgets.
"""

from __future__ import annotations

import functools
import ipaddress

from starlette.types import Scope

UNKNOWN = "unknown"
# Longer than any written IPv6 address with an IPv4 tail: not an address.
_MAX_LENGTH = 64


@functools.lru_cache(maxsize=8192)  # runs on every request; few clients repeat a lot
def parse_address(host: object) -> str | None:
    """``host`` as a normalised IP address, or ``None`` if it is not one.

    IPv6 zone ids (``%eth0``) are dropped and IPv4-mapped IPv6 addresses
    become IPv4, so one client has one spelling."""
    if not isinstance(host, str) or not host or len(host) > _MAX_LENGTH:
        return None
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Address(int(ip)))
    return str(ip)


def client_address(scope: Scope) -> str | None:
    """The validated address of the request's client, ``None`` if unknown."""
    client = scope.get("client")
    return parse_address(client[0]) if client else None


def client_identity(scope: Scope) -> str:
    """A rate-limit identity: the address, or one shared ``unknown``."""
    return client_address(scope) or UNKNOWN
