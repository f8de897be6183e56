"""Which track airs next: queued requests and operator picks first, then a
weighted pick from the rotation outside the no-repeat window, then the
fallback playlist; tracks that failed to decode sit out a quarantine."""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sonicforge.errors import QueueEntryNotFoundError
from sonicforge.station import QueueEntry, StationState
from streaming.catalog import TrackInfo
from streaming.clock import Clock

log = logging.getLogger(__name__)

PickSource = Literal["request", "operator", "rotation", "fallback"]


class TrackCatalog(Protocol):
    """Where picks come from (``streaming.catalog.Catalog`` on the lakehouse)."""

    def rotation(self) -> list[TrackInfo]: ...

    def fallback(self) -> list[TrackInfo]: ...

    def lookup(self, track_id: str) -> TrackInfo | None: ...


@dataclass(frozen=True)
class Pick:
    track: TrackInfo
    source: PickSource
    entry: QueueEntry | None = None


class Scheduler:
    """Picks tracks; remembers what aired for the no-repeat window."""

    def __init__(
        self,
        catalog: TrackCatalog,
        station: StationState,
        *,
        clock: Clock,
        no_repeat_count: int = 8,
        no_repeat_s: float = 3600.0,
        quarantine_s: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        self._catalog = catalog
        self._station = station
        self._clock = clock
        self._no_repeat_count = no_repeat_count
        self._no_repeat = timedelta(seconds=no_repeat_s)
        self._quarantine = timedelta(seconds=quarantine_s)
        self._rng = rng or random.Random()
        self._history: deque[tuple[str, datetime]] = deque(maxlen=max(1000, no_repeat_count))
        self._bad: dict[str, datetime] = {}
        self._fallback_index = 0

    # -- memory -----------------------------------------------------------
    def load_history(self, plays: Iterable[tuple[str, datetime]]) -> None:
        """Seed the window with earlier plays, so a restart does not repeat."""
        for track_id, started_at in sorted(plays, key=lambda p: p[1]):
            self._history.append((track_id, started_at))

    def record_start(self, track_id: str) -> None:
        self._history.append((track_id, self._clock.now()))

    def quarantine(self, track_id: str, reason: str) -> None:
        log.warning("track %s cannot air (%s); skipped for %s", track_id, reason, self._quarantine)
        self._bad[track_id] = self._clock.now() + self._quarantine

    def _usable(self, track_id: str) -> bool:
        until = self._bad.get(track_id)
        if until is None:
            return True
        if until <= self._clock.now():
            del self._bad[track_id]
            return True
        return False

    def _recent(self) -> set[str]:
        now = self._clock.now()
        by_count = list(self._history)[-self._no_repeat_count :] if self._no_repeat_count else []
        recent = {tid for tid, _ in by_count}
        recent.update(tid for tid, at in self._history if now - at < self._no_repeat)
        return recent

    # -- picking ----------------------------------------------------------
    def next(self) -> Pick | None:
        """The next track to air, or ``None`` when nothing at all can."""
        return self._from_queue() or self._from_rotation() or self._from_fallback()

    def _take_queued(self) -> QueueEntry | None:
        """The queue's next entry: operators' picks first, then listeners'
        requests by priority (higher first), each in queue order. Taken by
        ``remove``, which only one taker of an entry wins."""
        while True:
            entries = self._station.queue()
            if not entries:
                return None
            order = sorted(
                range(len(entries)),
                key=lambda i: (entries[i].source != "operator", -entries[i].priority, i),
            )
            if order[0] == 0:
                return self._station.pop_next()
            try:
                return self._station.remove(entries[order[0]].entry_id)
            except QueueEntryNotFoundError:
                continue  # taken or removed meanwhile: look again

    def _from_queue(self) -> Pick | None:
        while (entry := self._take_queued()) is not None:
            track = self._catalog.lookup(entry.track_id)
            if track is None:
                log.warning("queued track %s has no master; dropped", entry.track_id)
                continue
            if not self._usable(track.track_id):
                log.warning("queued track %s is quarantined; dropped", entry.track_id)
                continue
            return Pick(track, entry.source, entry)
        return None

    def _from_rotation(self) -> Pick | None:
        candidates = [t for t in self._catalog.rotation() if self._usable(t.track_id)]
        if not candidates:
            return None
        recent = self._recent()
        fresh = [t for t in candidates if t.track_id not in recent]
        if not fresh:
            # A rotation smaller than the window: air the longest-unplayed
            # track rather than stall or repeat the last one.
            last_seen = {tid: i for i, (tid, _) in enumerate(self._history)}
            oldest = min(candidates, key=lambda t: last_seen.get(t.track_id, -1))
            return Pick(oldest, "rotation")
        weights = [max(t.weight, 0.0) for t in fresh]
        if sum(weights) <= 0:
            weights = [1.0] * len(fresh)
        return Pick(self._rng.choices(fresh, weights=weights, k=1)[0], "rotation")

    def _from_fallback(self) -> Pick | None:
        tracks = [t for t in self._catalog.fallback() if self._usable(t.track_id)]
        if not tracks:
            return None
        # Replayed in order of score, as a loop: predictable, and every one
        # of the best tracks airs before any repeats.
        pick = tracks[self._fallback_index % len(tracks)]
        self._fallback_index += 1
        return Pick(pick, "fallback")
