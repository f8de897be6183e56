"""Speed of scoring, mastering and audio I/O on one core.

    .venv/bin/python bench/audio_dsp.py [--duration 180] [--rate 44100] [--repeat 3]

Prints each operation's best time over ``--repeat`` runs and its speed as a
multiple of real time, on a deterministic stereo dance-like mix. The
targets are 100x real time for scoring and mastering.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # "on one core": before numpy is imported

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.audio_io import decode_audio, encode_flac, encode_mp3, encode_wav  # noqa: E402
from models.features import spectral_features  # noqa: E402
from models.loudness import measure_loudness, true_peak, true_peak_precise  # noqa: E402
from models.mastering import master_audio  # noqa: E402
from models.scoring import score_audio  # noqa: E402
from tests import signals  # noqa: E402


def dance_mix(sample_rate: int, seconds: float, bpm: float = 128.0) -> np.ndarray:
    """The tests' synthetic dance mix, peaking at -6 dBFS."""
    out = signals.dance_mix(sample_rate, seconds, bpm=bpm).astype(np.float32)
    return out * np.float32(0.5 / np.abs(out).max())


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sr, seconds = args.rate, args.duration
    audio = dance_mix(sr, seconds)
    flac, mp3 = encode_flac(audio, sr), encode_mp3(audio, sr)
    master_audio(audio, sr, genre="house")  # warm caches and imports

    cases: list[tuple[str, Callable[[], object]]] = [
        ("score_audio", lambda: score_audio(audio, sr, intended_bpm=128.0)),
        ("  loudness + LRA", lambda: measure_loudness(audio, sr)),
        ("  true peak (4x)", lambda: true_peak(audio)),
        ("true peak (8x, mastering)", lambda: true_peak_precise(audio)),
        ("  spectral + onsets", lambda: spectral_features(audio, sr)),
        ("master_audio (house)", lambda: master_audio(audio, sr, genre="house")),
        ("master_audio (ambient)", lambda: master_audio(audio, sr, genre="ambient")),
        ("encode_flac 24-bit", lambda: encode_flac(audio, sr)),
        ("encode_flac 16-bit", lambda: encode_flac(audio, sr, bit_depth=16)),
        ("encode_mp3 192k", lambda: encode_mp3(audio, sr)),
        ("encode_wav 16-bit", lambda: encode_wav(audio, sr)),
        ("decode_audio FLAC", lambda: decode_audio(flac)),
        ("decode_audio MP3", lambda: decode_audio(mp3)),
    ]
    print(f"{seconds:.0f} s stereo at {sr} Hz, one thread, best of {args.repeat}")
    for name, fn in cases:
        took = best_of(fn, args.repeat)
        print(f"{name:24s} {took * 1000:8.1f} ms  {seconds / took:7.0f}x real time")


if __name__ == "__main__":
    main()
