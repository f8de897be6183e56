"""What the API serves under ``/hls/``: the files the streamer wrote, held in
memory with their response headers ready.

The folder is looked at again at most every ``refresh_s`` (a few ``stat``
calls; a changed playlist is read, and the new segments it lists), so a
thousand players fetching a playlist and a segment each cost no file
access of their own. Only names in this index are answered: a name the
streamer did not write (a ``..``, a NUL, 5,000 characters) is simply not
found, without touching the file system.

The master playlist is published only when every variant it names exists
with at least ``min_segments`` segments: before that a player would get a
master whose every variant is missing.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MASTER = "master.m3u8"
PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
SEGMENT_TYPE = b"video/mp2t"
# What a playlist may list and a variant may be called: our own names only.
SEGMENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}\.ts$")
VARIANT_URI = re.compile(r"^([A-Za-z0-9_-]{1,64})/index\.m3u8$")


@dataclass(frozen=True)
class HlsFile:
    """A body and the response headers that go with it."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def _headers(body: bytes, media_type: bytes, cache: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-type", media_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", cache),
    )


# What a CDN in front of /hls/ is told (deploy/ sets no caching of its own).
SEGMENT_MAX_AGE_S = 86400


def playlist_cache_control(target_s: float) -> bytes:
    """A live playlist changes once a segment: a CDN may hold it for about
    one target duration (players reload it about that often); before a
    target duration is known, not at all."""
    if target_s <= 0:
        return b"no-cache"
    return f"public, max-age={max(1, math.ceil(target_s))}".encode()


def segment_cache_control(max_age_s: int = SEGMENT_MAX_AGE_S) -> bytes:
    # Segment names never repeat (the media sequence only grows): cache them hard.
    return f"public, max-age={max_age_s}, immutable".encode()


def playlist_file(body: bytes, target_s: float = 0.0) -> HlsFile:
    return HlsFile(body, _headers(body, PLAYLIST_TYPE, playlist_cache_control(target_s)))


def segment_file(body: bytes, max_age_s: int = SEGMENT_MAX_AGE_S) -> HlsFile:
    return HlsFile(body, _headers(body, SEGMENT_TYPE, segment_cache_control(max_age_s)))


@dataclass
class Variant:
    """One rendition's playlist and the segments it lists (and listed)."""

    signature: tuple[int, int, int] = (0, 0, 0)
    playlist: HlsFile | None = None
    listed: list[str] = field(default_factory=list)
    target_s: float = 0.0
    segments: OrderedDict[str, HlsFile] = field(default_factory=OrderedDict)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    # Files are replaced by rename: a new version is a new inode.
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def parse_media(text: str) -> tuple[list[str], float]:
    """Segment names and target duration of one of our media playlists."""
    names, target = [], 0.0
    for line in text.splitlines():
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line.split(":", 1)[1])
        elif line and not line.startswith("#") and SEGMENT_NAME.match(line):
            names.append(line)
    return names, target


def parse_master(text: str) -> list[str]:
    """The variant folders a master playlist names."""
    out = []
    for line in text.splitlines():
        match = VARIANT_URI.match(line.strip())
        if match:
            out.append(match.group(1))
    return out


class HlsFiles:
    """The index of ``root`` (the streamer's ``hls/`` folder)."""

    def __init__(
        self,
        root: Path,
        *,
        refresh_s: float = 0.25,
        min_segments: int = 3,
        clock: Callable[[], float] = time.monotonic,
        segment_max_age_s: int = SEGMENT_MAX_AGE_S,
    ) -> None:
        self.root = root
        self.segment_max_age_s = segment_max_age_s
        self.refresh_s = refresh_s
        self.min_segments = min_segments
        self._clock = clock
        self._checked = -1e18
        self._master_sig: tuple[int, int, int] | None = None
        self._master_body = b""
        self.master: HlsFile | None = None
        self.master_waiting = False  # written, but a variant is not ready yet
        self.variants: dict[str, Variant] = {}
        self.files: dict[str, HlsFile] = {}

    def get(self, name: str) -> HlsFile | None:
        self.refresh()
        return self.files.get(name)

    @property
    def target_s(self) -> float:
        """The longest target duration of the variants (0 when none yet)."""
        return max((v.target_s for v in self.variants.values()), default=0.0)

    def refresh(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._checked < self.refresh_s:
            return
        self._checked = now
        try:
            self._scan()
        except OSError as exc:  # a vanished folder: serve what we had
            log.debug("cannot scan %s: %s", self.root, exc)

    def _scan(self) -> None:
        names: set[str] = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_dir() and VARIANT_URI.match(f"{entry.name}/index.m3u8"):
                    names.add(entry.name)
        for gone in set(self.variants) - names:
            del self.variants[gone]
        for name in sorted(names):
            self._load_variant(name, self.variants.setdefault(name, Variant()))
        self._load_master()
        files: dict[str, HlsFile] = {}
        if self.master is not None:
            files[MASTER] = self.master
        for name, v in self.variants.items():
            if v.playlist is not None:
                files[f"{name}/index.m3u8"] = v.playlist
            for seg, data in v.segments.items():
                files[f"{name}/{seg}"] = data
        self.files = files

    def _load_variant(self, name: str, v: Variant) -> None:
        folder = self.root / name
        sig = _signature(folder / "index.m3u8")
        if sig is None or sig == v.signature:
            return
        try:
            body = (folder / "index.m3u8").read_bytes()
            listed, target = parse_media(body.decode())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.debug("cannot read %s/index.m3u8: %s", name, exc)
            return
        for seg in listed:
            if seg not in v.segments:
                try:
                    v.segments[seg] = segment_file(
                        (folder / seg).read_bytes(), self.segment_max_age_s
                    )
                except OSError:  # listed but gone: not ours to serve
                    listed = [s for s in listed if s != seg]
        # Keep a removed segment for another window, as the streamer keeps
        # its file (RFC 8216 6.2.2): a player may still hold a playlist
        # that lists it.
        while len(v.segments) > 2 * max(len(listed), 1):
            v.segments.popitem(last=False)
        v.signature, v.playlist, v.listed, v.target_s = (
            sig,
            playlist_file(body, target),
            listed,
            target,
        )

    def _load_master(self) -> None:
        sig = _signature(self.root / MASTER)
        if sig is None:
            self._master_sig, self._master_body = None, b""
        elif sig != self._master_sig:
            try:
                self._master_body = (self.root / MASTER).read_bytes()
                self._master_sig = sig
            except OSError:
                self._master_sig, self._master_body = None, b""
        if not self._master_body:
            self.master, self.master_waiting = None, False
            return
        try:
            named = parse_master(self._master_body.decode())
        except UnicodeDecodeError:
            named = []
        ready = bool(named) and all(
            n in self.variants and len(self.variants[n].listed) >= self.min_segments for n in named
        )
        self.master = playlist_file(self._master_body, self.target_s) if ready else None
        self.master_waiting = not ready
