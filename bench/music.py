"""Musical quality of the procedural generator as the score sees it.

    .venv/bin/python bench/music.py [--per-genre 4] [--duration 180] [--seed 100]
    .venv/bin/python bench/music.py --quick        # 2 per genre, 90 s: about a minute

For 4 tracks per genre (24): the score distribution per genre, the
calibration cases' scores and reasons (white noise, a one-bar loop, drums
only, a quarter tone detuned, techno labelled house, clipped, silence), the
share of degraded-copy pairs (one layer muted; the arrangement flattened)
ranked correctly, the key and tempo agreement rates, the structure measures,
how far apart same-genre tracks sound (against how far a track's halves are
from each other), the plays of the 90th- against the 10th-percentile track
over a simulated day of the streamer's scheduler, and generation and scoring
speed on one core. Targets: score std >= 5, every calibration case below
the lowest normal track, >= 95 % of pairs, generation >= 50x and scoring
>= 100x real time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # "on one core": before numpy is imported

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.features import spectral_features  # noqa: E402
from models.generation.procedural import SUPPORTED_GENRES  # noqa: E402
from models.musicality import analyse  # noqa: E402
from models.musicality.calibration import calibration_cases, degraded_pairs, render  # noqa: E402
from models.musicality.variety import distance, fingerprint  # noqa: E402
from models.pipeline import rotation_weight  # noqa: E402
from models.scoring import TrackScore, score_audio  # noqa: E402

SR = 44100


def _score(audio: np.ndarray, **labels: object) -> tuple[TrackScore, float, float]:
    """The score, its wall time and its CPU time (the machine is shared:
    CPU time is what one core spent, whatever else ran)."""
    started, cpu = time.perf_counter(), time.process_time()
    s = score_audio(audio, SR, **labels)  # type: ignore[arg-type]
    return s, time.perf_counter() - started, time.process_time() - cpu


def _mains(track: object) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints of the track's first and last main sections (a track's
    identity lives in its mains; intros and breakdowns are meant to differ)."""
    mains = [(a, b) for name, a, b in track.metadata["sections"] if name == "main"]  # type: ignore[attr-defined]
    out = []
    for a, b in (mains[0], mains[-1]):
        part = np.ascontiguousarray(track.audio[:, round(a * SR) : round(b * SR)])  # type: ignore[attr-defined]
        an = analyse(
            part, SR, spectral_features(part, SR), genre=track.genre, label_key=track.musical_key
        )  # type: ignore[attr-defined]
        out.append(fingerprint(an))
    return out[0], out[1]


