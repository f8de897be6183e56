"""The streamer's loop: mix a block, hand it to every output, obey commands,
pace against the clock.

Blocks are 0.1 s and the loop runs ``lead_s`` (0.5 s) ahead of the wall
clock: enough that a slow track open or a Delta read never starves an
output, little enough that a command is heard within 0.6 s of being sent.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import numpy as np

from sonicforge import telemetry
from sonicforge.station import StationState
from streaming.clock import Clock
from streaming.mixer import Mixer
from streaming.outputs.base import AudioBlock, OutputRunner, OutputSpec
from streaming.playout import STANDBY_TITLE, STATION_NAME, Airing, Playout
from streaming.plays import PlayRecorder

log = logging.getLogger(__name__)

__all__ = ["OutputSpec", "Streamer"]


def _track_attributes(deck: object, at: int) -> dict[str, object]:
    meta = getattr(deck, "meta", None)
    if not isinstance(meta, Airing):
        return {"sonicforge.standby": True, "sonicforge.sample": at}
    return {
        "sonicforge.track_id": meta.pick.track.track_id,
        "sonicforge.play_id": meta.play_id,
        "sonicforge.source": str(meta.pick.source),
        "sonicforge.sample": at,
    }


class Streamer:
    """Playout plus outputs, driven by one clock."""

    def __init__(
        self,
        *,
        playout: Playout,
        station: StationState,
        clock: Clock,
        outputs: list[OutputSpec],
        recorder: PlayRecorder | None = None,
        sample_rate: int = 48000,
        crossfade_s: float = 4.0,
        skip_fade_s: float = 1.0,
        request_segue_s: float = 0.0,
        block_s: float = 0.1,
        lead_s: float = 0.5,
        heartbeat_s: float = 2.0,
        backpressure: bool = False,
    ) -> None:
        self.playout = playout
        self.station = station
        self.clock = clock
        self.recorder = recorder
        self.sr = sample_rate
        self._specs = outputs
        self._block = max(1, int(block_s * sample_rate))
        self._lead = lead_s
        self._heartbeat_s = heartbeat_s
        self._backpressure = backpressure
        self._request_segue = request_segue_s
        self._last_segue_check = -1e9
        self.mixer = Mixer(
            sample_rate=sample_rate,
            open_next=playout.open_next,
            # A span per track change when tracing is on (sonicforge.telemetry).
            on_start=telemetry.traced_callback(
                "streamer.track_change", playout.on_start, _track_attributes
            ),
            on_end=playout.on_end,
            crossfade_s=crossfade_s,
            skip_fade_s=skip_fade_s,
        )
        self.runners: list[OutputRunner] = []
        self.on_air = False
        self.commands_obeyed: list[str] = []
        self._last_command = 0
        self._last_beat = -1e9
        self._last_position = -1e9
        self._started_at = clock.now()
        # Set by a standby taking over (streaming.lease): the wall time the
        # previous streamer's published audio ends, where this timeline starts.
        self.resume_at: datetime | None = None

    # -- sessions ---------------------------------------------------------
    def _go_on_air(self) -> None:
        # Sample `position` airs now: the timeline is anchored to the clock
        # (or to where the streamer before us stopped; pacing catches up).
        anchor, self.resume_at = self.resume_at or self.clock.now(), None
        self.playout.epoch = anchor - timedelta(seconds=self.mixer.position / self.sr)
        self.runners = [
            OutputRunner(
                s.name,
                s.factory,
                clock=self.clock,
                station=self.station,
                threaded=s.threaded,
                backpressure=self._backpressure,
            )
            for s in self._specs
        ]
        self.on_air = True

    def _go_off_air(self) -> None:
        self._emit(self.mixer.stop(0.3))
        for runner in self.runners:
            runner.close()
        self.runners = []
        self.on_air = False
        self.playout._publish(None)

    # -- commands ---------------------------------------------------------
    def _poll_commands(self) -> None:
        try:
            commands = self.station.commands_since(self._last_command)
        except Exception as exc:
            log.warning("cannot read commands: %s", exc)
            return
        for cmd in commands:
            self._last_command = max(self._last_command, cmd.command_id)
            log.info("command %d: %s (by %s)", cmd.command_id, cmd.command, cmd.issued_by)
            self.commands_obeyed.append(cmd.command)
            if cmd.command == "skip" and self.on_air:
                self.mixer.skip()
            elif cmd.command == "stop" and self.on_air:
                self._go_off_air()
            elif cmd.command == "start" and not self.on_air:
                self._go_on_air()

    # -- the loop ---------------------------------------------------------
    def _airing(self) -> Airing | None:
        """What the current deck airs; ``None`` for standby or before the first deck."""
        cur = self.mixer.current
        return cur.meta if cur is not None and isinstance(cur.meta, Airing) else None

    def _emit(self, pcm: np.ndarray) -> None:
        airing = self._airing()
        start = self.mixer.position - len(pcm)
        block = AudioBlock(
            pcm,
            start,
            self.sr,
            self.playout.wall(start),
            airing.pick.track.title if airing else STANDBY_TITLE,
            airing.pick.track.artist if airing else STATION_NAME,
        )
        for runner in self.runners:
            runner.write(block)

    def run(self, *, max_air_s: float | None = None, stop: threading.Event | None = None) -> None:
        """Play until ``stop`` is set or ``max_air_s`` of audio has aired."""
        self._last_command = self.station.last_command_id()  # old commands are history
        self._started_at = self.clock.now()
        self._go_on_air()
        aired = 0
        limit = None if max_air_s is None else int(max_air_s * self.sr)
        try:
            while not (stop is not None and stop.is_set()):
                if limit is not None and aired >= limit:
                    break
                self._poll_commands()
                if not self.on_air:
                    self._housekeeping()
                    self.clock.sleep(0.1)
                    continue
                self._emit(self.mixer.read(self._block))
                aired += self._block
                self._housekeeping()
                self._pace()
        finally:
            if self.on_air:
                self._go_off_air()
            if self.recorder is not None:
                self.recorder.close()

    def _pace(self) -> None:
        ahead = (self.playout.wall(self.mixer.position) - self.clock.now()).total_seconds()
        if ahead > self._lead:
            self.clock.sleep(ahead - self._lead)
        elif ahead < -10.0:
            # Far behind (a suspended host): re-anchor rather than rush.
            log.warning("timeline %.1f s behind the clock; re-anchoring", -ahead)
            self.playout.epoch -= timedelta(seconds=ahead)

    def _segue_to_request(self, now: float) -> None:
        """Crossfade out of a rotation track that has aired ``request_segue_s``
        when a listener's request is next in the queue (checked once a second)."""
        if self._request_segue <= 0 or not self.on_air or now - self._last_segue_check < 1.0:
            return
        self._last_segue_check = now
        airing = self._airing()
        if airing is None or airing.pick.source not in ("rotation", "fallback"):
            return
        if (self.mixer.position - airing.start_sample) / self.sr < self._request_segue:
            return
        try:
            entries = self.station.queue()
        except Exception as exc:
            log.warning("cannot read the queue: %s", exc)
            return
        # Only when a request is what airs next: an operator's pick waits for the track's end.
        if entries and all(e.source == "request" for e in entries):
            log.info("segue from %s into a listener's request", airing.pick.track.track_id)
            self.mixer.segue()

    def _housekeeping(self) -> None:
        now = self.clock.monotonic()
        self._segue_to_request(now)
        if self.recorder is not None:
            self.recorder.maybe_flush()
        airing = self._airing()
        if self.on_air and airing is not None and now - self._last_position >= 1.0:
            self._last_position = now
            position = (self.mixer.position - airing.start_sample) / self.sr
            try:
                self.station.update_position(position)
            except Exception as exc:
                log.warning("cannot update position: %s", exc)
        if now - self._last_beat >= self._heartbeat_s:
            self._last_beat = now
            try:
                self.station.beat(self.status())
            except Exception as exc:
                log.warning("cannot write heartbeat: %s", exc)

    def status(self) -> dict[str, object]:
        cur, airing = self.mixer.current, self._airing()
        return {
            "state": "on_air" if self.on_air else "stopped",
            "started_at": self._started_at.isoformat(),
            "position_s": round(self.mixer.position / self.sr, 3),
            "track_id": airing.pick.track.track_id if airing is not None else None,
            "standby": bool(cur is not None and cur.standby),
            "outputs": {r.name: r.state for r in self.runners},
            "restarts": {r.name: r.restarts for r in self.runners},
            "skipped_masters": self.playout.skipped_masters,
        }
