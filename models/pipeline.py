"""Per-track work of the track pipeline, as plain functions on bytes.

The Dagster assets are thin wrappers over these; the benchmark calls the
same functions. Workers take and return bytes and plain dicts, so a batch
can fan out over processes (one core each) without sharing state.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from models.audio_io import decode_audio, encode_flac, encode_mp3
from models.generation.base import GeneratedTrack, GenerationBackend, TrackSpec
from models.generation.registry import create_backend
from models.loudness import integrated_loudness, to_dbtp, true_peak_precise
from models.mastering import HOLD_MARGIN_DB, master_audio
from models.scoring import SCORER_VERSION, score_bytes

T = TypeVar("T")
R = TypeVar("R")

MP3_BITRATE_KBPS = 192
#: Tracks one batch may plan (the generation config allows the same range).
MIN_BATCH, MAX_BATCH = 1, 64
TARGET_LUFS = -14.0
MASTER_CEILING_DBTP = -1.0
#: Lossy renditions overshoot their source's peaks; they are held here.
RENDITION_CEILING_DBTP = -0.5
_RENDITION_AIM_LU = 0.15  # a rendition off target by more than this is re-encoded
_RENDITION_PASSES = 3


def track_id_for(*, batch_id: str, index: int, genre: str, seed: int, backend: str) -> str:
    """A stable id: the same batch slot always maps to the same track id,
    which is what makes re-running a partition idempotent."""
    digest = hashlib.sha256(f"{batch_id}|{index}|{genre}|{seed}|{backend}".encode()).hexdigest()
    return f"trk_{digest[:20]}"


def plan_specs(
    genres: Sequence[str], count: int, *, bpm: float | None = None, prompt: str | None = None
) -> list[TrackSpec]:
    """``count`` specs cycling through ``genres`` in order."""
    if not MIN_BATCH <= count <= MAX_BATCH:
        raise ValueError(f"value {count} for 'count' is out of range [{MIN_BATCH}, {MAX_BATCH}]")
    if not genres:
        raise ValueError("'genres' is empty; give at least one genre")
    return [TrackSpec(genre=genres[i % len(genres)], bpm=bpm, prompt=prompt) for i in range(count)]


def parallel_map(fn: Callable[[T], R], items: Sequence[T], *, workers: int) -> list[R]:
    """``[fn(x) for x in items]``, over ``workers`` processes when > 1.

    Spawned (not forked) workers: the caller may be a threaded Dagster
    process, and forking threads can deadlock.
    """
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx) as pool:
        return list(pool.map(fn, items))


@dataclass
class EncodedTrack:
    """A generated track encoded for storage (FLAC), without the raw array."""

    flac: bytes
    track: GeneratedTrack  # audio replaced by an empty array to keep it small
    generation_s: float


def _strip_audio(track: GeneratedTrack, *, samples: int, channels: int) -> GeneratedTrack:
    track.metadata = {**track.metadata, "samples": samples, "channels": channels}
    track.audio = np.zeros((channels, 0), dtype="float32")
    return track


def _encode(track: GeneratedTrack, elapsed: float) -> EncodedTrack:
    channels, samples = track.audio.shape
    flac = encode_flac(track.audio, track.sample_rate)
    return EncodedTrack(flac, _strip_audio(track, samples=samples, channels=channels), elapsed)


def _generate_one(job: tuple[str, dict[str, Any], TrackSpec, float, int]) -> EncodedTrack:
    backend_name, options, spec, duration_s, seed = job
    backend = create_backend(backend_name, **options)
    started = time.perf_counter()
    (track,) = backend.generate([spec], duration_s=duration_s, seed=seed)
    return _encode(track, time.perf_counter() - started)


def generate_encoded(
    backend: GenerationBackend,
    items: Sequence[tuple[TrackSpec, int]],
    *,
    duration_s: float,
    workers: int = 1,
    backend_options: dict[str, Any] | None = None,
) -> list[EncodedTrack]:
    """Generate and FLAC-encode ``(spec, seed)`` items.

    Model backends (``supports_batching``) generate runs of consecutive seeds
    in one call; CPU backends fan out one track per worker process.
    """
    if not items:
        return []
    if backend.supports_batching or workers <= 1:
        out: list[EncodedTrack] = []
        for run in _consecutive_runs(items):
            started = time.perf_counter()
            tracks = backend.generate(
                [spec for spec, _ in run], duration_s=duration_s, seed=run[0][1]
            )
            per_track = (time.perf_counter() - started) / max(len(tracks), 1)
            out.extend(_encode(t, per_track) for t in tracks)
        return out
    jobs = [(backend.name, dict(backend_options or {}), spec, duration_s, s) for spec, s in items]
    return parallel_map(_generate_one, jobs, workers=workers)


def _consecutive_runs(
    items: Sequence[tuple[TrackSpec, int]],
) -> list[list[tuple[TrackSpec, int]]]:
    """Split items into runs whose seeds go up by one, as ``generate`` expects."""
    runs: list[list[tuple[TrackSpec, int]]] = []
    for item in items:
        if runs and item[1] == runs[-1][-1][1] + 1:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def tracks_row(
    encoded: EncodedTrack,
    *,
    track_id: str,
    batch_id: str,
    backend: GenerationBackend,
    requested_duration_s: float,
    raw_uri: str,
    sha256: str,
    request_id: str | None = None,
    dagster_run_id: str | None = None,
    mlflow_run_id: str | None = None,
    prompt_version: str | None = None,
) -> dict[str, Any]:
    t = encoded.track
    return {
        "track_id": track_id,
        "batch_id": batch_id,
        "genre": t.genre,
        "prompt": t.prompt,
        "prompt_version": prompt_version or t.metadata.get("prompt_version"),
        "bpm": float(t.bpm),
        "musical_key": t.musical_key,
        "duration_s": t.metadata["samples"] / float(t.sample_rate),
        "requested_duration_s": float(requested_duration_s),
        "sample_rate": int(t.sample_rate),
        "channels": int(t.metadata["channels"]),
        "backend": backend.name,
        "model_name": backend.model_name,
        "model_version": backend.model_version,
        "seed": int(t.seed),
        "raw_uri": raw_uri,
        "sha256": sha256,
        "generation_s": float(encoded.generation_s),
        "created_at": datetime.now(UTC),
        "request_id": request_id,
        "dagster_run_id": dagster_run_id,
        "mlflow_run_id": mlflow_run_id,
        **_provenance(backend.name),
    }


def _provenance(backend_name: str) -> dict[str, Any]:
    from models.provenance import license_for

    lic = license_for(backend_name)
    return {"model_license": lic.spdx, "commercial_use": lic.commercial_use}


def score_row(job: tuple[dict[str, Any], bytes]) -> dict[str, Any]:
    """Score one raw track (its ``tracks`` row and raw bytes) into a
    ``track_scores`` row. Broken audio yields a failing row, never raises."""
    track, data = job
    bpm = float(track.get("bpm") or 0.0)
    score = score_bytes(
        data,
        intended_bpm=bpm if bpm > 0 else None,
        expected_duration_s=track.get("requested_duration_s"),
        genre=track.get("genre"),
        musical_key=_scorable_key(track.get("musical_key")),
    )
    return {
        **score.to_row(),
        "track_id": track["track_id"],
        "batch_id": track["batch_id"],
        "scorer_version": SCORER_VERSION,
        "scored_at": datetime.now(UTC),
    }


@dataclass
class MasteredAudio:
    track_id: str
    flac: bytes
    mp3: bytes
    duration_s: float
    sample_rate: int
    lufs_before: float
    lufs_after: float
    true_peak_after: float
    chain_version: str


@functools.lru_cache(maxsize=16)
def mp3_level_offset_db(sample_rate: int, bitrate_kbps: int = MP3_BITRATE_KBPS) -> float:
    """How much the MP3 encoder changes the level of a 1 kHz tone, in dB.

    pedalboard's LAME writer puts out about -0.26 dB at every frequency;
    measured once per process so a new encoder version is followed.
    """
    t = np.arange(int(sample_rate)) / float(sample_rate)
    tone = np.float32(0.25) * np.sin(2.0 * np.pi * 1000.0 * t, dtype=np.float32)[np.newaxis]
    decoded, _ = decode_audio(encode_mp3(tone, sample_rate, bitrate_kbps=bitrate_kbps))
    middle = slice(sample_rate // 4, 3 * sample_rate // 4)
    ratio = np.sqrt(np.mean(decoded[0, middle] ** 2) / np.mean(tone[0, middle] ** 2))
    return float(20.0 * np.log10(ratio))


def encode_mp3_rendition(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_lufs: float = TARGET_LUFS,
    ceiling_dbtp: float = RENDITION_CEILING_DBTP,
    bitrate_kbps: int = MP3_BITRATE_KBPS,
) -> bytes:
    """The MP3 rendition of a master, measured after the codec.

    LAME's low-pass takes a few tenths of an LU off a bright master and its
    quantisation moves the peaks, so the encoded file is decoded and
    measured; when it is off the loudness target or over the ceiling it is
    encoded again with the gain that corrects it (peaks win over loudness).
    """
    hold = ceiling_dbtp - HOLD_MARGIN_DB
    gain_db = -mp3_level_offset_db(sample_rate, bitrate_kbps)
    for _ in range(_RENDITION_PASSES):
        source = audio if gain_db == 0.0 else audio * np.float32(10.0 ** (gain_db / 20.0))
        mp3 = encode_mp3(source, sample_rate, bitrate_kbps=bitrate_kbps)
        decoded, rate = decode_audio(mp3, format_hint="mp3")
        lufs = integrated_loudness(decoded, rate)
        peak = to_dbtp(true_peak_precise(decoded))
        step = target_lufs - lufs if abs(target_lufs - lufs) > _RENDITION_AIM_LU else 0.0
        step = min(step, hold - peak)
        if step == 0.0 or (abs(step) < 0.01 and peak <= hold):
            return mp3
        gain_db += step
    return mp3


def master_one(job: tuple[dict[str, Any], bytes]) -> MasteredAudio:
    """Master one raw track and encode the FLAC master and MP3 rendition."""
    track, data = job
    audio, sr = decode_audio(data)
    result = master_audio(
        audio, sr, genre=track["genre"], target_lufs=TARGET_LUFS, ceiling_dbtp=MASTER_CEILING_DBTP
    )
    return MasteredAudio(
        track_id=track["track_id"],
        flac=encode_flac(result.audio, result.sample_rate),
        mp3=encode_mp3_rendition(result.audio, result.sample_rate),
        duration_s=result.audio.shape[-1] / float(result.sample_rate),
        sample_rate=int(result.sample_rate),
        lufs_before=float(result.lufs_before),
        lufs_after=float(result.lufs_after),
        true_peak_after=float(result.true_peak_after),
        chain_version=result.chain_version,
    )


def mastered_row(
    m: MasteredAudio,
    *,
    batch_id: str,
    master_uri: str,
    master_sha256: str,
    mp3_uri: str,
    mp3_sha256: str,
) -> dict[str, Any]:
    return {
        "track_id": m.track_id,
        "batch_id": batch_id,
        "master_uri": master_uri,
        "master_sha256": master_sha256,
        "renditions": [
            {"codec": "flac", "bitrate_kbps": None, "uri": master_uri, "sha256": master_sha256},
            {
                "codec": "mp3",
                "bitrate_kbps": MP3_BITRATE_KBPS,
                "uri": mp3_uri,
                "sha256": mp3_sha256,
            },
        ],
        "duration_s": m.duration_s,
        "sample_rate": m.sample_rate,
        "lufs_before": m.lufs_before,
        "lufs_after": m.lufs_after,
        "true_peak_after": m.true_peak_after,
        "chain_version": m.chain_version,
        "mastered_at": datetime.now(UTC),
    }


#: The rotation weight doubles every ``WEIGHT_DOUBLING_POINTS`` of quality
#: score, from 1.0 at ``WEIGHT_PIVOT_SCORE``, held within ``WEIGHT_RANGE``.
WEIGHT_PIVOT_SCORE = 85.0
WEIGHT_DOUBLING_POINTS = 4.0
WEIGHT_RANGE = (0.05, 16.0)


def rotation_weight(quality_score: float) -> float:
    """Better tracks air more often: the weight doubles every 4 points of
    quality score (1.0 at 85), so a track 8 points better is picked 4x as
    often, before the streamer's no-repeat window evens plays out; it is
    held within [0.05, 16], so every passing track keeps a chance to air and
    no single track takes over the air. ``tests/models/test_scoring.py``
    runs a simulated day through the streamer's scheduler: the 90th
    percentile track airs at least twice as often as the 10th."""
    q = max(0.0, min(float(quality_score), 100.0))
    weight = 2.0 ** ((q - WEIGHT_PIVOT_SCORE) / WEIGHT_DOUBLING_POINTS)
    return round(min(max(weight, WEIGHT_RANGE[0]), WEIGHT_RANGE[1]), 4)


def _scorable_key(text: object) -> str | None:
    """The labelled key if the scorer can read it (model backends may label
    none, or a free-text key), else None: an unreadable label is not judged."""
    if not isinstance(text, str) or not text.strip():
        return None
    from models.generation.procedural.theory import parse_key

    try:
        return parse_key(text).name
    except ValueError:
        return None
