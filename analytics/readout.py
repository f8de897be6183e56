"""Reads of the analytics tables for the API: the event explorer (DuckDB
over Delta, pruned by day partition), and the small tables the dashboard
shows. Plain functions over a ``Lakehouse``; the API caches them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from analytics.sql import SqlEngine
from sonicforge.errors import SonicForgeError
from sonicforge.lakehouse import Lakehouse

EVENT_COLUMNS = (
    "event_id", "type", "event", "user_id", "anonymous_id", "track_id", "properties", "context",
    "experiment_id", "variant", "sent_at", "received_at", "ts", "flags",
)  # fmt: skip


class CursorError(SonicForgeError):
    """A pagination cursor that this API did not make."""


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    track_id: str | None = None
    experiment_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(ts: datetime, event_id: str) -> str:
    raw = json.dumps([ts.isoformat(), event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, event_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        parsed = datetime.fromisoformat(ts)
        if not isinstance(event_id, str) or parsed.tzinfo is None:
            raise ValueError("bad cursor")
        return parsed, event_id
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CursorError(
            f"cursor {cursor[:40]!r} is not one this API made; pass the next_cursor of a page"
        ) from exc


def query_events(
    engine: SqlEngine,
    flt: EventFilter,
    *,
    cursor: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Events matching ``flt``, newest first, and the cursor of the next page.

    The time range (default: the last 7 days) becomes a condition on the
    ``day`` partition column as well as on ``ts``, so DuckDB's Delta scan
    reads only the days in range."""
    lh = engine.lakehouse
    if not lh.exists("events"):
        return [], None
    now = now or datetime.now(UTC)
    until = flt.until or now
    since = flt.since or until - timedelta(days=7)
    where = ["day BETWEEN ? AND ?", "ts >= ?", "ts < ?"]
    params: list[Any] = [since.astimezone(UTC).date(), until.astimezone(UTC).date(), since, until]
    for column in ("type", "event", "user_id", "anonymous_id", "track_id", "experiment_id"):
        value = getattr(flt, column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if cursor is not None:
        cts, cid = decode_cursor(cursor)
        where.append("(ts < ? OR (ts = ? AND event_id < ?))")
        where[0] = "day BETWEEN ? AND ?"
        params[1] = min(params[1], cts.astimezone(UTC).date())
        params += [cts, cts, cid]
    uri = lh.table_uri("events").replace("'", "''")
    source = (
        f"delta_scan('{uri}')" if engine.uses_delta_extension else '"events"'
    )  # the fallback view reads an Arrow dataset
    sql = (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {source} WHERE {' AND '.join(where)} "
        f"ORDER BY ts DESC, event_id DESC LIMIT {int(limit) + 1}"
    )
    con = engine.con.cursor()
    try:
        rows = con.execute(sql, params).fetchall()
    finally:
        con.close()
    items = [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows[:limit]]
    for item in items:
        item["properties"] = json.loads(item["properties"] or "{}")
        item["context"] = json.loads(item["context"]) if item["context"] else None
        item["flags"] = list(item["flags"] or [])
        for key in ("sent_at", "received_at", "ts"):
            if item[key] is not None and item[key].tzinfo is None:
                item[key] = item[key].replace(tzinfo=UTC)
    next_cursor = None
    if len(rows) > limit and items:
        last = items[-1]
        next_cursor = encode_cursor(last["ts"], last["event_id"])
    return items, next_cursor


def rows(lh: Lakehouse, name: str, **where: Any) -> list[dict[str, Any]]:
    return lh.read(name, where=where or None).to_pylist()


def latest_kpis(lh: Lakehouse, *, days: int = 8, today: date | None = None) -> list[dict[str, Any]]:
    today = today or datetime.now(UTC).date()
    out = [r for r in rows(lh, "kpis_daily") if today - timedelta(days=days) < r["day"] <= today]
    return sorted(out, key=lambda r: r["day"], reverse=True)


def top_tracks_of(lh: Lakehouse, day: date, *, limit: int = 10) -> list[dict[str, Any]]:
    out = rows(lh, "daily_track_metrics", day=day)
    out.sort(key=lambda r: (-r["plays"], -r["unique_listeners"], r["track_id"]))
    return out[:limit]


def trending(lh: Lakehouse, *, limit: int = 10) -> list[dict[str, Any]]:
    return sorted(rows(lh, "trending_tracks"), key=lambda r: r["rank"])[:limit]


def generation_health(lh: Lakehouse) -> dict[str, Any]:
    tracks = lh.read("tracks", columns=["track_id", "created_at"])
    scores = lh.read("track_scores", columns=["passed"]).column("passed").to_pylist()
    rotation = lh.read("rotation", columns=["retired_at"]).column("retired_at").to_pylist()
    created = tracks.column("created_at").to_pylist()
    passed = sum(1 for p in scores if p)
    return {
        "tracks": tracks.num_rows,
        "passed": passed,
        "pass_rate": passed / len(scores) if scores else None,
        "last_generated_at": max(created) if created else None,
        "rotation_size": sum(1 for r in rotation if r is None),
    }


def hours_aired(engine: SqlEngine) -> float:
    """Airtime of every ended play, in hours."""
    if not engine.lakehouse.exists("plays"):
        return 0.0
    uri = engine.lakehouse.table_uri("plays").replace("'", "''")
    source = f"delta_scan('{uri}')" if engine.uses_delta_extension else '"plays"'
    con = engine.con.cursor()
    try:
        (seconds,) = con.execute(
            f"SELECT coalesce(sum(epoch(ended_at) - epoch(started_at)), 0) FROM {source} "
            "WHERE ended_at IS NOT NULL"
        ).fetchone() or (0.0,)
    finally:
        con.close()
    return float(seconds) / 3600.0
