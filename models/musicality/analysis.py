"""One pass of musical analysis over a track (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal as sps

from models.features import SpectralFeatures
from models.generation.procedural.genres import GENRE_BPM_RANGES
from models.musicality.measures import (
    MixMeasures,
    onset_density,
    stereo_measures,
    tonal_balance,
)
from models.musicality.rhythm import DrumPattern, analyse_pattern
from models.musicality.structure import Structure, analyse_structure
from models.musicality.tempo import TempoEstimate, at_octave, estimate_tempo
from models.musicality.tonal import (
    DECIMATE,
    FineSpectrogram,
    KeyEstimate,
    chromagram,
    estimate_key,
    fine_spectrogram_of_mono,
)


@dataclass(frozen=True)
class MusicalAnalysis:
    """Everything measured; ``chroma`` and ``spectrogram`` are kept for
    pictures (``sonicforge inspect``)."""

    def at_genre(self, genre: str) -> tuple[float, DrumPattern]:
        """(bpm, pattern) at ``genre``'s octave of the measured tempo."""
        if genre not in GENRE_BPM_RANGES or self.tempo.bpm <= 0:
            return self.pattern_bpm, self.pattern
        bpm = at_octave(self.tempo.bpm, *GENRE_BPM_RANGES[genre])
        return bpm, self.patterns.get(round(bpm, 2), self.pattern)

    tempo: TempoEstimate
    pattern_bpm: float  # the tempo at the genre's octave, as the pattern is read
    key: KeyEstimate
    structure: Structure
    pattern: DrumPattern
    mix: MixMeasures
    #: The drum pattern read at each octave of the tempo (1/2, 1, 2), so
    #: every genre's target can be checked at its own octave.
    patterns: dict[float, DrumPattern]
    chroma: np.ndarray
    spectrogram: FineSpectrogram
    duration_s: float
    #: Mean chroma entropy (nats, 0..ln 12) of the louder half of the frames:
    #: how many pitch classes sound together where the track is fullest. A
    #: layer muted lowers it.
    fullness: float = 0.0


def analyse(
    x: np.ndarray,
    sample_rate: int,
    spectral: SpectralFeatures,
    *,
    genre: str | None,
    label_key: str | None,
) -> MusicalAnalysis:
    """Analyse float32 ``(channels, samples)`` audio whose spectral features
    (``models.features.spectral_features``) are already computed."""
    low = sps.resample_poly(x, 1, DECIMATE, axis=-1).astype(np.float32)
    sr_low = sample_rate / DECIMATE
    mono_low = low.mean(axis=0) if low.shape[0] > 1 else low[0]
    spec = fine_spectrogram_of_mono(mono_low, sr_low)
    chroma = chromagram(spec)
    tempo = estimate_tempo(spectral)
    pattern_bpm = tempo.bpm
    if genre in GENRE_BPM_RANGES and tempo.bpm > 0:
        pattern_bpm = at_octave(tempo.bpm, *GENRE_BPM_RANGES[genre])
    key = estimate_key(chroma, spec, label=label_key)
    beat_s = 60.0 / at_octave(tempo.bpm, 80.0, 160.0) if tempo.bpm > 0 else 0.0
    structure = analyse_structure(
        spectral.band_frames,
        spectral.frames_per_s,
        chroma,
        spec.frames_per_s,
        spectral.onset_envelope,
        beat_s=beat_s,
    )
    patterns = {
        round(tempo.bpm * f, 2): analyse_pattern(
            spectral.band_onsets, spectral.frames_per_s, tempo.bpm * f
        )
        for f in (0.5, 1.0, 2.0)
    }
    pattern = patterns.get(round(pattern_bpm, 2)) or analyse_pattern(
        spectral.band_onsets, spectral.frames_per_s, pattern_bpm
    )
    low_side, width = stereo_measures(low, sr_low, x)
    mix = MixMeasures(
        balance_db=tonal_balance(spectral),
        low_side_db=low_side,
        width=width,
        onsets_per_s=onset_density(spectral),
    )
    return MusicalAnalysis(
        fullness=_fullness(chroma, spec),
        tempo=tempo,
        pattern_bpm=pattern_bpm,
        key=key,
        structure=structure,
        pattern=pattern,
        mix=mix,
        patterns=patterns,
        chroma=chroma,
        spectrogram=spec,
        duration_s=x.shape[1] / float(sample_rate),
    )


def _fullness(chroma: np.ndarray, spec: FineSpectrogram) -> float:
    total = spec.power.sum(axis=1)[: chroma.shape[0]]
    if chroma.size == 0 or not np.any(total > 0):
        return 0.0
    loud = total >= np.percentile(total, 50)
    c = chroma[: total.size][loud].astype(np.float64)
    c = c[c.sum(axis=1) > 0]
    if c.size == 0:
        return 0.0
    c /= c.sum(axis=1, keepdims=True)
    return float(np.mean(-(c * np.log(c + 1e-12)).sum(axis=1)))
