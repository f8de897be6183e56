"""Per-note instruments: basses (sub, pluck, reese, acid), keys (Rhodes,
felt piano, organ), plucks, supersaw leads, bells and PADsynth pads.

Each function returns a float32 ``(2, samples)`` note: the gate plus its
release. Filter envelopes shape the harmonic spectrum frame by frame
(``oscillators.wavetable``) instead of running a time-varying IIR filter.
"""

from __future__ import annotations

import numpy as np

from models.generation.procedural import effects as fx
from models.generation.procedural.oscillators import (
    harmonic_amplitudes,
    lowpass_response,
    padsynth,
    phase_cycles,
    polyblep_saw,
    sine,
    tables_from_harmonics,
    wavetable,
)


def adsr(
    gate: int, release: int, *, sr: int, attack_s: float, decay_s: float, sustain: float
) -> np.ndarray:
    """Attack (linear), exponential decay to ``sustain`` while the gate is
    held, then an exponential release of ``release`` samples."""
    n = gate + release
    t = np.arange(n) / sr
    a = min(max(int(attack_s * sr), 1), n)
    env = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack_s, 0.0) / max(decay_s, 1e-4))
    env[:a] = np.linspace(0.0, 1.0, max(int(attack_s * sr), 1))[:a]
    level = env[min(gate, n) - 1] if gate > 0 else 0.0
    if release > 0:
        env[gate:] = level * np.exp(-np.arange(release) / (release / 4.0))
        env[-1] = 0.0
    return env.astype(np.float32)


def _stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, x]).astype(np.float32)


