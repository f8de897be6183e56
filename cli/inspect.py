"""``sonicforge inspect TRACK_ID``: pictures of what the score sees.

Writes, for one track of the lakehouse (or ``--file`` an audio file with its
labels), three PNG files and the score's reasons:

- ``<id>-spectrogram.png``: the log-frequency spectrogram, with the section
  boundaries the score found;
- ``<id>-chromagram.png``: pitch classes over time, the labelled and the
  estimated key;
- ``<id>-similarity.png``: the self-similarity matrix and its novelty curve;
- ``<id>-score.txt``: every figure of the score and its reasons.

Each picture carries the quality score and the reasons in its caption.
matplotlib is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from sonicforge.errors import SonicForgeError


class InspectError(SonicForgeError):
    """The track or file cannot be inspected (message says why)."""


def _load_track(track_id: str) -> tuple[np.ndarray, int, dict[str, Any]]:
    from models.audio_io import decode_audio
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import get_settings

    lh = Lakehouse.from_settings(get_settings())
    try:
        rows = lh.read("tracks", where={"track_id": track_id}).to_pylist()
    except SonicForgeError as exc:
        raise InspectError(f"cannot read the tracks table: {exc}") from None
    if not rows:
        raise InspectError(
            f"no track {track_id!r} in the lakehouse; list them with "
            '`sonicforge sql "select track_id, genre from tracks"`'
        )
    track = rows[0]
    audio, sr = decode_audio(lh.audio.get(track["raw_uri"]))
    return audio, sr, track


def _load_file(
    path: str, genre: str | None, bpm: float | None, key: str | None
) -> tuple[np.ndarray, int, dict[str, Any]]:
    from models.audio_io import decode_audio

    p = Path(path)
    if not p.is_file():
        raise InspectError(f"no such file: {path}")
    audio, sr = decode_audio(p.read_bytes())
    return audio, sr, {"track_id": p.stem, "genre": genre, "bpm": bpm or 0.0, "musical_key": key}


def _caption(score: Any) -> str:
    lines = [
        f"quality {score.quality_score:.1f} ({'passed' if score.passed else 'FAILED'}) — technical "
        f"{score.technical_score:.0f}, tempo {score.tempo_score:.0f}, key {score.key_score:.0f}, "
        f"structure {score.structure_score:.0f}, genre {score.genre_score:.0f}"
    ]
    for r in [*score.reasons, *score.musical_reasons][:8]:
        lines.extend(textwrap.wrap("• " + r, 150))
    if not score.reasons and not score.musical_reasons:
        lines.append("• no reasons: every measure is in range")
    return "\n".join(lines)


def inspect_audio(
    audio: np.ndarray, sample_rate: int, labels: dict[str, Any], out_dir: Path
) -> list[Path]:
    """Score ``audio`` against ``labels`` (genre, bpm, musical_key) and write
    the pictures and the score into ``out_dir``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.audio_io import as_float32_audio
    from models.features import spectral_features
    from models.musicality import analyse
    from models.musicality.tonal import PITCH_NAMES
    from models.scoring import score_audio

    x = as_float32_audio(audio)
    bpm = float(labels.get("bpm") or 0.0)
    genre, key = labels.get("genre"), labels.get("musical_key")
    score = score_audio(x, sample_rate, intended_bpm=bpm or None, genre=genre, musical_key=key)
    analysis = analyse(
        x, sample_rate, spectral_features(x, sample_rate), genre=genre, label_key=key
    )
    track_id = str(labels["track_id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    caption = _caption(score)
    title = f"{track_id} · {genre or 'no genre'} · {bpm:g} BPM labelled, {score.tempo_bpm_est:g} measured · {key or 'no key'}"
    spec = analysis.spectrogram
    duration = analysis.duration_s
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.text(0.01, 0.01, caption, fontsize=7, va="bottom", family="monospace")
        path = out_dir / f"{track_id}-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # Spectrogram, log frequency, with the boundaries found.
    fig = plt.figure(figsize=(13, 7.5))
    ax = fig.add_axes((0.06, 0.34, 0.9, 0.58))
    keep = (spec.freqs >= 30.0) & (spec.freqs <= spec.freqs[-1])
    power_db = 10.0 * np.log10(spec.power[:, keep].T + 1e-12)
    vmax = float(np.percentile(power_db, 99.5))
    ax.pcolormesh(
        np.arange(power_db.shape[1]) / spec.frames_per_s,
        spec.freqs[keep],
        power_db,
        shading="auto",
        cmap="magma",
        vmin=vmax - 80.0,
        vmax=vmax,
    )
    ax.set_yscale("log")
    ax.set_ylabel("Hz")
    ax.set_xlabel("s")
    for b in analysis.structure.boundaries_s:
        ax.axvline(b, color="cyan", lw=0.8, alpha=0.8)
    ax.set_title(
        f"spectrogram (mono, quarter rate: up to {spec.freqs[-1] / 1000:.1f} kHz) — {title}\n"
        "cyan: section boundaries the score found",
        fontsize=9,
    )
    save(fig, "spectrogram")

    # Chromagram.
    fig = plt.figure(figsize=(13, 6.5))
    ax = fig.add_axes((0.06, 0.38, 0.9, 0.52))
    ax.imshow(
        analysis.chroma.T,
        aspect="auto",
        origin="lower",
        extent=(0.0, duration, -0.5, 11.5),
        cmap="viridis",
        interpolation="nearest",
    )
    ax.set_yticks(range(12), PITCH_NAMES)
    ax.set_xlabel("s")
    k = analysis.key
    ax.set_title(
        f"chromagram — labelled {key or '-'}, estimated {k.key} ({k.label_relation}), "
        f"{k.scale_fit:.0%} on the labelled scale, tuning {k.tuning_cents:+.0f} cents",
        fontsize=9,
    )
    save(fig, "chromagram")

    # Self-similarity and novelty.
    st = analysis.structure
    fig = plt.figure(figsize=(9, 11))
    ax = fig.add_axes((0.1, 0.42, 0.82, 0.5))
    span = st.similarity.shape[0] * st.block_s
    ax.imshow(
        st.similarity, origin="lower", extent=(0, span, 0, span), cmap="gray_r", vmin=0, vmax=1
    )
    for b in st.boundaries_s:
        ax.axvline(b, color="red", lw=0.6)
    ax.set_title(
        f"self-similarity — {st.sections} sections, contrast {st.contrast:.2f}, recurrence "
        f"{st.recurrence:.2f}, loop share {st.loop_share:.0%}, arc {st.arc_db:.1f} dB",
        fontsize=9,
    )
    nx = fig.add_axes((0.1, 0.3, 0.82, 0.08))
    nx.plot(np.arange(st.novelty.size) * st.block_s, st.novelty, color="black", lw=0.8)
    nx.set_xlim(0, span)
    nx.set_ylabel("novelty", fontsize=8)
    save(fig, "similarity")

    text = out_dir / f"{track_id}-score.txt"
    rows = [f"{k}: {v}" for k, v in score.to_row().items()]
    text.write_text(title + "\n" + caption + "\n\n" + "\n".join(rows) + "\n")
    written.append(text)
    return written


def cmd_inspect(args: argparse.Namespace) -> int:
    if args.file:
        audio, sr, labels = _load_file(args.file, args.genre, args.bpm, args.key)
    elif args.track_id:
        audio, sr, labels = _load_track(args.track_id)
    else:
        raise InspectError("give a TRACK_ID, or --file PATH (with --genre, --bpm, --key)")
    for path in inspect_audio(audio, sr, labels, Path(args.out)):
        print(path)
    return 0


def add_parser(sub: Any) -> None:
    sp = sub.add_parser(
        "inspect",
        help="write a track's spectrogram, chromagram and self-similarity PNGs with its score",
    )
    sp.add_argument("track_id", nargs="?", default=None, help="a track id of the tracks table")
    sp.add_argument("--file", default=None, help="an audio file instead of a lakehouse track")
    sp.add_argument("--genre", default=None, help="with --file: the genre label")
    sp.add_argument("--bpm", type=float, default=None, help="with --file: the bpm label")
    sp.add_argument("--key", default=None, help="with --file: the key label, e.g. 'A minor'")
    sp.add_argument("--out", default="var/inspect", help="directory for the files (var/inspect)")
    sp.set_defaults(func=cmd_inspect)
