"""Track pipeline benchmark: per-stage speed as the assets run it, and an
8-track batch end to end.

    .venv/bin/python bench/pipeline.py [--duration 180] [--batch 8]

Per stage it runs what the asset runs, on one core, against a lakehouse in
a temporary directory: ``generate`` (synthesis, FLAC encode, store),
``score`` (read the stored raw file, decode, score), ``master`` (read,
decode, master, encode the FLAC master and the measured MP3 rendition,
store both) and ``gate`` (read both stored files back, decode and meter
them with pyloudnorm and FFmpeg's ebur128). Each is printed as a multiple
of real time and as a ratio to a baseline timed in the same run on the same
stored files (libsndfile decode + pyloudnorm), so the ratios hold on a noisy
or different machine. Then a batch runs end to end through Dagster and its
wall time and peak memory are printed.
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
STAGES = ("generate", "score", "master", "gate")
BASELINE = "baseline: decode + pyloudnorm"


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def stage_figures(duration: float) -> tuple[float, dict[str, float]]:
    """Seconds of audio and wall seconds per stage, over one track per genre."""
    import numpy as np
    import pyloudnorm

    from models.audio_io import decode_audio
    from models.generation.base import TrackSpec
    from models.generation.procedural import ProceduralBackend
    from models.meters import FileLimits, check_file
    from models.pipeline import generate_encoded, master_one, score_row, tracks_row
    from sonicforge.lakehouse import Lakehouse

    backend = ProceduralBackend()
    totals = dict.fromkeys((*STAGES, BASELINE), 0.0)
    audio_s = 0.0
    lh = Lakehouse(tempfile.mkdtemp(prefix="bench-lake-"))
    for i, genre in enumerate(GENRES):
        track_id = f"bench-{i}"
        start = time.perf_counter()
        (enc,) = generate_encoded(backend, [(TrackSpec(genre=genre), 100 + i)], duration_s=duration)
        raw_uri, sha = lh.audio.put(f"raw/bench/{track_id}.flac", enc.flac)
        totals["generate"] += time.perf_counter() - start
        row = tracks_row(
            enc,
            track_id=track_id,
            batch_id="bench",
            backend=backend,
            requested_duration_s=duration,
            raw_uri=raw_uri,
            sha256=sha,
        )
        audio_s += row["duration_s"]

        start = time.perf_counter()
        score_row((row, lh.audio.get(raw_uri)))
        totals["score"] += time.perf_counter() - start

        start = time.perf_counter()
        mastered = master_one((row, lh.audio.get(raw_uri)))
        flac_uri, _ = lh.audio.put(f"masters/bench/{track_id}.flac", mastered.flac)
        mp3_uri, _ = lh.audio.put(f"masters/bench/{track_id}.mp3", mastered.mp3)
        totals["master"] += time.perf_counter() - start

        start = time.perf_counter()
        for uri, ceiling in ((flac_uri, -1.0), (mp3_uri, -0.5)):
            limits = FileLimits(-14.0, 0.5, ceiling, mastered.duration_s, 0.5)
            _, problems = check_file(lh.audio.get(uri), what=uri, limits=limits)
            if problems:
                print(f"gate: {genre}: {'; '.join(problems)}")
        totals["gate"] += time.perf_counter() - start

        start = time.perf_counter()
        audio, sr = decode_audio(lh.audio.get(raw_uri))
        pyloudnorm.Meter(sr).integrated_loudness(audio.T.astype(np.float64))
        totals[BASELINE] += time.perf_counter() - start
    return audio_s, totals


def batch_figures(batch: int, duration: float) -> dict[str, float | bool | str]:
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
        "failed_checks": ", ".join(result.failed_checks) or "none",
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

    audio_s, totals = stage_figures(args.duration)
    base = totals[BASELINE]
    print(
        f"\nPer stage as the assets run it (stored files read and decoded), one core, "
        f"{len(GENRES)} tracks x {args.duration:g} s (44.1 kHz stereo)"
    )
    print(f"{'stage':<32}{'wall s':>8}{'x real time':>13}{'x baseline':>12}{'target':>10}{'ok':>5}")
    figures: dict[str, object] = {}
    for name in (*STAGES, BASELINE):
        took = totals[name]
        rtf = audio_s / took
        target = TARGETS.get(name)
        ok = "" if target is None else ("yes" if rtf >= target else "NO")
        tgt = "" if target is None else f">={target:g}x"
        print(f"{name:<32}{took:>8.2f}{rtf:>12.1f}x{took / base:>11.2f}x{tgt:>10}{ok:>5}")
        if name != BASELINE:
            figures[f"{name}_x_realtime"] = round(rtf, 1)
            figures[f"{name}_x_baseline"] = round(took / base, 2)
    figures["baseline_x_realtime"] = round(audio_s / base, 1)
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
        print(f"{'failed checks':<28}{b['failed_checks']:>10}")
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
