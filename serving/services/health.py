"""Dependency checks for /health/detailed and /ready, each timed and
bounded, run concurrently so one slow dependency costs its own timeout."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import anyio
import httpx

from serving.schemas.health import DependencyState, DependencyStatus

CHECK_TIMEOUT_S = 2.0
# The streamer beats every few seconds; older than this it is stuck.
HEARTBEAT_STALE_S = 15.0

CheckFn = Callable[[], Awaitable[tuple[DependencyState, str]]]


@dataclass(frozen=True)
class Check:
    name: str
    fn: CheckFn
    required: bool


async def run_check(check: Check) -> DependencyStatus:
    start = time.perf_counter()
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            state, detail = await check.fn()
    except TimeoutError:
        state, detail = "down", f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # a failing dependency is a result, not an error
        state, detail = "down", f"{type(exc).__name__}: {str(exc)[:200]}"
    latency = round((time.perf_counter() - start) * 1000, 3)
    return DependencyStatus(
        name=check.name,
        status=state,
        latency_ms=None if state == "disabled" else latency,
        detail=detail,
        required=check.required,
    )


async def run_checks(checks: list[Check]) -> list[DependencyStatus]:
    results: dict[str, DependencyStatus] = {}

    async def one(check: Check) -> None:
        results[check.name] = await run_check(check)

    async with anyio.create_task_group() as tg:
        for check in checks:
            tg.start_soon(one, check)
    return [results[c.name] for c in checks]


def overall(statuses: list[DependencyStatus]) -> Literal["ok", "degraded", "down"]:
    if any(s.required and s.status == "down" for s in statuses):
        return "down"
    if any(s.status in ("down", "degraded") for s in statuses):
        return "degraded"
    return "ok"


async def mlflow_state(uri: str) -> tuple[DependencyState, str]:
    if uri.startswith(("http://", "https://")):
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
            response = await client.get(uri.rstrip("/") + "/health")
        ok = response.status_code == 200
        return ("ok" if ok else "down"), f"HTTP {response.status_code} from {uri}"
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():
            return "down", "no tracking database yet (nothing logged)"

        def probe() -> None:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as con:
                con.execute("SELECT 1").fetchone()

        await anyio.to_thread.run_sync(probe)
        return "ok", "sqlite tracking store"
    return "disabled", f"tracking URI scheme of {uri.split(':', 1)[0]!r} is not probed"


def heartbeat_state(
    at: datetime | None, now: datetime | None = None
) -> tuple[DependencyState, str]:
    if at is None:
        return "down", "no streamer heartbeat yet"
    age = ((now or datetime.now(UTC)) - at).total_seconds()
    if age > HEARTBEAT_STALE_S:
        return "degraded", f"last heartbeat {age:.1f} s ago"
    return "ok", f"last heartbeat {age:.1f} s ago"
