"""What a CDN in front of /hls/ is told: segments for a day, immutable;
playlists for about one target duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from streaming.hls_files import HlsFiles, playlist_cache_control, segment_cache_control
from streaming.outputs.hls_playlist import SegmentEntry, Variant, render_master, render_media


def _headers(f: object) -> dict[bytes, bytes]:
    return dict(f.headers)  # type: ignore[attr-defined]


def test_segments_cache_long_and_playlists_one_target_duration(tmp_path: Path) -> None:
    root = tmp_path / "hls"
    variant = root / "aac_64k"
    variant.mkdir(parents=True)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    entries = []
    for i in range(3):
        name = f"seg_{i:08d}.ts"
        (variant / name).write_bytes(b"\x47" * 188)
        entries.append(SegmentEntry(i, name, 6.0, start + timedelta(seconds=6 * i)))
    (variant / "index.m3u8").write_text(render_media(entries, target_s=6, discontinuity_seq=0))
    (root / "master.m3u8").write_text(render_master([Variant("aac_64k/index.m3u8", 90000, 80000)]))

    files = HlsFiles(root, segment_max_age_s=3600)
    seg = files.get("aac_64k/seg_00000001.ts")
    playlist = files.get("aac_64k/index.m3u8")
    master = files.get("master.m3u8")
    assert seg is not None and playlist is not None and master is not None
    assert _headers(seg)[b"cache-control"] == b"public, max-age=3600, immutable"
    assert _headers(playlist)[b"cache-control"] == b"public, max-age=6"
    assert _headers(master)[b"cache-control"] == b"public, max-age=6"


def test_cache_control_values() -> None:
    assert playlist_cache_control(0.0) == b"no-cache"
    assert playlist_cache_control(2.0) == b"public, max-age=2"
    assert playlist_cache_control(0.4) == b"public, max-age=1"
    assert segment_cache_control() == b"public, max-age=86400, immutable"
