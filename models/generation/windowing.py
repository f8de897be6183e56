"""Tracks longer than one model window, by windowed continuation.

Autoregressive music models are trained on short clips (MusicGen: 30 s).
A longer track is generated window by window: each new window is
conditioned on the tail of the audio so far (its "context"), so the music
carries on rather than restarting. The model re-decodes that context at the
start of its output; the join is made inside that re-decoded stretch with a
short crossfade, where both sides are renderings of the same music, so it
is inaudible.

Plain numpy: the model is behind a callable, which keeps this logic testable
with a synthetic signal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.errors import InvalidSpecError


@dataclass(frozen=True)
class Window:
    """One model call: ``context_frames`` of the previous audio in, ``new_frames`` out."""

    index: int
    context_frames: int
    new_frames: int


def plan_windows(total_frames: int, *, window_frames: int, context_frames: int) -> list[Window]:
    """The model calls that make ``total_frames`` frames.

    Every call fits the model's window: context plus new frames never exceed
    ``window_frames``; the first call has no context.
    """
    if total_frames < 1:
        raise InvalidSpecError(f"value {total_frames} for 'total_frames' must be at least 1")
    if not 0 <= context_frames < window_frames:
        raise InvalidSpecError(
            f"context of {context_frames} frames must be in [0, {window_frames - 1}] "
            f"for a window of {window_frames} frames"
        )
    windows = [Window(0, 0, min(window_frames, total_frames))]
    produced = windows[0].new_frames
    while produced < total_frames:
        context = min(context_frames, produced)
        new = min(window_frames - context, total_frames - produced)
        windows.append(Window(len(windows), context, new))
        produced += new
    return windows


def crossfade_curves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine fade-out and fade-in of ``n`` samples that sum to one.

    Equal-gain, not equal-power: both sides of a join render the same music
    (they are correlated), and equal-power curves would bump the level there.
    """
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    fade_in = (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
    return 1.0 - fade_in, fade_in


def join(
    previous: np.ndarray, window: np.ndarray, *, new_samples: int, crossfade: int
) -> np.ndarray:
    """Append a continuation window to ``previous`` (both ``(..., samples)``).

    ``window`` holds the re-decoded context followed by ``new_samples`` new
    samples; its context part ends where ``previous`` ends. The last
    ``crossfade`` samples of the context are blended with ``previous``'s.
    """
    context_len = window.shape[-1] - new_samples
    crossfade = min(crossfade, context_len, previous.shape[-1])
    head = previous[..., : previous.shape[-1] - crossfade]
    if crossfade == 0:
        return np.concatenate([head, window[..., context_len:]], axis=-1)
    fade_out, fade_in = crossfade_curves(crossfade)
    blend = (
        previous[..., previous.shape[-1] - crossfade :] * fade_out
        + window[..., context_len - crossfade : context_len] * fade_in
    )
    return np.concatenate([head, blend, window[..., context_len:]], axis=-1)


#: ``(context audio or None, new_frames) -> audio`` of shape
#: ``(batch, channels, samples)``, the context re-decoded first when given.
WindowFn = Callable[[np.ndarray | None, int], np.ndarray]


def generate_windowed(
    generate_window: WindowFn,
    *,
    total_frames: int,
    window_frames: int,
    context_frames: int,
    hop: int,
    crossfade_samples: int,
    on_window: Callable[[Window, np.ndarray], None] | None = None,
) -> np.ndarray:
    """``total_frames * hop`` samples of one batch, window by window.

    ``hop`` is the number of samples per model frame; ``on_window`` sees each
    window and the audio so far (the first call is the time to first audio).
    """
    audio: np.ndarray | None = None
    for w in plan_windows(total_frames, window_frames=window_frames, context_frames=context_frames):
        context = (
            None
            if audio is None or w.context_frames == 0
            else audio[..., -w.context_frames * hop :]
        )
        out = generate_window(context, w.new_frames)
        new_samples = w.new_frames * hop
        if out.shape[-1] < new_samples:
            raise RuntimeError(
                f"window {w.index} returned {out.shape[-1]} samples, expected at least {new_samples}"
            )
        if audio is None:
            audio = out[..., :new_samples]
        else:
            audio = join(audio, out, new_samples=new_samples, crossfade=crossfade_samples)
        if on_window is not None:
            on_window(w, audio)
    assert audio is not None
    return audio[..., : total_frames * hop]


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling along the last axis (32 kHz model
    output to the 44.1 kHz masters is 441/320)."""
    if from_rate == to_rate:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // g, from_rate // g, axis=-1).astype(np.float32)


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad the last axis to exactly ``samples``."""
    if audio.shape[-1] >= samples:
        return audio[..., :samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, samples - audio.shape[-1])]
    return np.pad(audio, pad)
