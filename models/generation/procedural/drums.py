"""Drum synthesis (kick, snare, clap, hats, shaker, rim, toms, crash, riser)
and the placement of hits on a stem.

Each one-shot is synthesised once per track (a few round-robin variants so
repeated hats do not sound like a machine gun) and then copied into place.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from models.generation.procedural import effects as fx
from models.generation.procedural.oscillators import phase_cycles, polyblep_square

# The six inharmonic square oscillators of a TR-808 cymbal, scaled up.
_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)


@dataclass(frozen=True)
class DrumKit:
    """Sound-design parameters of one genre's kit."""

    kick_start_hz: float = 150.0
    kick_end_hz: float = 50.0
    kick_pitch_tau_s: float = 0.03
    kick_decay_s: float = 0.32
    kick_click: float = 0.35
    kick_drive: float = 2.0
    snare_tone_hz: float = 190.0
    snare_decay_s: float = 0.16
    snare_top_hz: float = 9000.0
    clap_decay_s: float = 0.2
    hat_closed_s: float = 0.05
    hat_open_s: float = 0.26
    hat_hp_hz: float = 7000.0
    room: float = 0.2
    rumble: float = 0.0  # techno's low reverberant tail under the kick
    soft: bool = False  # lo-fi: rounder transients, darker noise


def _rng(seed: int, name: str, variant: int) -> np.random.Generator:
    # A stable stream per (one-shot, variant) so synthesis order never matters.
    return np.random.Generator(np.random.PCG64([seed, zlib.crc32(name.encode()), variant]))


def _env(n: int, sr: int, tau_s: float, *, attack_s: float = 0.0005) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.exp(-t / tau_s)
    a = max(int(attack_s * sr), 1)
    env[:a] *= np.linspace(0.0, 1.0, a)
    return env


def _tail_fade(x: np.ndarray, sr: int, seconds: float = 0.01) -> np.ndarray:
    k = min(int(seconds * sr), x.shape[-1])
    x[..., -k:] *= np.linspace(1.0, 0.0, k)
    return x