def _frame_times(n: int, *, hop: int, sr: int) -> np.ndarray:
    """The times in seconds of the frames ``wavetable`` steps through for
    ``n`` samples at ``hop``: one per hop, plus one to interpolate towards."""
    return np.arange(-(-n // hop) + 1) * hop / sr


def _filtered_frames(
    shape: str, f0: float, n: int, *, sr: int, cutoffs: np.ndarray, q: float, order: float
) -> np.ndarray:
    """Frames of harmonic amplitudes of ``shape`` through a resonant low-pass."""
    amps = harmonic_amplitudes(shape, f0, sr=sr)  # type: ignore[arg-type]
    freqs = f0 * np.arange(1, amps.size + 1)
    resp = lowpass_response(freqs[None, :], cutoffs[:, None], q=q, order=order)
    return tables_from_harmonics(amps[None, :] * resp)


def sub_bass(f0: float, *, gate: int, sr: int, drive: float = 1.6) -> np.ndarray:
    """A sine with a little drive so it still speaks on small speakers."""
    release = int(0.03 * sr)
    env = adsr(gate, release, sr=sr, attack_s=0.004, decay_s=1.0, sustain=0.9)
    x = np.tanh(drive * sine(f0, gate + release, sr=sr)) / np.tanh(drive)
    return _stereo(x * env)


def pluck_bass(
    f0: float, *, gate: int, sr: int, brightness: float, decay_s: float, sub: float = 0.6
) -> np.ndarray:
    """A short saw/square bass whose filter snaps shut (house, trance), over a sine."""
    release = int(0.02 * sr)
    n = gate + release
    hop = 64
    t = _frame_times(n, hop=hop, sr=sr)
    cutoffs = f0 * (1.5 + brightness * 14.0 * np.exp(-t / decay_s))
    tables = _filtered_frames("saw", f0, n, sr=sr, cutoffs=cutoffs, q=1.4, order=2.0)
    x = wavetable(tables, f0, n, sr=sr, hop=hop) * 0.8 + sub * sine(f0, n, sr=sr)
    env = adsr(gate, release, sr=sr, attack_s=0.003, decay_s=decay_s * 3, sustain=0.55)
    return _stereo(fx.saturate(x * env, 1.5))


def reese(
    f0: float, *, gate: int, sr: int, rng: np.random.Generator, detune_cents: float = 9.0
) -> np.ndarray:
    """Two saws a few cents apart, low-passed, slowly phasing; a sine underneath.

    A slow filter LFO over the note gives the drum & bass growl its movement.
    """
    release = int(0.06 * sr)
    n = gate + release
    hop = 512
    t = _frame_times(n, hop=hop, sr=sr)
    cutoffs = f0 * (5.0 + 3.5 * (1.0 - np.cos(2 * np.pi * t / rng.uniform(1.5, 3.0))))
    ratio = 2.0 ** (detune_cents / 1200.0)
    x = np.zeros(n, dtype=np.float32)
    for f in (f0 * ratio, f0 / ratio):
        tables = _filtered_frames("saw", f, n, sr=sr, cutoffs=cutoffs, q=1.1, order=3.0)
        x += wavetable(tables, f, n, sr=sr, hop=hop, phase=rng.uniform())
    y = fx.saturate(0.45 * x, 2.0) + 0.8 * sine(f0, n, sr=sr)
    env = adsr(gate, release, sr=sr, attack_s=0.01, decay_s=2.0, sustain=0.85)
    return _stereo(y * env)


def acid(
    f0: float,
    *,
    gate: int,
    sr: int,
    cutoff_hz: float,
    resonance: float,
    accent: bool,
    square: bool = False,
    glide_to: float | None = None,
) -> np.ndarray:
    """A 303-style note: saw (or square) through a resonant 18 dB/oct low-pass
    whose envelope snaps down from ``cutoff_hz`` times the accent boost.

    ``glide_to``: a slide; the pitch glides to that frequency over the
    note's last 60 ms and the note is held into the next one (legato)."""
    release = int(0.01 * sr) if glide_to is None else int(0.02 * sr)
    n = gate + release
    hop = 64
    t = _frame_times(n, hop=hop, sr=sr)
    freq: float | np.ndarray = f0
    top = f0
    if glide_to is not None:
        k = min(int(0.06 * sr), gate)
        curve = np.full(n, f0, dtype=np.float64)
        curve[gate - k : gate] = f0 * (glide_to / f0) ** np.linspace(0.0, 1.0, k)
        curve[gate:] = glide_to
        freq, top = curve, max(f0, glide_to)
    env_amt = 3.5 if accent else 1.8
    cutoffs = cutoff_hz * (1.0 + env_amt * np.exp(-t / (0.09 if accent else 0.16)))
    cutoffs = np.minimum(cutoffs, 0.4 * sr)
    q = resonance * (1.3 if accent else 1.0)
    shape = "square" if square else "saw"
    # Harmonics for the highest pitch the note reaches: no aliasing on a slide up.
    tables = _filtered_frames(shape, top, n, sr=sr, cutoffs=cutoffs, q=q, order=3.0)
    x = wavetable(tables, freq, n, sr=sr, hop=hop)
    env = adsr(gate, release, sr=sr, attack_s=0.002, decay_s=0.25, sustain=0.5)
    gain = 1.25 if accent else 1.0
    return _stereo(fx.saturate(gain * x * env / max(1.0, q * 0.35), 1.8))


def pluck(
    f0: float, *, gate: int, sr: int, brightness: float, decay_s: float, square: float = 0.0
) -> np.ndarray:
    """A bright pluck for arpeggios and stabs: filter and amplitude both decay."""
    release = int(0.05 * sr)
    n = gate + release
    hop = 128
    t = _frame_times(n, hop=hop, sr=sr)
    cutoffs = np.minimum(f0 * (1.2 + brightness * 12.0 * np.exp(-t / (decay_s * 0.6))), 0.4 * sr)
    tables = _filtered_frames("saw", f0, n, sr=sr, cutoffs=cutoffs, q=1.6, order=2.0)
    x = wavetable(tables, f0, n, sr=sr, hop=hop)
    if square > 0:
        sq = _filtered_frames("square", f0, n, sr=sr, cutoffs=cutoffs, q=1.6, order=2.0)
        x = x + square * wavetable(sq, f0 * 1.003, n, sr=sr, hop=hop)
    env = adsr(gate, release, sr=sr, attack_s=0.002, decay_s=decay_s, sustain=0.0)
    return _stereo(x * env)


def supersaw(
    f0: float,
    *,
    gate: int,
    sr: int,
    rng: np.random.Generator,
    voices: int = 7,
    detune_cents: float = 22.0,
    cutoff_hz: float = 6000.0,
) -> np.ndarray:
    """Several PolyBLEP saws detuned by up to ±``detune_cents``, spread in stereo."""
    release = int(0.12 * sr)
    n = gate + release
    out = np.zeros((2, n), dtype=np.float32)
    spread = np.linspace(-1.0, 1.0, voices)
    for d in spread:
        f = f0 * 2.0 ** (d * detune_cents / 1200.0)
        out += fx.pan(polyblep_saw(f, n, sr=sr, phase=rng.uniform()), 0.8 * d)
    out = fx.filt(out, "lowpass", cutoff_hz, sr=sr, order=2)
    env = adsr(gate, release, sr=sr, attack_s=0.006, decay_s=0.4, sustain=0.7)
    return (out * env / np.sqrt(voices)).astype(np.float32)


def rhodes(f0: float, *, gate: int, sr: int, velocity: float) -> np.ndarray:
    """An FM electric piano: a 1:1 modulator for the bark, a fast tine partial."""
    release = int(0.25 * sr)
    n = gate + release
    t = np.arange(n) / sr
    ph = 2 * np.pi * phase_cycles(f0, n, sr=sr)
    index = velocity * 1.6 * np.exp(-t / 0.35) + 0.25
    x = np.sin(ph + index * np.sin(ph))
    if 7.0 * f0 < 0.4 * sr:
        x += 0.12 * velocity * np.sin(7.0 * ph) * np.exp(-t / 0.03)
    decay = 1.6 * (261.0 / f0) ** 0.4
    env = adsr(gate, release, sr=sr, attack_s=0.003, decay_s=decay, sustain=0.0)
    return _stereo(x * env * (0.5 + 0.5 * velocity))


def felt_piano(f0: float, *, gate: int, sr: int, velocity: float) -> np.ndarray:
    """A soft piano: harmonics whose highs die first, strings a hair apart."""
    release = int(0.5 * sr)
    n = gate + release
    hop = 512
    t = _frame_times(n, hop=hop, sr=sr)
    k = np.arange(1, min(16, int(0.4 * sr / f0)) + 1)
    tilt = 1.0 / k ** (1.6 + 1.2 * (1.0 - velocity)) * np.exp(-k / 5.0)
    # A pedalled felt piano: the fundamental rings for seconds, highs fade first.
    tau = 3.0 * (261.0 / f0) ** 0.5 / (1.0 + 0.3 * (k - 1))
    amps = tilt[None, :] * np.exp(-t[:, None] / tau[None, :])
    tables = tables_from_harmonics(amps)
    # A centre string plus a quieter detuned one per side: the beating gives
    # life and width, and the mono sum can never cancel.
    centre = wavetable(tables, f0, n, sr=sr, hop=hop)
    left = centre + 0.45 * wavetable(tables, f0 * 1.0006, n, sr=sr, hop=hop)
    right = centre + 0.45 * wavetable(tables, f0 / 1.0006, n, sr=sr, hop=hop)
    env = adsr(gate, release, sr=sr, attack_s=0.004, decay_s=10.0, sustain=1.0)
    return (np.stack([left, right]) * env * (0.4 + 0.6 * velocity)).astype(np.float32)


def organ(f0: float, *, gate: int, sr: int) -> np.ndarray:
    """A drawbar organ (sub-octave to 4th harmonic) with a key click."""
    release = int(0.05 * sr)
    n = gate + release
    base = f0 / 2.0
    amps = np.zeros(16)
    for h, a in ((1, 0.6), (2, 1.0), (3, 0.5), (4, 0.7), (6, 0.35), (8, 0.3)):
        if h * base < 0.4 * sr:
            amps[h - 1] = a
    x = wavetable(tables_from_harmonics(amps), base, n, sr=sr)
    env = adsr(gate, release, sr=sr, attack_s=0.004, decay_s=0.3, sustain=0.75)
    return _stereo(x * env * 0.6)


def bell(f0: float, *, gate: int, sr: int) -> np.ndarray:
    """A soft glassy bell (FM, ratio 3.5) for sparse ambient melodies."""
    release = int(1.5 * sr)
    n = gate + release
    t = np.arange(n) / sr
    ph = 2 * np.pi * phase_cycles(f0, n, sr=sr)
    x = np.sin(ph + 0.9 * np.exp(-t / 0.6) * np.sin(3.5 * ph)) + 0.3 * np.sin(2.0 * ph) * np.exp(
        -t / 0.8
    )
    env = adsr(gate, release, sr=sr, attack_s=0.02, decay_s=2.5, sustain=0.0)
    return _stereo(x * env * 0.5)


def pad_loop(
    notes_hz: list[float],
    *,
    n: int,
    sr: int,
    rng: np.random.Generator,
    bandwidth_cents: float,
    cutoffs_hz: tuple[float, ...],
    shape: str = "saw",
    width: float = 1.0,
) -> np.ndarray:
    """PADsynth loops (V, 2, n) of a chord of ``shape`` waves, one per low-pass
    cutoff in ``cutoffs_hz``, all with the same phases."""
    freqs: list[np.ndarray] = []
    amps: list[np.ndarray] = []
    top = min(3.0 * max(cutoffs_hz), 16000.0)
    for f in notes_hz:
        a = np.abs(harmonic_amplitudes(shape, f, sr=sr, max_hz=top))  # type: ignore[arg-type]
        fk = f * np.arange(1, a.size + 1)
        freqs.append(fk)
        amps.append(np.stack([a * lowpass_response(fk, c, q=0.8, order=2.0) for c in cutoffs_hz]))
    return padsynth(
        np.concatenate(freqs),
        np.concatenate(amps, axis=1),
        n=n,
        sr=sr,
        bandwidth_cents=bandwidth_cents,
        rng=rng,
        width=width,
    )
