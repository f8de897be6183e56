"""Sound-design presets: each track draws its own version of its genre's
sounds, so two tracks of one genre are told apart by ear.

A preset varies the drum kit (kick tuning, decay, click and drive; snare
tone; hat lengths; room), the bass (brightness, decay, detune), the pads
(bandwidth, cutoff), the leads (brightness, decay), the space (reverb
length, delay feedback) and the mix (stereo spread of pads and hats), each
within a range that keeps the genre's character (shared/MUSIC.md: kicks
fall to 45–60 Hz, closed hats 30–60 ms, open hats 200–300 ms, supersaws
detuned 10–30 cents).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from models.generation.procedural.drums import DrumKit
from models.generation.procedural.genres import GenreStyle


@dataclass(frozen=True)
class Preset:
    kit: DrumKit
    bass_brightness: float  # x the genre's bass filter brightness
    bass_decay: float  # x the genre's bass filter decay
    reese_detune_cents: float
    pad_bandwidth: float  # x the pad's PADsynth bandwidth
    pad_cutoff: float  # x the pad's low-pass cutoff
    lead_brightness: float
    lead_decay: float
    supersaw_detune_cents: float
    reverb: float  # x the genre's reverb length
    delay_feedback: float
    width: float  # stereo spread of pads and hats, 0.6..1.0
    name: str


def _between(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def draw_preset(style: GenreStyle, rng: np.random.Generator) -> Preset:
    """The preset of one track of ``style``, from its own random stream."""
    k = style.kit
    kit = dataclasses.replace(
        k,
        kick_start_hz=k.kick_start_hz * _between(rng, 0.85, 1.15),
        kick_end_hz=float(np.clip(k.kick_end_hz * _between(rng, 0.9, 1.12), 45.0, 60.0)),
        kick_decay_s=k.kick_decay_s * _between(rng, 0.8, 1.2),
        kick_click=k.kick_click * _between(rng, 0.6, 1.4),
        kick_drive=k.kick_drive * _between(rng, 0.8, 1.3),
        snare_tone_hz=k.snare_tone_hz * _between(rng, 0.85, 1.2),
        snare_decay_s=k.snare_decay_s * _between(rng, 0.8, 1.25),
        clap_decay_s=k.clap_decay_s * _between(rng, 0.8, 1.25),
        hat_closed_s=float(np.clip(k.hat_closed_s * _between(rng, 0.75, 1.3), 0.03, 0.06)),
        hat_open_s=float(np.clip(k.hat_open_s * _between(rng, 0.8, 1.2), 0.2, 0.3)),
        hat_hp_hz=k.hat_hp_hz * _between(rng, 0.85, 1.15),
        room=k.room * _between(rng, 0.6, 1.4),
    )
    names = ("dusty", "punchy", "deep", "bright", "warm", "crisp", "hazy", "tight")
    return Preset(
        kit=kit,
        bass_brightness=_between(rng, 0.7, 1.4),
        bass_decay=_between(rng, 0.75, 1.35),
        reese_detune_cents=_between(rng, 6.0, 14.0),
        pad_bandwidth=_between(rng, 0.7, 1.4),
        pad_cutoff=_between(rng, 0.7, 1.35),
        lead_brightness=_between(rng, 0.7, 1.3),
        lead_decay=_between(rng, 0.75, 1.4),
        supersaw_detune_cents=_between(rng, 12.0, 28.0),
        reverb=_between(rng, 0.8, 1.25),
        delay_feedback=_between(rng, 0.3, 0.55),
        width=_between(rng, 0.6, 1.0),
        name=str(names[int(rng.integers(len(names)))]),
    )
