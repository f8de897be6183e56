"""A rolling folder of numbered chunks with a ``latest.json`` pointer: how
the streamer hands the MP3 mount and the visualizer feed to the API.

The streamer process encodes once; every API process tails the folder and
fans each chunk out to its listeners. Files keep the two sides independent
(either may restart) and work for several API replicas on a shared volume,
as the HLS folder does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streaming.outputs.hls_playlist import atomic_write

if TYPE_CHECKING:
    from sonicforge.settings import Settings

LATEST = "latest.json"


def resolve_stream_dir(settings: Settings) -> Path:
    """The folder of ``hls/``, ``mp3/`` and ``viz/`` (default ``var/stream``)."""
    return (settings.stream_dir or settings.var_dir / "stream").absolute()


def chunk_name(seq: int, ext: str) -> str:
    return f"{seq:010d}.{ext}"


def read_latest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / LATEST).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and "seq" in data else None


class ChunkWriter:
    """Writes chunk ``n`` then points ``latest.json`` at it; keeps ``keep``."""

    def __init__(self, directory: Path, *, ext: str, keep: int = 60) -> None:
        self.dir, self.ext, self.keep = directory, ext, keep
        directory.mkdir(parents=True, exist_ok=True)
        latest = read_latest(directory)
        # Continue the numbering, so a tailing API never sees it go back.
        self.next_seq = int(latest["seq"]) + 1 if latest else 0

    def write(self, data: bytes, meta: dict[str, Any]) -> int:
        seq = self.next_seq
        atomic_write(self.dir / chunk_name(seq, self.ext), data)
        pointer = {**meta, "seq": seq, "ext": self.ext, "written_at": time.time()}
        atomic_write(self.dir / LATEST, json.dumps(pointer).encode())
        self.next_seq += 1
        (self.dir / chunk_name(seq - self.keep, self.ext)).unlink(missing_ok=True)
        return seq
