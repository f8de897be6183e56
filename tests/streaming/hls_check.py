"""An independent reader of what the HLS output writes: a small RFC 8216
parser (not the writer's code) and a watcher that captures every playlist
version and every segment the moment it is listed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from streaming.outputs.base import AudioBlock, Output

TAG = re.compile(r"^#(EXT[A-Z0-9-]*)(?::(.*))?$")


@dataclass
class Media:
    version: int = 0
    target: int = 0
    sequence: int = 0
    discontinuity_sequence: int = 0
    ended: bool = False
    segments: list[dict[str, object]] = field(default_factory=list)


def parse_media(text: str) -> Media:
    lines = text.splitlines()
    assert lines and lines[0] == "#EXTM3U", "a playlist starts with #EXTM3U"
    assert text.endswith("\n"), "a complete playlist ends with a newline"
    m = Media()
    pending: dict[str, object] = {}
    for line in lines[1:]:
        match = TAG.match(line)
        if match:
            tag, value = match.groups()
            if tag == "EXT-X-VERSION":
                m.version = int(value)
            elif tag == "EXT-X-TARGETDURATION":
                m.target = int(value)
            elif tag == "EXT-X-MEDIA-SEQUENCE":
                m.sequence = int(value)
            elif tag == "EXT-X-DISCONTINUITY-SEQUENCE":
                m.discontinuity_sequence = int(value)
            elif tag == "EXT-X-DISCONTINUITY":
                pending["discontinuity"] = True
            elif tag == "EXT-X-PROGRAM-DATE-TIME":
                pending["pdt"] = datetime.fromisoformat(value.replace("Z", "+00:00"))
            elif tag == "EXTINF":
                pending["duration"] = float(value.split(",")[0])
            elif tag == "EXT-X-ENDLIST":
                m.ended = True
        elif line and not line.startswith("#"):
            assert "duration" in pending, f"segment {line} has no EXTINF"
            seg = {
                "uri": line,
                "seq": m.sequence + len(m.segments),
                "discontinuity": False,
                **pending,
            }
            m.segments.append(seg)
            pending = {}
    return m


def parse_master(text: str) -> list[dict[str, str]]:
    variants, attrs = [], None
    for line in text.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
        elif line and not line.startswith("#") and attrs is not None:
            variants.append({**{k: v.strip('"') for k, v in attrs.items()}, "URI": line})
            attrs = None
    return variants


class Watcher(Output):
    """Runs after the HLS output on every block: keeps each new playlist
    version and the bytes of each newly listed segment."""

    name = "watcher"

    def __init__(self, hls_dir: Path) -> None:
        self.dir = hls_dir
        self.playlists: dict[str, list[Media]] = {}
        self.segments: dict[tuple[str, int], bytes] = {}
        self._last: dict[str, str] = {}

    def write(self, block: AudioBlock) -> None:
        self.snapshot()

    def snapshot(self) -> None:
        for media in sorted(self.dir.glob("*/index.m3u8")):
            rendition = media.parent.name
            text = media.read_text()
            if text == self._last.get(rendition):
                continue
            self._last[rendition] = text
            parsed = parse_media(text)
            self.playlists.setdefault(rendition, []).append(parsed)
            for seg in parsed.segments:
                key = (rendition, int(seg["seq"]))  # type: ignore[call-overload]
                if key not in self.segments:
                    self.segments[key] = (media.parent / str(seg["uri"])).read_bytes()

    def close(self, *, final: bool = True) -> None:
        self.snapshot()
