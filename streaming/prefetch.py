"""Masters from object storage, read ahead of the air.

On ``s3://`` a master is fetched whole when its deck opens, on the loop that
feeds the encoders (about half a second ahead of the clock): one slow GET
would be heard. :class:`PrefetchingStore` keeps the masters likely to air
next in memory, fetched on a thread of their own: queued requests first,
then the rotation by weight, within a byte budget. A master that was not
prefetched is still read on demand (and counted in ``misses``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from sonicforge.station import StationState
from sonicforge.storage import ObjectStore
from streaming.catalog import Catalog

log = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024


class PrefetchingStore(ObjectStore):
    """An ``ObjectStore`` whose ``get`` answers from read-ahead copies."""

    def __init__(
        self,
        store: ObjectStore,
        upcoming: Callable[[], list[str]],
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        refresh_s: float = 5.0,
    ) -> None:
        # The wrapped store's own state (file system, root), not a second one.
        self.__dict__.update(store.__dict__)
        self._inner = store
        self._upcoming = upcoming
        self.budget_bytes = budget_bytes
        self.refresh_s = refresh_s
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.hits = self.misses = self.prefetched = 0

    def start(self) -> PrefetchingStore:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def get(self, uri: str) -> bytes:
        with self._lock:
            data = self._cache.get(uri)
            if data is not None:
                self._cache.move_to_end(uri)
                self.hits += 1
        if data is not None:
            self._wake.set()  # a deck opened: look ahead again
            return data
        self.misses += 1
        data = self._inner.get(uri)
        self._wake.set()
        return data

    def cached(self, uri: str) -> bool:
        with self._lock:
            return uri in self._cache

    def _size(self) -> int:
        return sum(len(v) for v in self._cache.values())

    def fill(self) -> int:
        """Fetch what is upcoming and not held yet; returns how many were fetched."""
        try:
            wanted = list(dict.fromkeys(self._upcoming()))
        except Exception as exc:
            log.warning("cannot list upcoming masters: %s", exc)
            return 0
        fetched = 0
        for uri in wanted:
            if self._stop.is_set():
                break
            if self.cached(uri):
                continue
            try:
                data = self._inner.get(uri)
            except Exception as exc:  # the deck will try again, and skip it if need be
                log.warning("prefetch of %s failed: %s", uri, exc)
                continue
            with self._lock:
                self._cache[uri] = data
                # Over budget: drop what is least recently used, but never
                # the masters wanted now.
                keep = set(wanted[: wanted.index(uri) + 1])
                for old in list(self._cache):
                    if self._size() <= self.budget_bytes:
                        break
                    if old not in keep:
                        del self._cache[old]
            fetched += 1
            self.prefetched += 1
            if self._size() > self.budget_bytes:
                break
        return fetched

    def _run(self) -> None:
        while not self._stop.is_set():
            self.fill()
            self._wake.wait(self.refresh_s)
            self._wake.clear()


def upcoming_masters(catalog: Catalog, station: StationState, *, limit: int = 32) -> list[str]:
    """Masters that may air next: queued tracks in order, then the rotation
    by weight (heaviest first), then the fallback."""
    uris: list[str] = []
    try:
        for entry in station.queue():
            track = catalog.lookup(entry.track_id)
            if track is not None:
                uris.append(track.master_uri)
    except Exception as exc:  # the queue is Redis's; the rotation still counts
        log.debug("queue unavailable for prefetch: %s", exc)
    rotation = sorted(catalog.rotation(), key=lambda t: -t.weight)
    uris += [t.master_uri for t in rotation]
    if not rotation:
        uris += [t.master_uri for t in catalog.fallback()]
    return [u for u in dict.fromkeys(uris) if "://" in u and not u.startswith("file://")][:limit]
