"""Who is listening, per client, kept in memory for the API to flush.

``ListeningRecorder`` is handed to ``create_stream_router`` by the API
(``serving.app``), which drains it every few seconds into the event outbox
(``serving.services.listening``). The hot paths only touch a dict: an HLS
request adds its bytes to its client's entry; an MP3 connection registers
one entry at open, adds each chunk's length, and marks the close. No
database work, no hashing after a client's first request.

A client is anonymous: ``anonymous_id`` is a keyed BLAKE2b hash of its
address and User-Agent (the key is the process's secret), never the raw
address. What ``collect`` returns are heartbeat events (``event =
"heartbeat"``, ``properties.output`` ``mp3`` or ``hls``):

- MP3: one at open (``phase: start``), one every ``heartbeat_s`` while the
  connection lasts (so a long connection is seen before it ends, and a
  crash loses at most one interval), and one at close (``phase: end``).
- HLS: one per flush for every client seen since the last one, at the time
  it was last seen, with the bytes it fetched; a client not seen for 2× the
  segment duration is forgotten (its session closes in ``listener_sessions``
  by the same rule).

The standalone streamer (``sonicforge stream --serve``, ``create_stream_app``)
has no app database and writes plays only (shared/DESIGN.md): it is given no
recorder, and records nothing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Client:
    """One listening client on one output (an MP3 connection, or an HLS player)."""

    anonymous_id: str
    output: str
    started_at: float
    last_seen: float
    user_agent: str = ""
    bytes: int = 0
    reported_bytes: int = 0
    reported_at: float = 0.0
    started_reported: bool = False
    closed_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, n: int) -> None:
        self.bytes += n


class ListeningRecorder:
    """Per-client listening state; ``collect`` turns it into heartbeat events."""

    def __init__(
        self,
        secret: str | bytes,
        *,
        segment_s: float,
        heartbeat_s: float = 5.0,
        clock: Any = time.time,
    ) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        self._key = hashlib.blake2b(key, digest_size=32).digest()
        self.segment_s = segment_s
        # Beats must come closer than the session gap (2× segment), or one
        # long MP3 connection would read as several sessions.
        self.heartbeat_s = min(heartbeat_s, segment_s)
        self.clock = clock
        self._ids: dict[tuple[str, str], str] = {}
        self._hls: dict[str, Client] = {}
        self._mp3: set[Client] = set()
        self._lock = threading.Lock()

    @property
    def window_s(self) -> float:
        return 2 * self.segment_s

    def anonymous_id(self, host: str, user_agent: str) -> str:
        """The keyed hash of address and User-Agent (cached per pair)."""
        pair = (host, user_agent)
        found = self._ids.get(pair)
        if found is None:
            if len(self._ids) > 100_000:
                self._ids.clear()
            h = hashlib.blake2b(f"{host}\n{user_agent}".encode(), key=self._key, digest_size=12)
            found = self._ids[pair] = "l-" + h.hexdigest()
        return found

    # -- hot paths --------------------------------------------------------------

    def hls(self, host: str, user_agent: str, nbytes: int) -> None:
        """An HLS file served to a client."""
        aid = self.anonymous_id(host, user_agent)
        now = self.clock()
        client = self._hls.get(aid)
        if client is None or now - client.last_seen > self.window_s:
            client = Client(aid, "hls", now, now, user_agent[:200])
            with self._lock:
                old = self._hls.get(aid)
                if old is not None:  # gone for 2× segment: report what is left, start anew
                    old.closed_at = old.last_seen
                    self._mp3.add(old)  # reported (and dropped) with the closed ones
                self._hls[aid] = client
        client.last_seen = now
        client.bytes += nbytes

    def mp3_open(self, host: str, user_agent: str) -> Client:
        """An MP3 connection opened; add bytes with ``Client.add``, end with ``mp3_close``."""
        now = self.clock()
        client = Client(self.anonymous_id(host, user_agent), "mp3", now, now, user_agent[:200])
        with self._lock:
            self._mp3.add(client)
        return client

    def mp3_close(self, client: Client) -> None:
        client.closed_at = client.last_seen = self.clock()

    # -- the flush --------------------------------------------------------------

    def open_count(self) -> dict[str, int]:
        now = self.clock()
        mp3 = sum(1 for c in self._mp3 if c.output == "mp3" and c.closed_at is None)
        hls = sum(1 for c in self._hls.values() if now - c.last_seen <= self.window_s)
        return {"mp3": mp3, "hls": hls}

    def collect(self, *, final: bool = False) -> list[dict[str, Any]]:
        """The heartbeat events due now (``final``: the process is stopping,
        so every open MP3 connection is reported as ended)."""
        now = self.clock()
        out: list[dict[str, Any]] = []
        with self._lock:
            for client in list(self._mp3):
                if final and client.closed_at is None:
                    client.closed_at = now
                if client.closed_at is not None:
                    self._mp3.discard(client)
                    if client.output == "mp3":
                        out.append(self._beat(client, client.closed_at, "end"))
                    elif client.last_seen > client.reported_at:  # an HLS client gone quiet
                        out.append(self._beat(client, client.last_seen, "beat"))
                elif not client.started_reported:
                    out.append(self._beat(client, client.started_at, "start"))
                elif now - client.reported_at >= self.heartbeat_s:
                    out.append(self._beat(client, now, "beat"))
            for aid, client in list(self._hls.items()):
                if client.last_seen > client.reported_at:
                    phase = "beat" if client.started_reported else "start"
                    out.append(self._beat(client, client.last_seen, phase))
                if final or now - client.last_seen > self.window_s:
                    del self._hls[aid]
        return out

    def _beat(self, client: Client, at: float, phase: str) -> dict[str, Any]:
        delta = client.bytes - client.reported_bytes
        client.reported_bytes, client.reported_at = client.bytes, at
        client.started_reported = True
        return {
            "anonymous_id": client.anonymous_id,
            "ts": at,
            "user_agent": client.user_agent,
            "properties": {
                "output": client.output,
                "phase": phase,
                "bytes": delta,
                "bytes_total": client.bytes,
                "started_at": client.started_at,
                "seconds": round(at - client.started_at, 3),
            },
        }