def kick(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sine whose pitch falls fast from ~150 Hz to 45–60 Hz, plus a click."""
    n = int((kit.kick_decay_s * 2.2 + 0.05) * sr)
    t = np.arange(n) / sr
    freq = kit.kick_end_hz + (kit.kick_start_hz - kit.kick_end_hz) * np.exp(
        -t / kit.kick_pitch_tau_s
    )
    body = np.sin(2 * np.pi * phase_cycles(freq, n, sr=sr))
    hold = 0.02
    amp = np.where(t < hold, 1.0, np.exp(-(t - hold) / (kit.kick_decay_s / 2.5)))
    click = fx.filt(rng.standard_normal(n), "highpass", 1500.0, sr=sr) * _env(n, sr, 0.004)
    x = body * amp + kit.kick_click * click
    x = np.tanh(kit.kick_drive * x) / np.tanh(kit.kick_drive)
    if kit.soft:
        x = fx.filt(x, "lowpass", 2500.0, sr=sr)
    return _tail_fade(np.stack([x, x]).astype(np.float32), sr)


def rumble(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Techno rumble: the kick through a long dark reverb, low-passed and driven."""
    k = kick(kit, sr=sr, rng=rng)[0]
    ir = fx.reverb_ir(sr, 1.2, 400.0, 0.0)[0]
    wet = np.convolve(k, ir[: int(0.9 * sr)])
    wet = fx.filt(wet, "lowpass", 140.0, sr=sr, order=4)
    wet = fx.saturate(wet / (np.max(np.abs(wet)) + 1e-9), 2.5)
    wet[: int(0.03 * sr)] *= np.linspace(0.0, 1.0, int(0.03 * sr))
    return _tail_fade(np.stack([wet, wet]).astype(np.float32), sr, 0.2)


def _room(x: np.ndarray, kit: DrumKit, sr: int) -> np.ndarray:
    """A mono hit with a short stereo room tail (2, L)."""
    if kit.room <= 0.0:
        return np.stack([x, x]).astype(np.float32)
    ir = fx.reverb_ir(sr, 0.45, 5000.0, 0.008)
    wet = fx.reverb(x, ir, sr=sr)
    return _tail_fade((np.stack([x, x]) + kit.room * 4.0 * wet).astype(np.float32), sr, 0.05)


def snare(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A tuned body (two modes) and a band-passed noise burst."""
    n = int((kit.snare_decay_s * 3 + 0.3) * sr)
    t = np.arange(n) / sr
    f = kit.snare_tone_hz * (1.0 + 0.25 * np.exp(-t / 0.01))
    tone = np.sin(2 * np.pi * phase_cycles(f, n, sr=sr)) * _env(n, sr, 0.045)
    tone += 0.5 * np.sin(2 * np.pi * phase_cycles(f * 1.62, n, sr=sr)) * _env(n, sr, 0.03)
    noise = fx.filt(rng.standard_normal(n), "bandpass", 1200.0, sr=sr, high=kit.snare_top_hz)
    noise *= _env(n, sr, kit.snare_decay_s / 2.5)
    x = 0.55 * tone + 1.1 * noise
    if kit.soft:
        x = fx.filt(x, "lowpass", 4500.0, sr=sr)
    return _room(x / np.max(np.abs(x)), kit, sr)


def clap(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Four quick noise bursts (several hands) and a decaying tail, band-passed."""
    n = int((kit.clap_decay_s * 3 + 0.3) * sr)
    t = np.arange(n) / sr
    env = np.zeros(n)
    for k, offset in enumerate((0.0, 0.009, 0.019, 0.027)):
        env += np.where(t >= offset, np.exp(-np.maximum(t - offset, 0) / 0.0035), 0.0) * (
            0.8 + 0.1 * k
        )
    env += np.where(t >= 0.027, 0.7 * np.exp(-np.maximum(t - 0.027, 0) / (kit.clap_decay_s / 3)), 0)
    x = fx.filt(rng.standard_normal(n), "bandpass", 900.0, sr=sr, high=5000.0) * env
    if kit.soft:
        x = fx.filt(x, "lowpass", 4000.0, sr=sr)
    return _room(x / np.max(np.abs(x)), kit, sr)


def hat(kit: DrumKit, *, sr: int, rng: np.random.Generator, open_: bool) -> np.ndarray:
    """High-passed noise with a metallic edge; each channel its own noise (wide)."""
    dur = kit.hat_open_s if open_ else kit.hat_closed_s
    n = int(dur * 1.6 * sr)
    metal = sum(polyblep_square(f * 1.7, n, sr=sr, phase=rng.uniform()) for f in _METAL_HZ)
    shared = rng.standard_normal(n)
    chans = [0.6 * shared + 0.8 * rng.standard_normal(n) + 0.15 * metal for _ in range(2)]
    x = fx.filt(np.stack(chans), "highpass", kit.hat_hp_hz, sr=sr, order=4)
    if kit.soft:
        x = fx.filt(x, "lowpass", 9000.0, sr=sr)
    x *= _env(n, sr, dur / 3.0, attack_s=0.0015)
    return _tail_fade((x / np.max(np.abs(x))).astype(np.float32), sr, 0.005)


def shaker(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise with a soft attack, placed right of centre."""
    n = int(0.12 * sr)
    x = fx.filt(rng.standard_normal(n), "bandpass", 4000.0, sr=sr, high=11000.0)
    x *= _env(n, sr, 0.03, attack_s=0.012)
    return _tail_fade(fx.pan(x / np.max(np.abs(x)), 0.35), sr)


def rim(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A short woody click: two tones and a tick, slightly left."""
    n = int(0.09 * sr)
    x = np.sin(2 * np.pi * 1700.0 * np.arange(n) / sr) * _env(n, sr, 0.012)
    x += 0.6 * np.sin(2 * np.pi * 820.0 * np.arange(n) / sr) * _env(n, sr, 0.02)
    x += 0.3 * fx.filt(rng.standard_normal(n), "highpass", 3000.0, sr=sr) * _env(n, sr, 0.003)
    return _tail_fade(fx.pan(x / np.max(np.abs(x)), -0.3), sr)


def tom(kit: DrumKit, *, sr: int, rng: np.random.Generator, hz: float) -> np.ndarray:
    """A pitch-dropping membrane (toms in fills, congas in percussion loops)."""
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    f = hz * (1.0 + 0.6 * np.exp(-t / 0.04))
    x = np.sin(2 * np.pi * phase_cycles(f, n, sr=sr)) * _env(n, sr, 0.12)
    x += (
        0.08
        * fx.filt(rng.standard_normal(n), "bandpass", 800.0, sr=sr, high=5000.0)
        * _env(n, sr, 0.02)
    )
    pos = float(np.clip((hz - 160.0) / 200.0, -0.4, 0.4))
    return _tail_fade(fx.pan(x / np.max(np.abs(x)), pos), sr)


def crash(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A wide, bright, long-decaying cymbal."""
    n = int(2.6 * sr)
    metal = sum(polyblep_square(f * 2.3, n, sr=sr, phase=rng.uniform()) for f in _METAL_HZ)
    chans = [rng.standard_normal(n) + 0.1 * metal for _ in range(2)]
    x = fx.filt(np.stack(chans), "highpass", 3500.0, sr=sr, order=2)
    x *= _env(n, sr, 0.55, attack_s=0.002)
    if kit.soft:
        x = fx.filt(x, "lowpass", 7000.0, sr=sr)
    return _tail_fade((x / np.max(np.abs(x))).astype(np.float32), sr, 0.3)


def riser(n: int, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """White noise rising in level and brightness over ``n`` samples."""
    x = rng.standard_normal((2, n)).astype(np.float32)
    x = fx.sweep_filter(x, "highpass", 150.0, 6000.0, sr=sr, block=2048)
    x = fx.sweep_filter(x, "lowpass", 900.0, 16000.0, sr=sr, block=2048)
    ramp = np.linspace(0.0, 1.0, n) ** 2.2
    x *= ramp.astype(np.float32)
    return _tail_fade((x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32), sr, 0.02)


def impact(kit: DrumKit, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A low boom for the drop: a sine sliding from 80 to 38 Hz."""
    n = int(1.6 * sr)
    t = np.arange(n) / sr
    f = 38.0 + 42.0 * np.exp(-t / 0.12)
    x = np.sin(2 * np.pi * phase_cycles(f, n, sr=sr)) * _env(n, sr, 0.45, attack_s=0.003)
    return _tail_fade(np.stack([x, x]).astype(np.float32), sr, 0.2)


class DrumSet:
    """The one-shots of a track, synthesised on first use and then reused."""

    def __init__(self, kit: DrumKit, *, sr: int, seed: int) -> None:
        self.kit = kit
        self.sr = sr
        self.seed = seed
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def get(self, name: str, variant: int = 0) -> np.ndarray:
        """The (2, L) one-shot ``name`` (e.g. "kick", "hat", "tom_120")."""
        key = (name, variant)
        if key not in self._cache:
            x = self._make(name, _rng(self.seed, name, variant))
            # Peak 1 for every one-shot: the genre table's gains set the mix.
            self._cache[key] = (x / (np.max(np.abs(x)) + 1e-12)).astype(np.float32)
        return self._cache[key]

    def _make(self, name: str, rng: np.random.Generator) -> np.ndarray:
        kit, sr = self.kit, self.sr
        if name.startswith("tom_"):
            return tom(kit, sr=sr, rng=rng, hz=float(name[4:]))
        if name in ("hat", "open_hat"):
            return hat(kit, sr=sr, rng=rng, open_=name == "open_hat")
        makers = {
            "kick": kick,
            "rumble": rumble,
            "snare": snare,
            "clap": clap,
            "shaker": shaker,
            "rim": rim,
            "crash": crash,
            "impact": impact,
        }
        if name not in makers:
            raise KeyError(f"unknown drum sound {name!r}; allowed: {', '.join(makers)}")
        return makers[name](kit, sr=sr, rng=rng)


def place(
    out: np.ndarray,
    sample: np.ndarray,
    hits: Iterable[tuple[int, float]],
    *,
    pan: float = 0.0,
) -> None:
    """Add ``sample`` (2, L) into ``out`` (2, N) at each (position, gain),
    panned by ``pan`` (-1 left … +1 right, constant power, 0 leaves it as is)."""
    n = out.shape[-1]
    length = sample.shape[-1]
    if pan:
        angle = (pan + 1.0) * np.pi / 4.0
        chan = np.array([[np.cos(angle)], [np.sin(angle)]], dtype=np.float32) * np.float32(
            np.sqrt(2.0)
        )
    for pos, gain in hits:
        start = max(pos, 0)
        end = min(pos + length, n)
        if end <= start:
            continue
        seg = sample[:, start - pos : end - pos]
        if pan:
            out[:, start:end] += (np.float32(gain) * chan) * seg
        else:
            out[:, start:end] += np.float32(gain) * seg
