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
from models.loudness import measure_loudness, true_peak  # noqa: E402
from models.mastering import master_audio  # noqa: E402
from models.scoring import score_audio  # noqa: E402


def dance_mix(sample_rate: int, seconds: float, bpm: float = 128.0) -> np.ndarray:
    """Kick, off-beat hats, bass and a detuned pad; peaks at -6 dBFS."""
    rng = np.random.default_rng(0)
    n = int(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    beat = 60.0 / bpm
    out = np.zeros((2, n), dtype=np.float32)
    kt = np.arange(int(0.35 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * (45 * kt + (110 / 25) * (1 - np.exp(-25 * kt)))) * np.exp(-9 * kt)
    hat = np.diff(rng.standard_normal(int(0.05 * sample_rate)), prepend=0.0)
    hat *= np.exp(-np.arange(hat.size) / (0.01 * sample_rate))
    for start in np.arange(0.0, seconds, beat):
        for at, sound, gain in ((start, kick, 0.9), (start + beat / 2, hat, 0.25)):
            i = round(at * sample_rate)
            piece = sound[: max(0, min(sound.size, n - i))]
            out[:, i : i + piece.size] += gain * piece
    out += (sum(np.sin(2 * np.pi * 55.0 * k * t) / k for k in range(1, 6)) * 0.25) * (
        (t / beat) % 1 > 0.5
    )
    for hz in (220.0, 261.6, 329.6):
        out[0] += 0.06 * np.sin(2 * np.pi * hz * 1.002 * t)
        out[1] += 0.06 * np.sin(2 * np.pi * hz * 0.998 * t + 0.3)
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
