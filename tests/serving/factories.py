"""Real lakehouse rows and audio for the serving tests.

Tracks are written through the lakehouse's own merge path with rows that
satisfy the table contracts, and each mastered track gets a real MP3 (a
sine encoded by the pipeline's own encoder), so the API reads exactly what
the pipeline writes.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from sonicforge.lakehouse import Lakehouse

GENRES = ("house", "techno", "ambient")


@functools.cache
def mp3_bytes(seconds: float = 2.0, sample_rate: int = 44100) -> bytes:
    from models.audio_io import encode_mp3

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    return encode_mp3(np.stack([tone, tone]), sample_rate, bitrate_kbps=128)


@dataclass(frozen=True)
class SeededTrack:
    track_id: str
    genre: str
    passed: bool
    mastered: bool
    plays: int


def track_id(batch: str, index: int) -> str:
    return "trk_" + hashlib.sha256(f"{batch}|{index}".encode()).hexdigest()[:20]


def seed_tracks(
    lakehouse: Lakehouse, count: int = 6, *, batch: str = "b-test", start: int = 0
) -> list[SeededTrack]:
    """``count`` tracks: every third fails the quality gate (not mastered,
    not on air); the others are mastered with an MP3 and on air; track i
    has i plays."""
    now = datetime.now(UTC)
    tracks, scores, masters, rotation, plays, seeded = [], [], [], [], [], []
    for i in range(start, start + count):
        tid, genre = track_id(batch, i), GENRES[i % len(GENRES)]
        passed = i % 3 != 2
        created = now - timedelta(minutes=count - i)
        tracks.append({
            "track_id": tid, "batch_id": batch, "genre": genre, "prompt": f"{genre} groove {i}",
            "prompt_version": "v1", "bpm": 120.0 + i, "musical_key": "A minor", "duration_s": 2.0,
            "requested_duration_s": 2.0, "sample_rate": 44100, "channels": 2,
            "backend": "procedural", "model_name": "procedural", "model_version": "1",
            "seed": i, "raw_uri": f"raw/{batch}/{tid}.flac", "sha256": "0" * 64,
            "generation_s": 0.1, "created_at": created, "request_id": None,
            "dagster_run_id": None, "mlflow_run_id": None,
        })  # fmt: skip
        scores.append({
            "track_id": tid, "batch_id": batch, "integrated_lufs": -15.0, "true_peak_dbtp": -1.2,
            "loudness_range_lu": 4.0, "clipping_ratio": 0.0, "silence_ratio": 0.0,
            "dc_offset": 0.0, "nonfinite_ratio": 0.0, "tempo_bpm_est": 120.0 + i,
            "tempo_error": 0.0, "spectral_centroid_hz": 1500.0, "spectral_flatness": 0.2,
            "stereo_correlation": 0.9, "duration_s": 2.0,
            "quality_score": 90.0 - i if passed else 30.0, "passed": passed,
            "reasons": [] if passed else ["too quiet"], "scorer_version": "1", "scored_at": created,
        })  # fmt: skip
        if passed:
            uri, sha = lakehouse.audio.put(f"masters/{batch}/{tid}.mp3", mp3_bytes())
            masters.append({
                "track_id": tid, "batch_id": batch, "master_uri": uri.replace(".mp3", ".flac"),
                "master_sha256": sha,
                "renditions": [{"codec": "mp3", "bitrate_kbps": 128, "uri": uri, "sha256": sha}],
                "duration_s": 2.0, "sample_rate": 44100, "lufs_before": -15.0, "lufs_after": -14.0,
                "true_peak_after": -1.0, "chain_version": "1", "mastered_at": created,
            })  # fmt: skip
            rotation.append({
                "track_id": tid, "batch_id": batch, "genre": genre, "weight": 1.0,
                "duration_s": 2.0, "quality_score": 90.0 - i, "eligible_from": created,
                "retired_at": None,
            })  # fmt: skip
        for p in range(i):
            plays.append({
                "play_id": f"{tid}-{p}", "track_id": tid, "started_at": created, "ended_at": None,
                "listeners": 3, "skipped": False, "channel": "main",
            })  # fmt: skip
        seeded.append(SeededTrack(tid, genre, passed, passed, i))
    lakehouse.insert_new("tracks", tracks)
    lakehouse.insert_new("track_scores", scores)
    if masters:
        lakehouse.insert_new("mastered_tracks", masters)
        lakehouse.insert_new("rotation", rotation)
    if plays:
        lakehouse.insert_new("plays", plays)
    return seeded
