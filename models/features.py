"""Spectral features from one short-time Fourier transform.

Everything here works on the mono downmix at the source rate: one STFT
(1024-point Hann frames, a 10 ms hop) feeds the spectral centroid, the
spectral flatness, octave-band powers per frame, and the spectral-flux
onset envelopes (all bins, and kick / snare / hat bands) that tempo and
rhythm are read from (``models.musicality``). A 180 s track is about
18,000 frames, about 0.1 s on one core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter1d

from models.audio_io import as_float32_audio

MIN_BPM = 60.0
MAX_BPM = 200.0
_BPM_STEP = 0.05
_HARMONICS = 4  # partials summed per tempo candidate: the 4th pins the tempo 4x finer
_FRAMES_PER_S = 100  # the hop is 10 ms, the onset envelope's rate
_SILENT_FRAME_POWER = 1e-6  # -60 dBFS mean square: frames quieter are skipped
_FLUX_COMPRESSION = 1e4  # log(1 + C * power): onsets of quiet parts count too
#: The flux is taken as if the track's RMS were -20 dBFS, so onset strength
#: does not depend on the level (a raw track may sit anywhere).
_FLUX_REFERENCE_RMS = 0.1
_POWER_EPS = 1e-12
_FRAMES_PER_FFT = 2048  # frames transformed at once (8 MB of float32)
#: The best tempo's score over the mean score of all candidates. Steady
#: drums score 7 to 30; noise, pads and randomly timed notes 1.5 to 2.5.
MIN_BEAT_SALIENCE = 3.0
#: Mean onset strength under which there are no onsets at all, only the
#: numerical ripple of a steady tone (~1e-4; drums read ~1, soft pads ~0.3).
MIN_ONSET_STRENGTH = 0.01
_EDGE_S = 0.5


#: Centre frequencies of the octave bands of the tonal-balance curve and
#: the timbre features (ISO 266 octaves, 31.5 Hz .. 16 kHz).
OCTAVE_CENTRES_HZ = (31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
#: Bands of the per-instrument onset envelopes: kick, snare/clap, hats.
ONSET_BANDS_HZ = {"kick": (30.0, 150.0), "snare": (1000.0, 5000.0), "hats": (6000.0, 16000.0)}


@dataclass(frozen=True)
class SpectralFeatures:
    """Mean spectral centroid (Hz) and flatness (0 tonal .. 1 white noise)
    over the non-silent frames, and the spectral-flux onset envelope.

    ``band_frames`` holds each frame's power (mean square) in the octave
    bands of ``OCTAVE_CENTRES_HZ``; ``band_onsets`` the onset envelope of
    each band of ``ONSET_BANDS_HZ`` (kick, snare, hats), on the same frames.
    """

    centroid_hz: float
    flatness: float
    onset_envelope: np.ndarray  # one value per frame, >= 0
    frames_per_s: float
    band_frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 10), np.float32))
    band_onsets: dict[str, np.ndarray] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    win = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    return (win / win.sum()).astype(np.float32)  # a full-scale sine peaks at 0.5


def spectral_features(audio: np.ndarray, sample_rate: int) -> SpectralFeatures:
    """Centroid, flatness and onset envelope of the mono downmix.

    A signal with no frame above -60 dBFS has centroid and flatness 0.0.
    """
    x = as_float32_audio(audio)
    mono = x.mean(axis=0) if x.shape[0] > 1 else x[0]
    n_fft = 1024 if sample_rate <= 48_000 else 2048
    hop = max(1, round(sample_rate / _FRAMES_PER_S))
    if mono.shape[0] < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.shape[0]))
    frames = sliding_window_view(mono, n_fft)[::hop]
    win = _window(n_fft)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    # rfft power of a Hann-normalised frame back to the frame's mean square
    # (Parseval, counting the mirrored half of the spectrum twice).
    to_mean_square = 2.0 / (n_fft * float(np.sum(win * win)))

    rms = float(np.sqrt(np.dot(mono, mono) / mono.shape[0]))
    flux_gain = _FLUX_COMPRESSION * (_FLUX_REFERENCE_RMS / rms) ** 2 if rms > 1e-7 else 0.0

    count = frames.shape[0]
    band_matrix = _band_matrix(freqs, OCTAVE_CENTRES_HZ) * np.float32(to_mean_square)
    onset_bins = {
        name: (int(np.searchsorted(freqs, lo)), int(np.searchsorted(freqs, hi)))
        for name, (lo, hi) in ONSET_BANDS_HZ.items()
    }
    band_frames = np.empty((count, len(OCTAVE_CENTRES_HZ)), dtype=np.float32)
    band_flux = {name: np.zeros(count, dtype=np.float32) for name in onset_bins}
    power_sum = np.empty(count, dtype=np.float64)
    centroid_num = np.empty(count, dtype=np.float64)
    flatness = np.empty(count, dtype=np.float64)
    flux = np.zeros(count, dtype=np.float32)
    previous: np.ndarray | None = None
    for start in range(0, count, _FRAMES_PER_FFT):
        stop = min(start + _FRAMES_PER_FFT, count)
        spectrum = scipy.fft.rfft(frames[start:stop] * win, axis=-1, workers=1)
        power = spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
        power_sum[start:stop] = power.sum(axis=1)
        band_frames[start:stop] = power.astype(np.float32) @ band_matrix
        centroid_num[start:stop] = power @ freqs
        log_power = np.log(power + _POWER_EPS)
        flatness[start:stop] = np.exp(log_power.mean(axis=1)) / (power.mean(axis=1) + _POWER_EPS)
        compressed = np.log1p(np.float32(flux_gain) * power)
        if previous is not None:
            compressed_all = np.vstack([previous, compressed])
        else:
            compressed_all = np.vstack([compressed[:1], compressed])
        rise = np.maximum(np.diff(compressed_all, axis=0), 0.0)
        flux[start:stop] = rise.sum(axis=1)
        for name, (lo, hi) in onset_bins.items():
            band_flux[name][start:stop] = rise[:, lo:hi].sum(axis=1)
        previous = compressed[-1:]

    loud = power_sum * to_mean_square >= _SILENT_FRAME_POWER
    if loud.any():
        centroid = float(np.mean(centroid_num[loud] / power_sum[loud]))
        flat = float(np.clip(np.mean(flatness[loud]), 0.0, 1.0))
    else:
        centroid, flat = 0.0, 0.0
    # Onsets stand out from a 1 s moving average; half-wave rectified.
    onset = np.maximum(flux - uniform_filter1d(flux, size=_FRAMES_PER_S), 0.0)
    band_onsets = {
        name: np.maximum(f - uniform_filter1d(f, size=_FRAMES_PER_S), 0.0)
        for name, f in band_flux.items()
    }
    return SpectralFeatures(centroid, flat, onset, sample_rate / hop, band_frames, band_onsets)


def _band_matrix(freqs: np.ndarray, centres: tuple[float, ...]) -> np.ndarray:
    """(bins, bands) 0/1 matrix: which rfft bins fall in each octave band."""
    out = np.zeros((freqs.size, len(centres)), dtype=np.float32)
    for j, c in enumerate(centres):
        out[:, j] = (freqs >= c / np.sqrt(2.0)) & (freqs < c * np.sqrt(2.0))
    return out


def tempo_spectrum(onset: np.ndarray, frames_per_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate bpm on a 0.05 BPM grid over [60, 200] and its score:
    the onset envelope's spectrum summed at the beat frequency and its
    first harmonics (a Fourier tempogram of the whole track).

    A spectral comb rather than an autocorrelation comb: a kick on the beat
    and hats on the off-beat share no partial with 2/3 of the tempo, while
    their autocorrelation peaks at 1.5 beats too and reads 113 for 170 BPM.
    """
    bpms = np.arange(MIN_BPM, MAX_BPM + _BPM_STEP / 2, _BPM_STEP)
    n = onset.shape[0]
    if n < 4 or not np.any(onset > 0.0):
        return bpms, np.zeros_like(bpms)
    o = (onset.astype(np.float64) - float(onset.mean())) * np.hanning(n)
    # Zero-padded so that one bin is a 0.05 BPM step at the first harmonic.
    size = scipy.fft.next_fast_len(max(2 * n, int(60.0 * frames_per_s / _BPM_STEP)))
    magnitude = np.abs(scipy.fft.rfft(o, size))
    bin_hz = frames_per_s / size
    beat_hz = bpms / 60.0
    bins = np.arange(magnitude.shape[0])
    scores = sum(np.interp(k * beat_hz / bin_hz, bins, magnitude) for k in range(1, _HARMONICS + 1))
    return bpms, np.asarray(scores, dtype=np.float64)