def simulate_day(scores: list[float], *, seed: int = 1) -> tuple[float, float, float]:
    """(ratio, p10 plays, p90 plays): mean plays of the tracks around the
    90th percentile of score (85th-95th) over those around the 10th
    (5th-15th), over 24 h of the streamer's scheduler (weighted picks, no
    repeat within an hour), 3-minute tracks, a rotation of 100 tracks whose
    scores are drawn from ``scores``."""
    from sonicforge.station import InMemoryStationState
    from streaming.catalog import TrackInfo
    from streaming.clock import VirtualClock
    from streaming.scheduler import Scheduler

    rng = random.Random(seed)
    pool = [rng.choice(scores) + rng.uniform(-0.5, 0.5) for _ in range(100)]
    tracks = [
        TrackInfo(f"t{i}", "", 180.0, "house", "", "", weight=rotation_weight(q), quality_score=q)
        for i, q in enumerate(pool)
    ]

    class Catalog:
        def rotation(self) -> list[TrackInfo]:
            return tracks

        def fallback(self) -> list[TrackInfo]:
            return []

        def lookup(self, track_id: str) -> TrackInfo | None:
            return None

    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    sched = Scheduler(Catalog(), InMemoryStationState(clock=clock), clock=clock, rng=rng)
    plays: Counter[str] = Counter()
    for _ in range(24 * 20):
        pick = sched.next()
        assert pick is not None
        plays[pick.track.track_id] += 1
        sched.record_start(pick.track.track_id)
        clock.advance(180.0)
    ranked = sorted(tracks, key=lambda t: t.quality_score)
    n = len(ranked)
    tenth = ranked[n * 5 // 100 : n * 15 // 100]
    ninetieth = ranked[n * 85 // 100 : n * 95 // 100]
    p10 = statistics.mean(plays[t.track_id] for t in tenth)
    p90 = statistics.mean(plays[t.track_id] for t in ninetieth)
    return p90 / max(p10, 1e-9), p10, p90


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-genre", type=int, default=4)
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="2 per genre, 90 s tracks")
    parser.add_argument("--no-pairs", action="store_true", help="skip the degraded-copy pairs")
    args = parser.parse_args()
    if args.quick:
        args.per_genre, args.duration = 2, 90.0
    dur = args.duration
    started = time.perf_counter()
    print(
        f"{args.per_genre} tracks per genre, {dur:.0f} s each, seeds from {args.seed}, one thread"
    )

    # --- normal output ---------------------------------------------------
    by_genre: dict[str, list[TrackScore]] = defaultdict(list)
    gen_speed, score_speed, gen_cpu, score_cpu = [], [], [], []
    prints: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = defaultdict(list)
    key_ok = tempo_ok = tempo_exact = 0
    relations: Counter[str] = Counter()
    for genre in SUPPORTED_GENRES:
        for i in range(args.per_genre):
            t0, c0 = time.perf_counter(), time.process_time()
            track = render(genre, args.seed + i, dur)
            gen_speed.append(dur / (time.perf_counter() - t0))
            gen_cpu.append(dur / (time.process_time() - c0))
            s, took, cpu = _score(
                track.audio,
                intended_bpm=track.bpm or None,
                genre=genre,
                musical_key=track.musical_key,
            )
            score_speed.append(dur / took)
            score_cpu.append(dur / cpu)
            by_genre[genre].append(s)
            relations[s.key_relation] += 1
            key_ok += s.key_relation in ("same", "relative")
            if track.bpm:
                tempo_ok += s.tempo_error < 0.02
                tempo_exact += abs(s.tempo_bpm_est - track.bpm) / track.bpm < 0.02
            else:
                tempo_ok += s.tempo_bpm_est == 0.0
                tempo_exact += s.tempo_bpm_est == 0.0
            a, b = _mains(track)
            prints[genre].append((a, a, b))
    scores = [s.quality_score for ss in by_genre.values() for s in ss]
    total = len(scores)
    print("\nScore distribution (quality_score, 0-100)")
    w = [14, 6, 6, 6, 6, 7, 7, 7, 7, 7]
    print(_row(["genre", "mean", "min", "max", "std", "tempo", "key", "form", "genre", "sect"], w))
    for genre, ss in by_genre.items():
        q = [s.quality_score for s in ss]
        print(
            _row(
                [
                    genre,
                    f"{statistics.mean(q):.1f}",
                    f"{min(q):.1f}",
                    f"{max(q):.1f}",
                    f"{statistics.pstdev(q):.1f}",
                    f"{statistics.mean(s.tempo_score for s in ss):.0f}",
                    f"{statistics.mean(s.key_score for s in ss):.0f}",
                    f"{statistics.mean(s.structure_score for s in ss):.0f}",
                    f"{statistics.mean(s.genre_score for s in ss):.0f}",
                    f"{statistics.mean(s.sections for s in ss):.1f}",
                ],
                w,
            )
        )
    std = statistics.pstdev(scores)
    print(
        f"all {total}: mean {statistics.mean(scores):.1f}, std {std:.1f} (target >= 5: "
        f"{'met' if std >= 5 else 'MISSED'}), passed {sum(s.passed for ss in by_genre.values() for s in ss)}/{total}"
    )
    print("\nStructure measures (means per genre)")
    w2 = [14, 9, 9, 11, 10, 10, 9]
    print(
        _row(
            ["genre", "sections", "contrast", "recurrence", "loop share", "harm chg", "kick/beat"],
            w2,
        )
    )
    for genre, ss in by_genre.items():
        print(
            _row(
                [
                    genre,
                    f"{statistics.mean(s.sections for s in ss):.1f}",
                    f"{statistics.mean(s.section_contrast for s in ss):.2f}",
                    f"{statistics.mean(s.recurrence for s in ss):.2f}",
                    f"{statistics.mean(s.loop_share for s in ss):.2f}",
                    f"{statistics.mean(s.harmonic_change for s in ss):.2f}",
                    f"{statistics.mean(s.kick_every_beat for s in ss):.2f}",
                ],
                w2,
            )
        )
    print(
        f"\nKey agreement (estimate = label or its relative): {key_ok}/{total} "
        f"({key_ok / total:.0%}); relations {dict(relations)}"
    )
    print(
        f"Tempo agreement (octave-equivalent, within 2 %; ambient: no beat found): {tempo_ok}/{total} "
        f"({tempo_ok / total:.0%}); at the labelled octave itself: {tempo_exact}/{total}"
    )

    # --- variety ---------------------------------------------------------
    print(
        "\nVariety: fingerprint distance (models/musicality/variety.py) between the first mains of "
        "same-genre tracks vs between a track's first and last main"
    )
    w3 = [14, 14, 14, 10]
    print(_row(["genre", "min between", "max within", "told apart"], w3))
    apart_all = pairs_all = 0
    for genre, fps in prints.items():
        between = [
            distance(fps[i][0], fps[j][0]) for i in range(len(fps)) for j in range(i + 1, len(fps))
        ]
        halves = [distance(a, b) for _, a, b in fps]
        apart = sum(d > max(halves) for d in between)
        apart_all += apart
        pairs_all += len(between)
        print(
            _row(
                [
                    genre,
                    f"{min(between, default=0):.2f}",
                    f"{max(halves):.2f}",
                    f"{apart}/{len(between)}",
                ],
                w3,
            )
        )
    print(
        f"told apart: {apart_all}/{pairs_all} pairs (distance above the largest half-to-half distance of the genre)"
    )

    # --- calibration -----------------------------------------------------
    floor = min(scores)
    print(f"\nCalibration cases ({dur:.0f} s; the lowest normal track scored {floor:.1f})")
    below = 0
    cases = 0
    for case in calibration_cases(seed=7, duration_s=dur):
        s, _, _ = _score(case.audio, **case.score_kwargs())
        named = [r for r in s.reasons + s.musical_reasons if case.expected_reason in r]
        ok = s.quality_score < floor - 5 and bool(named)
        below += ok
        cases += 1
        first = (named or s.reasons or s.musical_reasons or ["-"])[0]
        print(f"  {case.name:16s} {s.quality_score:5.1f}  {'ok ' if ok else 'NO '} {first[:110]}")
    print(
        f"{below}/{cases} cases score more than 5 points under the lowest normal track, reason named"
    )

    # --- A/B proxy -------------------------------------------------------
    if not args.no_pairs:
        print("\nDegraded-copy pairs (original must score higher)")
        right: Counter[str] = Counter()
        count: Counter[str] = Counter()
        margins = []
        for genre in SUPPORTED_GENRES:
            for i in range(args.per_genre):
                for kind, original, degraded in degraded_pairs(
                    genre, args.seed + i, duration_s=dur
                ):
                    so, _, _ = _score(original.audio, **original.score_kwargs())
                    sd, _, _ = _score(degraded.audio, **degraded.score_kwargs())
                    label = kind.split()[0]
                    count[label] += 1
                    right[label] += so.quality_score > sd.quality_score
                    margins.append(so.quality_score - sd.quality_score)
                    if so.quality_score <= sd.quality_score:
                        print(
                            f"  wrong: {genre} seed {args.seed + i} {kind}: {so.quality_score:.1f} <= {sd.quality_score:.1f}"
                        )
        n_pairs = sum(count.values())
        n_right = sum(right.values())
        for label in count:
            print(f"  {label:10s} {right[label]}/{count[label]}")
        print(
            f"ranked correctly: {n_right}/{n_pairs} ({n_right / n_pairs:.0%}, target >= 95 %: "
            f"{'met' if n_right / n_pairs >= 0.95 else 'MISSED'}); median margin {statistics.median(margins):.1f} points"
        )

    # --- rotation --------------------------------------------------------
    ratios = [simulate_day(scores, seed=d)[0] for d in range(5)]
    print(
        f"\nRotation: p90 / p10 plays over a simulated day (5 days, 100-track rotation): "
        f"mean {statistics.mean(ratios):.2f}x, min {min(ratios):.2f}x (target >= 2x); "
        f"weights {rotation_weight(float(np.percentile(scores, 10))):.2f} at p10 "
        f"({np.percentile(scores, 10):.1f}), {rotation_weight(float(np.percentile(scores, 90))):.2f} at p90 "
        f"({np.percentile(scores, 90):.1f})"
    )

    # --- speed -----------------------------------------------------------
    print(
        f"\nSpeed on one core (x real time; wall clock, then CPU time of this process):\n"
        f"  generation: wall median {statistics.median(gen_speed):.0f}x (min {min(gen_speed):.0f}x), "
        f"CPU median {statistics.median(gen_cpu):.0f}x (min {min(gen_cpu):.0f}x); target >= 50x\n"
        f"  scoring:    wall median {statistics.median(score_speed):.0f}x (min {min(score_speed):.0f}x), "
        f"CPU median {statistics.median(score_cpu):.0f}x (min {min(score_cpu):.0f}x); target >= 100x"
    )
    print(f"bench took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
