"""HLS playlists (RFC 8216): render the sliding live window and the master
playlist, read back our own window after a restart, write files atomically."""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

AAC_LC = "mp4a.40.2"


def atomic_write(path: Path, data: bytes) -> None:
    """Write beside the target and rename over it: a reader sees the old
    file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class SegmentEntry:
    seq: int
    uri: str
    duration_s: float
    program_date_time: datetime
    discontinuity: bool = False


def pdt(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def target_duration(segment_s: float) -> int:
    # Segments end on AAC frame boundaries, so each lasts segment_s ± one
    # frame; rounded, none exceeds ceil(segment_s) (RFC 8216 4.3.3.1).
    return max(1, math.ceil(segment_s))


def render_media(
    entries: list[SegmentEntry],
    *,
    target_s: int,
    discontinuity_seq: int,
    ended: bool = False,
) -> str:
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{target_s}",
        f"#EXT-X-MEDIA-SEQUENCE:{entries[0].seq if entries else 0}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_seq}",
    ]
    for e in entries:
        if e.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{pdt(e.program_date_time)}")
        lines.append(f"#EXTINF:{e.duration_s:.5f},")
        lines.append(e.uri)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Variant:
    uri: str
    bandwidth: int
    average_bandwidth: int
    codecs: str = AAC_LC


def render_master(variants: list[Variant]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={v.bandwidth},"
            f'AVERAGE-BANDWIDTH={v.average_bandwidth},CODECS="{v.codecs}"'
        )
        lines.append(v.uri)
    return "\n".join(lines) + "\n"


@dataclass
class PlaylistState:
    entries: list[SegmentEntry]
    discontinuity_seq: int


def read_media(path: Path) -> PlaylistState | None:
    """Our own earlier window (to continue its numbering), or ``None``."""
    try:
        text = path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    seq = disc_seq = 0
    entries: list[SegmentEntry] = []
    duration, when, disc = 0.0, None, False
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            disc_seq = int(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            disc = True
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            when = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00"))
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",")[0])
        elif line and not line.startswith("#"):
            if when is None:
                return None  # not one of ours
            entries.append(SegmentEntry(seq, line, duration, when, disc))
            seq, disc, when = seq + 1, False, None
    return PlaylistState(entries, disc_seq)
