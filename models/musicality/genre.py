"""What each genre should measure like, from the genre table in
shared/MUSIC.md, and how far a track is from it.

Each target is a range: inside it a measure scores 0.6 to 1.0 (1.0 at the
centre, so a track nearer the idiom ranks higher), falling linearly to 0.0
one ``soft`` width outside. The tonal-balance curves are per octave band
(31.5 Hz .. 16 kHz, each band's share of the power in dB) with a tolerance:
lo-fi is *meant* to be dark (the mix low-passed around 4–8 kHz) and ambient
to have no kick, so neither is penalised for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.generation.procedural.genres import GENRE_BPM_RANGES

Range = tuple[float, float]
FOUR_ON_THE_FLOOR = "four_on_the_floor"
TWO_STEP = "two_step"
BOOM_BAP = "boom_bap"
BEATLESS = "beatless"


@dataclass(frozen=True)
class GenreTarget:
    name: str
    bpm: Range
    drums: str  # FOUR_ON_THE_FLOOR, TWO_STEP, BOOM_BAP or BEATLESS
    balance_db: tuple[float, ...]  # per octave band, 31.5 Hz .. 16 kHz
    balance_tolerance_db: tuple[float, ...]
    lra_lu: Range
    width: Range
    onsets_per_s: Range
    harmonic_change: Range
    swing: Range = (0.48, 0.56)
    low_side_db_max: float = -15.0
    description: str = ""


_TOL = (6.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 5.0, 6.0)

TARGETS: dict[str, GenreTarget] = {
    t.name: t
    for t in (
        GenreTarget(
            "house",
            GENRE_BPM_RANGES["house"],
            FOUR_ON_THE_FLOOR,
            (-5, -5, -8, -11, -13, -16, -18, -20, -23, -23),
            _TOL,
            lra_lu=(2.5, 9.0),
            width=(0.03, 0.5),
            onsets_per_s=(3.0, 9.0),
            harmonic_change=(0.13, 0.6),
            swing=(0.49, 0.57),
            description="four-on-the-floor, clap on 2 and 4, chord changes",
        ),
        GenreTarget(
            "techno",
            GENRE_BPM_RANGES["techno"],
            FOUR_ON_THE_FLOOR,
            (-4, -5, -10, -11, -14, -16, -18, -19, -25, -24),
            _TOL,
            lra_lu=(2.5, 9.0),
            width=(0.03, 0.5),
            onsets_per_s=(3.5, 10.0),
            harmonic_change=(0.0, 0.13),
            description="heavy four-on-the-floor, one-chord hypnotic loops",
        ),
        GenreTarget(
            "trance",
            GENRE_BPM_RANGES["trance"],
            FOUR_ON_THE_FLOOR,
            (-5, -5, -9, -14, -12, -13, -15, -18, -22, -22),
            _TOL,
            lra_lu=(3.0, 10.0),
            width=(0.04, 0.6),
            onsets_per_s=(4.0, 11.0),
            harmonic_change=(0.13, 0.6),
            description="four-on-the-floor at 136-140, minor progressions, supersaws",
        ),
        GenreTarget(
            "drum_and_bass",
            GENRE_BPM_RANGES["drum_and_bass"],
            TWO_STEP,
            (-6, -5, -7, -10, -12, -15, -17, -19, -20, -22),
            _TOL,
            lra_lu=(2.0, 9.0),
            width=(0.04, 0.6),
            onsets_per_s=(2.0, 10.0),
            harmonic_change=(0.1, 0.6),
            description="two-step breakbeat at 170-176 over sub and reese",
        ),
        GenreTarget(
            "lofi_hip_hop",
            GENRE_BPM_RANGES["lofi_hip_hop"],
            BOOM_BAP,
            (-5, -5, -11, -7, -13, -20, -23, -27, -35, -54),
            (6.0, 4.0, 5.0, 5.0, 4.0, 5.0, 5.0, 5.0, 7.0, 12.0),
            lra_lu=(3.0, 12.0),
            width=(0.02, 0.4),
            onsets_per_s=(2.0, 9.0),
            harmonic_change=(0.2, 0.8),
            swing=(0.54, 0.64),
            description="swung boom-bap at 70-90, jazz chords, low-passed mix",
        ),
        GenreTarget(
            "ambient",
            GENRE_BPM_RANGES["ambient"],
            BEATLESS,
            (-17, -11, -8, -7, -6, -7, -12, -18, -30, -47),
            (8.0, 5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 5.0, 8.0, 12.0),
            lra_lu=(1.5, 14.0),
            width=(0.15, 1.0),
            onsets_per_s=(0.0, 3.0),
            harmonic_change=(0.03, 0.45),
            low_side_db_max=-12.0,
            description="no beat, slow pads and drones, wide",
        ),
    )
}


def in_range(value: float, ok: Range, soft: float) -> float:
    """0.6..1.0 inside ``ok`` (1.0 at its centre), down to 0.0 ``soft``
    outside either edge."""
    lo, hi = ok
    if lo <= value <= hi:
        half = (hi - lo) / 2.0
        if half <= 0:
            return 1.0
        return 1.0 - 0.4 * abs(value - (lo + hi) / 2.0) / half
    edge = lo if value < lo else hi
    return max(0.0, 0.6 * (1.0 - abs(value - edge) / soft)) if soft > 0 else 0.0


def balance_excess_db(balance: tuple[float, ...], target: GenreTarget) -> tuple[float, int, float]:
    """(mean dB outside tolerance over the bands, the worst band's index,
    its signed deviation)."""
    excess = []
    worst, worst_dev = 0, 0.0
    for i, (v, t, tol) in enumerate(
        zip(balance, target.balance_db, target.balance_tolerance_db, strict=True)
    ):
        dev = v - t
        excess.append(max(0.0, abs(dev) - tol))
        if abs(dev) - tol > abs(worst_dev) - target.balance_tolerance_db[worst]:
            worst, worst_dev = i, dev
    return sum(excess) / len(excess), worst, worst_dev
