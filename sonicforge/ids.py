"""Ids written in one place: UUIDv7 row ids and generation batch ids.

Every package may import this module; it imports nothing of the project.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime

_RAND_BITS = 74  # rand_a (12 bits) and rand_b (62 bits) of RFC 9562's layout
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def uuid7(now: datetime | None = None) -> str:
    """A UUIDv7 (RFC 9562) string: 48 bits of Unix milliseconds, then random
    bits. Ids made in one process strictly increase, even within one
    millisecond or when the clock steps back (the random part is then
    incremented by a random amount, RFC 9562's method 2), so they sort and
    index by creation. ``now`` sets the time (e.g. a streamer's clock)."""
    global _last_ms, _last_rand
    ms = int(now.timestamp() * 1000) if now is not None else time.time_ns() // 1_000_000
    if ms < 0 or ms >= 1 << 48:
        raise ValueError(f"time {ms} ms is outside UUIDv7's range [0, 2**48) ms since 1970")
    with _lock:
        if ms > _last_ms:
            # Top bit clear: room to count up within this millisecond.
            rand = secrets.randbits(_RAND_BITS - 1)
        else:
            ms = _last_ms
            rand = _last_rand + secrets.randbits(32) + 1
            if rand >= 1 << _RAND_BITS:
                ms += 1
                rand = secrets.randbits(_RAND_BITS - 1)
        _last_ms, _last_rand = ms, rand
    value = ms << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 62) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # the RFC variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


BATCH_ID_PATTERN = r"b\d{8}-\d{6}-[0-9a-f]{4}"
_BATCH_ID = re.compile(BATCH_ID_PATTERN)


def new_batch_id(now: datetime | None = None) -> str:
    """A generation batch id such as ``b20261124-154500-3f9a``: the UTC start
    second, so ids sort by time, and 16 random bits against collisions."""
    now = now or datetime.now(UTC)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return f"b{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def is_batch_id(value: str) -> bool:
    return _BATCH_ID.fullmatch(value) is not None
