"""The drum pattern, read from band onset envelopes folded on the beat.

With the tempo read at the genre's octave, the beat period is refined and
its phase found where the kick- and snare-band onsets, folded on the beat,
are strongest. Each
beat then gets a kick, snare and hat strength at its start and at its "&",
from which the pattern measures follow:

- ``kick_every_beat``: in stretches of four beats that have a kick at all,
  the share of beats that have one (four-on-the-floor ≈ 1, a two-step or a
  boom-bap ≈ 0.25–0.5);
- ``backbeat``: how much more snare falls on alternate beats than on the
  others (claps or snares on 2 and 4 ≈ 0.5–1, none ≈ 0);
- ``offbeat_hats``: hat strength on the "&" over the hat strength on the
  beat (open hats on every "&" > 1);
- ``swing``: where the second 16th of each 8th falls, as a share of the 8th
  (0.5 straight, lo-fi 0.55–0.62), from the hat band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_REFINE = 0.004  # ±0.4 % around the estimate
_REFINE_STEPS = 41


@dataclass(frozen=True)
class DrumPattern:
    beat_bpm: float
    beat_phase_s: float
    kick_every_beat: float
    backbeat: float
    offbeat_hats: float
    swing: float
    kick_presence: float  # share of beats with a kick at all
    #: Low-band (30-150 Hz) onsets on the e, & and a of each beat over those
    #: on the beat: a bass line moving between the kicks reads 0.5 and
    #: more, a kick alone under nothing near 0.
    low_offbeat: float = 0.0


def _resultant(weights: np.ndarray, times: np.ndarray, period: float) -> complex:
    return complex(
        np.sum(weights * np.exp(2j * np.pi * times / period)) / (np.sum(weights) + 1e-12)
    )


def _strength(env: np.ndarray, centres: np.ndarray, radius: int) -> np.ndarray:
    """Max of ``env`` within ``radius`` frames of each (fractional) centre."""
    idx = np.round(centres).astype(np.int64)
    out = np.zeros(idx.size)
    for k in range(-radius, radius + 1):
        j = np.clip(idx + k, 0, env.size - 1)
        out = np.maximum(out, env[j])
    return out


def analyse_pattern(band_onsets: dict[str, np.ndarray], fps: float, bpm: float) -> DrumPattern:
    """The drum pattern at ``bpm`` (already at the genre's octave); all zeros
    when there is no beat."""
    if bpm <= 0.0 or not band_onsets:
        return DrumPattern(0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0)
    kick, snare, hats = band_onsets["kick"], band_onsets["snare"], band_onsets["hats"]
    n = kick.size
    t = np.arange(n, dtype=np.float64)
    # The beat's phase from kicks and snares together: a two-step's second
    # kick falls on an "&", its snares on the beat.
    w = kick.astype(np.float64) ** 2 + snare.astype(np.float64) ** 2
    base = 60.0 * fps / bpm  # frames per beat
    best = (0.0, base, 0.0)
    for period in base * (1.0 + np.linspace(-_REFINE, _REFINE, _REFINE_STEPS)):
        z = _resultant(w, t, period)
        if abs(z) > best[0]:
            best = (abs(z), period, float(np.angle(z)))
    _, period, _ = best
    # The phase from the strongest place in the fold, not the circular mean:
    # a rolling bass on the e, & and a would pull a mean off the kick.
    bins = 32
    fold = np.bincount(
        ((t % period) / period * bins).astype(np.int64) % bins, weights=w, minlength=bins
    )
    smooth = fold + 0.5 * (np.roll(fold, 1) + np.roll(fold, -1))
    phase = (int(np.argmax(smooth)) + 0.5) / bins * period
    beats = np.arange(phase, n - period, period)
    if beats.size < 8:
        return DrumPattern(0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0)
    radius = max(1, round(period / 16.0))
    k_on = _strength(kick, beats, radius)
    s_on = _strength(snare, beats, radius)
    h_on = _strength(hats, beats, radius)
    h_and = _strength(hats, beats + period / 2.0, radius)
    low_between = sum(
        float(_strength(kick, beats + period * f, radius).mean()) for f in (0.25, 0.5, 0.75)
    )
    low_offbeat = low_between / (float(k_on.mean()) + 1e-9)
    k_ref = float(np.percentile(k_on, 90)) + 1e-9
    has_kick = k_on > 0.3 * k_ref
    groups = has_kick[: has_kick.size // 4 * 4].reshape(-1, 4)
    with_kick = groups[groups.any(axis=1)]
    kick_every = float(with_kick.mean()) if with_kick.size else 0.0
    # Backbeat: alternate beats, at whichever parity carries more snare.
    # Only beats in drum-playing stretches count (breakdowns would dilute).
    active = (s_on > 0.1 * (float(np.percentile(s_on, 95)) + 1e-9)) | has_kick
    even, odd = s_on[0::2][active[0::2]], s_on[1::2][active[1::2]]
    if even.size and odd.size and (even.mean() + odd.mean()) > 0:
        backbeat = float(abs(even.mean() - odd.mean()) / (even.mean() + odd.mean()))
    else:
        backbeat = 0.0
    offbeat = float((h_and.mean() + 1e-9) / (h_on.mean() + 1e-9)) if h_on.size else 0.0
    # Swing from the hat band folded on the 8th note, 40 bins; the second
    # 16th's peak is searched between 35 % and 75 % of the 8th.
    eighth = period / 2.0
    rel = ((t - phase) % eighth) / eighth
    hist = np.bincount(
        (rel * 40).astype(np.int64) % 40, weights=hats.astype(np.float64), minlength=40
    )
    swing = 0.5
    start_pos = _peak_position(hist, np.r_[36:40, 0:5])
    odd_pos = _peak_position(hist, np.arange(14, 30))
    if start_pos is not None and odd_pos is not None:
        swing = float((odd_pos - start_pos) % 1.0)
    return DrumPattern(
        beat_bpm=60.0 * fps / period,
        beat_phase_s=phase / fps,
        kick_every_beat=kick_every,
        backbeat=backbeat,
        offbeat_hats=offbeat,
        swing=swing,
        kick_presence=float(has_kick.mean()),
        low_offbeat=float(min(low_offbeat, 10.0)),
    )


def _peak_position(hist: np.ndarray, bins: np.ndarray) -> float | None:
    """The (parabolically refined) position, 0..1 of the fold, of the
    histogram's peak among ``bins``; None when there is no clear peak."""
    values = hist[bins]
    if values.sum() <= 0 or values.max() < 1.2 * float(np.median(hist)):
        return None
    i = int(np.argmax(values))
    size = hist.size
    centre = int(bins[i])
    a, b, c = hist[(centre - 1) % size], hist[centre], hist[(centre + 1) % size]
    denom = a - 2 * b + c
    frac = 0.5 * (a - c) / denom if denom != 0 else 0.0
    return float(((centre + 0.5 + np.clip(frac, -0.5, 0.5)) / size) % 1.0)
