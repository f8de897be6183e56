"""Cached reads of the lakehouse's track tables.

A snapshot of every track (with its score, master, play count and whether
it is on air) is built with one DuckDB query and kept until a Delta table
moves: versions are checked at most every ``check_every_s`` seconds, so a
hot endpoint costs a dict lookup and a new batch shows up within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from serving.exceptions import NotFoundError
from serving.schemas.tracks import Rendition, TrackMaster, TrackPublic, TrackScore
from sonicforge.lakehouse import Lakehouse
from sonicforge.tables import contract

log = logging.getLogger("serving.catalog")

TABLES = ("tracks", "track_scores", "mastered_tracks", "rotation", "plays")

SNAPSHOT_SQL = """
select t.track_id, t.genre, t.prompt, t.bpm, t.musical_key, t.duration_s, t.backend,
       t.model_name, t.model_version, t.created_at,
       s.quality_score, s.passed, s.integrated_lufs, s.true_peak_dbtp, s.tempo_bpm_est,
       s.reasons, s.scored_at,
       m.lufs_after, m.true_peak_after, m.chain_version, m.mastered_at, m.renditions,
       coalesce(p.plays, 0) as plays,
       (r.track_id is not null and r.retired_at is null) as on_air
from tracks t
left join track_scores s using (track_id)
left join mastered_tracks m using (track_id)
left join (select track_id, count(*) as plays from plays group by track_id) p using (track_id)
left join rotation r using (track_id)
order by t.created_at desc, t.track_id
"""


@dataclass(frozen=True)
class Snapshot:
    versions: tuple[int | None, ...]
    tracks: dict[str, TrackPublic]
    ordered: list[TrackPublic]
    # Where each track's MP3 rendition lives; internal, never sent to clients.
    mp3_uris: dict[str, str] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.monotonic)


def _track(row: dict[str, Any]) -> tuple[TrackPublic, str | None]:
    score = None
    if row["quality_score"] is not None:
        score = TrackScore(
            quality_score=row["quality_score"],
            passed=row["passed"],
            integrated_lufs=row["integrated_lufs"],
            true_peak_dbtp=row["true_peak_dbtp"],
            tempo_bpm_est=row["tempo_bpm_est"],
            reasons=list(row["reasons"] or []),
            scored_at=row["scored_at"],
        )
    master, mp3 = None, None
    if row["mastered_at"] is not None:
        renditions = list(row["renditions"] or [])
        master = TrackMaster(
            lufs_after=row["lufs_after"],
            true_peak_after=row["true_peak_after"],
            chain_version=row["chain_version"],
            mastered_at=row["mastered_at"],
            renditions=[
                Rendition(codec=r["codec"], bitrate_kbps=r["bitrate_kbps"]) for r in renditions
            ],
        )
        mp3 = next((r["uri"] for r in renditions if r["codec"] == "mp3"), None)
    track = TrackPublic(
        track_id=row["track_id"],
        genre=row["genre"],
        prompt=row["prompt"],
        bpm=row["bpm"],
        musical_key=row["musical_key"],
        duration_s=row["duration_s"],
        backend=row["backend"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        created_at=row["created_at"],
        score=score,
        master=master,
        plays=int(row["plays"]),
        on_air=bool(row["on_air"]),
        audio_url=f"/api/v1/tracks/{row['track_id']}/audio" if mp3 else None,
    )
    return track, mp3


class TrackCatalog:
    def __init__(
        self,
        lakehouse: Lakehouse,
        *,
        check_every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lakehouse = lakehouse
        self.check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked_at = float("-inf")
        self._refresh: asyncio.Task[None] | None = None
        self.loads = 0  # how many times the tables were read (tests, metrics)

    def versions(self) -> tuple[int | None, ...]:
        return tuple(self.lakehouse.version(name) for name in TABLES)

    def _load(self, versions: tuple[int | None, ...]) -> Snapshot:
        from analytics.sql import SqlEngine  # DuckDB: only when tables moved

        engine = SqlEngine(self.lakehouse)
        try:
            for name in TABLES:
                if name not in engine.views:  # not written yet: an empty view
                    engine.con.register(name, contract(name).schema.empty_table())
            rows = engine.query(SNAPSHOT_SQL).to_pylist()
        finally:
            engine.close()
        tracks: dict[str, TrackPublic] = {}
        mp3: dict[str, str] = {}
        for row in rows:
            track, uri = _track(row)
            tracks[track.track_id] = track
            if uri:
                mp3[track.track_id] = uri
        self.loads += 1
        log.info("track catalog loaded", extra={"tracks": len(tracks), "versions": versions})
        return Snapshot(versions, tracks, list(tracks.values()), mp3)

    def snapshot(self, *, max_age_s: float | None = None) -> Snapshot:
        """The current snapshot, reloaded first if a table moved (blocking).
        While another thread checks the tables, the current one is returned
        rather than waiting for it."""
        limit = self.check_every_s if max_age_s is None else max_age_s
        current = self._snapshot
        if current is not None and self._clock() - self._checked_at < limit:
            return current
        if not self._lock.acquire(blocking=current is None):
            return current  # type: ignore[return-value]  # not None: acquire would block
        try:
            if self._snapshot is not None and self._clock() - self._checked_at < limit:
                return self._snapshot
            versions = self.versions()
            if self._snapshot is None or self._snapshot.versions != versions:
                self._snapshot = self._load(versions)
            self._checked_at = self._clock()
            return self._snapshot
        finally:
            self._lock.release()

    async def asnapshot(self) -> Snapshot:
        """The snapshot for async routes: a stale one is served while one
        background task checks the tables (stale-while-revalidate), so no
        request waits for Delta logs to be read, except the very first."""
        current = self._snapshot
        if current is None or self.check_every_s <= 0:
            return await anyio.to_thread.run_sync(self.snapshot)
        if self._clock() - self._checked_at >= self.check_every_s and self._refresh is None:
            self._refresh = asyncio.get_running_loop().create_task(self._revalidate())
        return current

    async def _revalidate(self) -> None:
        try:
            await anyio.to_thread.run_sync(self.snapshot)
        except Exception:  # the old snapshot keeps serving; the next check retries
            log.exception("checking the lakehouse tables failed")
        finally:
            self._refresh = None

    async def afind(self, track_id: str) -> TrackPublic | None:
        """``find`` for async routes: a hit costs no thread."""
        track = (await self.asnapshot()).tracks.get(track_id)
        if track is None:
            track = await anyio.to_thread.run_sync(self.find, track_id)
        return track

    def find(self, track_id: str) -> TrackPublic | None:
        """A track by id; a miss re-checks the tables (at most 4 times a
        second) so a track written a moment ago is found."""
        snap = self.snapshot()
        track = snap.tracks.get(track_id)
        if track is None:
            snap = self.snapshot(max_age_s=0.25)
            track = snap.tracks.get(track_id)
        return track

    def require(self, track_id: str) -> TrackPublic:
        """``find``, or ``NotFoundError`` for a track the lakehouse lacks."""
        return _found(self.find(track_id), track_id)

    async def arequire(self, track_id: str) -> TrackPublic:
        """``require`` for async routes."""
        return _found(await self.afind(track_id), track_id)


def _found(track: TrackPublic | None, track_id: str) -> TrackPublic:
    if track is None:
        raise NotFoundError(f"no track {track_id!r} in the lakehouse")
    return track
