"""Playout: turns scheduler picks into decks for the mixer, and deck events
into now-playing changes and play rows."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sonicforge.station import NowPlaying, StationState
from sonicforge.storage import ObjectStore
from streaming.clock import Clock
from streaming.decode import TrackReader, open_source
from streaming.errors import TrackUnavailableError
from streaming.mixer import Deck
from streaming.plays import PlayRecorder, new_play_id
from streaming.scheduler import Pick, Scheduler

log = logging.getLogger(__name__)

# Loudness correction is a trim, not a rescue: a master 12 dB off target is
# better skipped by the quality gate than pumped up here.
MAX_TRIM_DB = 12.0
STANDBY_TITLE, STATION_NAME = "Standby", "SonicForge"


@dataclass
class Airing:
    """What a deck is playing, as the streamer reports it."""

    pick: Pick
    play_id: str
    start_sample: int = 0
    started_at: datetime | None = None


def trim_gain(lufs: float | None, target_lufs: float) -> float:
    """Linear gain that brings a master measured at ``lufs`` to the target."""
    if lufs is None or not math.isfinite(lufs):
        return 1.0
    db = max(-MAX_TRIM_DB, min(MAX_TRIM_DB, target_lufs - lufs))
    return float(10 ** (db / 20))


class Playout:
    """Opens the next playable track and records what aired."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        station: StationState,
        recorder: PlayRecorder | None,
        clock: Clock,
        store: ObjectStore | None,
        sample_rate: int,
        target_lufs: float = -14.0,
        max_attempts: int = 8,
    ) -> None:
        self.scheduler = scheduler
        self._station = station
        self._recorder = recorder
        self._clock = clock
        self._store = store
        self._sr = sample_rate
        self._target = target_lufs
        self._attempts = max_attempts
        self.epoch: datetime = clock.now()  # wall time of timeline sample 0
        self.skipped_masters = 0

    def wall(self, sample: int) -> datetime:
        return self.epoch + timedelta(seconds=sample / self._sr)

    def open_next(self) -> Deck | None:
        """A deck for the next pick that opens and decodes; ``None`` if none does."""
        for _ in range(self._attempts):
            pick = self.scheduler.next()
            if pick is None:
                return None
            try:
                source = open_source(pick.track.master_uri, self._store)
                reader = TrackReader(
                    source, sample_rate=self._sr, gain=trim_gain(pick.track.lufs, self._target)
                )
            except TrackUnavailableError as exc:
                self.skipped_masters += 1
                self.scheduler.quarantine(pick.track.track_id, str(exc))
                continue
            airing = Airing(pick, new_play_id(self._clock.now()))
            return Deck(airing.play_id, reader, meta=airing)
        log.error("%d picks in a row could not be opened", self._attempts)
        return None

    def on_start(self, deck: Deck, at: int) -> None:
        if deck.standby or not isinstance(deck.meta, Airing):
            self._publish(None)
            return
        airing = deck.meta
        airing.start_sample, airing.started_at = at, self.wall(at)
        track = airing.pick.track
        self.scheduler.record_start(track.track_id)
        log.info("on air: %s (%s, %s)", track.title, track.track_id, airing.pick.source)
        self._publish(
            NowPlaying(
                track_id=track.track_id,
                title=track.title,
                artist=track.artist,
                genre=track.genre,
                started_at=airing.started_at,
                position_s=0.0,
                duration_s=track.duration_s,
                play_id=airing.play_id,
                source=airing.pick.source,
                updated_at=airing.started_at,
                request_id=airing.pick.entry.request_id if airing.pick.entry else None,
                requested_by=airing.pick.entry.display_name if airing.pick.entry else None,
            )
        )
        if self._recorder is not None:
            self._recorder.start(airing.play_id, track.track_id, airing.started_at)

    def on_end(self, deck: Deck, at: int) -> None:
        airing = deck.meta
        if deck.standby or not isinstance(airing, Airing) or airing.started_at is None:
            return
        if self._recorder is not None:
            self._recorder.end(
                airing.play_id,
                airing.pick.track.track_id,
                airing.started_at,
                self.wall(at),
                skipped=deck.skipped,
                listeners=self._listeners(),
            )

    def _listeners(self) -> int | None:
        try:
            return self._station.total_listeners()
        except Exception:  # unknown, not zero
            return None

    def _publish(self, now_playing: NowPlaying | None) -> None:
        try:
            self._station.set_now_playing(now_playing)
        except Exception as exc:  # the state store is down; the air is not
            log.warning("could not publish now-playing: %s", exc)
