"""What may air: the rotation and its fallback, read from the lakehouse.

The streamer only reads these tables (``rotation``, ``mastered_tracks``,
``tracks``, ``track_scores``); a failed read keeps the last good snapshot,
because a Delta hiccup must not take the station off air.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sonicforge.lakehouse import Lakehouse
from streaming.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackInfo:
    """A mastered track as the streamer needs it."""

    track_id: str
    master_uri: str
    duration_s: float
    genre: str
    title: str
    artist: str
    weight: float = 1.0
    quality_score: float = 0.0
    lufs: float | None = None


def _pretty(genre: str) -> str:
    return genre.replace("_and_", " & ").replace("_", " ").title() if genre else "Music"


def describe(track_id: str, meta: Mapping[str, Any]) -> tuple[str, str]:
    """Title and artist text for now-playing, ICY and the visualizer."""
    title = _pretty(str(meta.get("genre") or ""))
    key, bpm = meta.get("musical_key"), meta.get("bpm")
    if key:
        title += f" in {key}"
    if isinstance(bpm, int | float) and math.isfinite(bpm) and bpm > 0:
        title += f", {bpm:.0f} BPM"
    title += f" #{track_id[:6]}"
    source = meta.get("model_name") or meta.get("backend") or "procedural"
    return title, f"SonicForge · {source}"


def _rows(lakehouse: Lakehouse, name: str, columns: list[str]) -> list[dict[str, Any]]:
    table = lakehouse.read(name)
    present = [c for c in columns if c in table.column_names]
    return table.select(present).to_pylist()


class Catalog:
    """Snapshots of the airable tracks, refreshed every ``refresh_s``."""

    def __init__(
        self,
        lakehouse: Lakehouse,
        *,
        clock: Clock,
        fallback_size: int = 20,
        refresh_s: float = 30.0,
    ) -> None:
        self._lh = lakehouse
        self._clock = clock
        self._fallback_size = fallback_size
        self._refresh_s = refresh_s
        self._loaded_at: float | None = None
        self._mastered: dict[str, TrackInfo] = {}
        self._rotation: list[tuple[TrackInfo, datetime, datetime | None]] = []
        self._fallback: list[TrackInfo] = []
        self._worker: threading.Thread | None = None

    def refresh(self, *, force: bool = False) -> None:
        """Load now the first time (or when forced); later, reload on a
        background thread when stale, so a slow Delta read (S3) never
        holds up the audio loop that asks for the next track."""
        now = self._clock.monotonic()
        if not force and self._loaded_at is not None and now - self._loaded_at < self._refresh_s:
            return
        first = self._loaded_at is None
        self._loaded_at = now
        if first or force:
            self._safe_load()
        elif self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._safe_load, name="catalog", daemon=True)
            self._worker.start()

    def _safe_load(self) -> None:
        try:
            self._load()
        except Exception as exc:  # keep airing the last snapshot
            log.warning("catalog refresh failed, keeping the last snapshot: %s", exc)

    def _load(self) -> None:
        meta = {
            r["track_id"]: r
            for r in _rows(
                self._lh,
                "tracks",
                ["track_id", "genre", "bpm", "musical_key", "model_name", "backend"],
            )
        }
        scores = {
            r["track_id"]: r
            for r in _rows(self._lh, "track_scores", ["track_id", "quality_score", "passed"])
        }
        rotation_rows = _rows(
            self._lh,
            "rotation",
            ["track_id", "genre", "weight", "quality_score", "eligible_from", "retired_at"],
        )
        rot_by_id = {r["track_id"]: r for r in rotation_rows}
        mastered: dict[str, TrackInfo] = {}
        for r in _rows(
            self._lh, "mastered_tracks", ["track_id", "master_uri", "duration_s", "lufs_after"]
        ):
            tid = r["track_id"]
            m = {**rot_by_id.get(tid, {}), **meta.get(tid, {})}
            title, artist = describe(tid, m)
            score = scores.get(tid, {}).get("quality_score")
            if score is None:
                score = rot_by_id.get(tid, {}).get("quality_score")
            lufs = r.get("lufs_after")
            mastered[tid] = TrackInfo(
                track_id=tid,
                master_uri=r["master_uri"],
                duration_s=float(r.get("duration_s") or 0.0),
                genre=str(m.get("genre") or ""),
                title=title,
                artist=artist,
                weight=float(rot_by_id.get(tid, {}).get("weight") or 1.0),
                quality_score=float(score or 0.0),
                lufs=float(lufs) if lufs is not None and math.isfinite(lufs) else None,
            )
        self._mastered = mastered
        self._rotation = [
            (mastered[r["track_id"]], r["eligible_from"], r["retired_at"])
            for r in rotation_rows
            if r["track_id"] in mastered
        ]

        def rank(t: TrackInfo) -> tuple[bool, float]:
            passed = scores.get(t.track_id, {}).get("passed")
            return (passed is not False, t.quality_score)

        self._fallback = sorted(mastered.values(), key=rank, reverse=True)[: self._fallback_size]

    def rotation(self) -> list[TrackInfo]:
        """Tracks in the rotation that are eligible now and not retired."""
        self.refresh()
        now = self._clock.now()
        return [
            t
            for t, eligible_from, retired_at in self._rotation
            if (eligible_from is None or eligible_from <= now)
            and (retired_at is None or retired_at > now)
        ]

    def fallback(self) -> list[TrackInfo]:
        """The best-scored mastered tracks, for when the rotation is empty."""
        self.refresh()
        return list(self._fallback)

    def lookup(self, track_id: str) -> TrackInfo | None:
        """Any mastered track (listener requests may name tracks off rotation)."""
        self.refresh()
        if track_id not in self._mastered:
            self.refresh(force=True)  # a request for a track mastered moments ago
        return self._mastered.get(track_id)
