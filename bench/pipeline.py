"""Track pipeline benchmark: per-stage speed on one core and an 8-track batch.

    .venv/bin/python bench/pipeline.py [--duration 180] [--batch 8]

Per stage (generate, score, master, write) it prints seconds of audio
processed per second of wall time, measured in one process pinned to one
thread, next to reference operations timed in the same run (pyloudnorm's
loudness, a plain pedalboard chain), so the ratios hold on a noisy machine.
Then it runs a batch end to end through Dagster into a temporary lakehouse
and prints its wall time and peak memory.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # "on one core": before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENRES = ["house", "techno", "trance", "drum_and_bass", "lofi_hip_hop", "ambient"]
TARGETS = {"generate": 50.0, "score": 100.0, "master": 100.0}


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def stage_figures(duration: float) -> list[tuple[str, float, float, float | None]]:
    import numpy as np
    import pedalboard
    import pyloudnorm

    from models.audio_io import encode_flac, encode_mp3
    from models.generation.base import TrackSpec
    from models.generation.procedural import ProceduralBackend
    from models.mastering import master_audio
    from models.pipeline import MP3_BITRATE_KBPS
    from models.scoring import score_audio
    from sonicforge.lakehouse import Lakehouse

    backend = ProceduralBackend()
    totals = dict.fromkeys(
        ("generate", "score", "master", "write", "ref_loudness", "ref_chain"), 0.0
    )
    audio_s = 0.0
    lake = Lakehouse(tempfile.mkdtemp(prefix="bench-lake-"))
    for i, genre in enumerate(GENRES):
        (track,), t = _timed(
            backend.generate, [TrackSpec(genre=genre)], duration_s=duration, seed=100 + i
        )
        totals["generate"] += t
        audio_s += track.duration_s
        sr = track.sample_rate
        _, t = _timed(score_audio, track.audio, sr, intended_bpm=track.bpm or None)
        totals["score"] += t
        result, t = _timed(master_audio, track.audio, sr, genre=genre)
        totals["master"] += t
        start = time.perf_counter()
        flac = encode_flac(result.audio, sr)
        mp3 = encode_mp3(result.audio, sr, bitrate_kbps=MP3_BITRATE_KBPS)
        lake.audio.put(f"bench/{i}.flac", flac)
        lake.audio.put(f"bench/{i}.mp3", mp3)
        totals["write"] += time.perf_counter() - start
        meter = pyloudnorm.Meter(sr)
        _, t = _timed(meter.integrated_loudness, track.audio.T.astype(np.float64))
        totals["ref_loudness"] += t
        chain = pedalboard.Pedalboard(
            [
                pedalboard.HighpassFilter(30),
                pedalboard.Compressor(-18, 2.5),
                pedalboard.Limiter(-1.0),
            ]
        )
        _, t = _timed(chain, track.audio, sr)
        totals["ref_chain"] += t
    rows = []
    for stage in ("generate", "score", "master", "write"):
        rows.append((stage, audio_s, audio_s / totals[stage], TARGETS.get(stage)))
    rows.append(("ref: pyloudnorm loudness", audio_s, audio_s / totals["ref_loudness"], None))
    rows.append(("ref: 3-stage pedalboard", audio_s, audio_s / totals["ref_chain"], None))
    return rows


def batch_figures(batch: int, duration: float) -> dict[str, float | bool]:
    import dagster as dg

    from assets.tracks import generated_tracks, mastered_tracks, rotation, track_scores
    from orchestration.checks import track_checks
    from orchestration.config import GenerationConfig
    from orchestration.jobs import generate_tracks_job
    from orchestration.launch import launch_generation
    from orchestration.resources import LocalGeneratorResource, LocalLakehouseResource
    from sonicforge.lakehouse import Lakehouse

    root = tempfile.mkdtemp(prefix="bench-batch-")
    defs = dg.Definitions(
        assets=[generated_tracks, track_scores, mastered_tracks, rotation],
        asset_checks=track_checks,
        jobs=[generate_tracks_job],
        resources={
            "lakehouse": LocalLakehouseResource(root=f"{root}/lake"),
            "generator": LocalGeneratorResource(workers=os.cpu_count() or 2),
        },
    )
    config = GenerationConfig(genres=GENRES, count=batch, duration_s=duration)
    instance = dg.DagsterInstance.ephemeral()
    start = time.perf_counter()
    result = launch_generation(config, defs=defs, instance=instance, log_level="WARNING")
    wall = time.perf_counter() - start
    lh = Lakehouse(f"{root}/lake")
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "success": result.success,
        "wall_s": wall,
        "tracks": lh.count("tracks"),
        "on_air": lh.count("rotation"),
        "peak_mb_parent": self_peak,
        "peak_mb_worker": child_peak,
        "audio_per_wall": lh.count("tracks") * duration / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()

    rows = stage_figures(args.duration)
    print(f"\nPer stage, one core, {len(GENRES)} tracks x {args.duration:g} s (44.1 kHz stereo)")
    print(f"{'stage':<28}{'audio s':>10}{'x real time':>14}{'target':>10}{'ok':>6}")
    for name, audio_s, rtf, target in rows:
        ok = "" if target is None else ("yes" if rtf >= target else "NO")
        tgt = "" if target is None else f">={target:g}x"
        print(f"{name:<28}{audio_s:>10.0f}{rtf:>13.1f}x{tgt:>10}{ok:>6}")
    figures: dict[str, object] = {f"{n}_x_realtime": round(r, 1) for n, _, r, _ in rows[:4]}
    if not args.skip_batch:
        b = batch_figures(args.batch, args.duration)
        print(
            f"\nBatch of {args.batch} x {args.duration:g} s end to end through Dagster ({os.cpu_count()} cores)"
        )
        print(
            f"{'wall time':<28}{b['wall_s']:>10.1f} s   target < 60 s   {'yes' if b['wall_s'] < 60 else 'NO'}"
        )
        print(
            f"{'tracks / on air':<28}{b['tracks']:>10} / {b['on_air']}   run {'succeeded' if b['success'] else 'FAILED'}"
        )
        print(f"{'audio s per wall s':<28}{b['audio_per_wall']:>10.1f}")
        print(f"{'peak RSS parent':<28}{b['peak_mb_parent']:>10.0f} MB")
        print(f"{'peak RSS largest worker':<28}{b['peak_mb_worker']:>10.0f} MB")
        figures.update({f"batch_{k}": v for k, v in b.items()})
    from sonicforge.settings import get_settings

    # Where the API looks for benchmark figures (as bench/generate.py writes them).
    out = get_settings().var_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline-procedural.json").write_text(
        json.dumps(
            {
                "backend": "procedural",
                "figures": figures,
                "measured_at": datetime.now(UTC).isoformat(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
