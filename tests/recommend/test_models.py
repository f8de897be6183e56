"""The recommender's models, evaluation, artifact and promotion rule on
simulated listeners with known tastes (no Dagster, no MLflow)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from assets.ml import promotion_verdict
from models.recommend.artifact import ArtifactScorer, RecommenderArtifact
from models.recommend.data import Dataset, time_split
from models.recommend.evaluate import evaluate
from models.recommend.features import DIM, describe_similarity, feature_vector, parse_key
from models.recommend.simulate import SimConfig, event_rows, simulate, to_dataset
from models.recommend.train import TrainConfig, TrainResult, train_and_evaluate

warnings.filterwarnings("ignore", module="implicit")


@pytest.fixture(scope="module")
def trained() -> tuple[Dataset, TrainResult]:
    world, events = simulate(SimConfig(listeners=3000, tracks=900, plays=150_000, seed=3))
    ds = to_dataset(world, events)
    config = TrainConfig(iterations=8, bpr_iterations=30, max_eval_users=2000)
    return ds, train_and_evaluate(ds, config)


def test_the_champion_beats_toppop_overall_and_on_cold_start(trained) -> None:
    _, result = trained
    chosen, pop = result.reports[result.chosen], result.reports["toppop"]
    assert result.chosen == "hybrid_ials"
    assert chosen.overall.ndcg >= 1.2 * pop.overall.ndcg, result.table()
    assert chosen.cold.ndcg >= 1.5 * pop.cold.ndcg, result.table()
    # The pure collaborative models know nothing of new tracks: the hybrid does.
    assert chosen.cold.ndcg > 1.5 * result.reports["ials"].cold.ndcg
    assert set(result.reports) == {
        "random", "toppop", "ease", "itemknn", "hybrid_ials", "ials", "bpr"
    }  # fmt: skip
    assert chosen.overall.ndcg > 2 * result.reports["random"].overall.ndcg
    for name, report in result.reports.items():
        assert report.overall.users > 0 and 0 <= report.overall.coverage <= 1, name
    metrics = result.metrics()
    assert metrics["ndcg_at_10"] == chosen.overall.ndcg and "toppop.cold_ndcg_at_10" in metrics


def test_the_stored_artifact_scores_as_the_trained_model(trained, tmp_path: Path) -> None:
    ds, result = trained
    loaded = RecommenderArtifact.load(result.artifact.save(tmp_path / "a"))
    scorer = ArtifactScorer(loaded, ds.user_ids, ds.item_ids)
    scorer.fit(result.split.train_pos, ds.item_features)
    again = evaluate(scorer.score, result.split, max_users=2000)
    assert again.overall.ndcg == pytest.approx(result.reports[result.chosen].overall.ndcg, rel=1e-4)
    # A listener it never saw is folded in from a history of liked tracks.
    items = np.array([0, 1, 2])
    vec = loaded.fold_in(loaded.item_vectors[items], np.array([1.0, 2.0, -1.0]))
    assert vec.shape == (loaded.factors,) and np.isfinite(vec).all() and np.any(vec)
    assert not np.any(loaded.fold_in(loaded.item_vectors[items], np.array([-1.0, -1.0, -1.0])))


def test_a_perfect_ranker_scores_one_and_a_reversed_one_zero() -> None:
    n_users, n_items = 4, 30
    feats = np.zeros((n_items, DIM), dtype=np.float32)
    u = np.repeat(np.arange(n_users), 2).astype(np.int32)
    i = np.array([0, 1, 0, 2, 0, 3, 0, 4], dtype=np.int32)  # day 1: track 0; day 9: one more
    ts = np.tile([0, 9 * 86_400_000_000], n_users).astype(np.int64)
    ds = Dataset(np.arange(n_users).astype(str), np.arange(n_items).astype(str), u, i,
                 np.ones(len(u), np.float32), ts, feats)  # fmt: skip
    split = time_split(ds, test_days=2)
    truth = split.test_pos.toarray()
    perfect = evaluate(lambda users: truth[users] + 0.0, split)
    assert perfect.overall.ndcg == pytest.approx(1.0) and perfect.overall.recall == 1.0
    assert perfect.overall.precision == pytest.approx(0.1)
    worst = evaluate(lambda users: -truth[users] - np.arange(n_items) * 1e-3, split, k=10)
    assert worst.overall.ndcg == 0.0


def test_time_split_refuses_a_cutoff_without_test_data() -> None:
    ds = Dataset(np.array(["u"]), np.array(["t"]), np.zeros(1, np.int32), np.zeros(1, np.int32),
                 np.ones(1, np.float32), np.zeros(1, np.int64), np.zeros((1, DIM), np.float32))  # fmt: skip
    with pytest.raises(ValueError, match="no training"):
        time_split(ds, test_days=1)


def test_every_simulated_row_is_labelled() -> None:
    world, events = simulate(SimConfig(listeners=20, tracks=30, plays=300, seed=1, scenario="t"))
    rows = [r for chunk in event_rows(world, events) for r in chunk]
    assert rows and all(r["simulated"] and r["scenario"] == "t" for r in rows)
    assert all(r["user_id"].startswith("sim_") and r["track_id"].startswith("sim_") for r in rows)
    assert all(t["simulated"] for t in world.track_rows())
    # No one hears a track before it is released.
    assert (events.ts >= world.released_us[events.track]).all()
    again = simulate(SimConfig(listeners=20, tracks=30, plays=300, seed=1, scenario="t"))[1]
    assert np.array_equal(again.track, events.track)


@pytest.mark.parametrize(
    ("text", "root", "minor"),
    [("A minor", 9, True), ("F# minor", 6, True), ("Bb major", 10, False), ("D dorian", 2, True)],
)
def test_keys_parse(text: str, root: int, minor: bool) -> None:
    key = parse_key(text)
    assert key is not None and (key.root, key.minor) == (root, minor)


def test_features_and_reasons_follow_tempo_and_key() -> None:
    a = {"genre": "house", "bpm": 124, "musical_key": "A minor"}
    near = feature_vector({"genre": "house", "bpm": 125, "musical_key": "A minor"})
    far = feature_vector({"genre": "drum_and_bass", "bpm": 174, "musical_key": "C major"})
    va = feature_vector(a)
    assert va.shape == (DIM,) and np.dot(va, near) > np.dot(va, far)
    assert describe_similarity(a, {"genre": "techno", "bpm": 126, "musical_key": "E minor"}) == (
        "similar tempo and key"
    )
    assert "same genre" in describe_similarity(
        a, {"genre": "house", "bpm": 140, "musical_key": "C major"}
    )


@pytest.mark.parametrize(
    ("new", "pop", "champ", "margin", "ok", "says"),
    [
        (0.06, 0.01, 0.05, 0.0, True, "beats"),
        (0.06, 0.01, None, 0.0, True, "beats TopPop"),
        (0.05, 0.01, 0.05, 0.0, True, "beats"),  # a retrain that ties passes at margin 0
        (0.05, 0.01, 0.05, 0.05, False, "missed by 0.0025"),
        (0.01, 0.01, None, 0.0, False, "TopPop"),
        (0.04, 0.01, 0.05, 0.0, False, "missed by 0.0100"),
    ],
)
def test_promotion_rule_says_by_how_much_it_missed(new, pop, champ, margin, ok, says) -> None:
    passed, text = promotion_verdict(new, pop, champ, margin=margin)
    assert passed is ok and says in text, text


def test_a_matrix_sums_duplicate_events() -> None:
    ds = Dataset(np.array(["a", "b"]), np.array(["x", "y"]), np.array([0, 0, 1], np.int32),
                 np.array([1, 1, 0], np.int32), np.array([1.0, -3.0, 2.0], np.float32),
                 np.zeros(3, np.int64), np.zeros((2, DIM), np.float32))  # fmt: skip
    m = ds.matrix()
    assert isinstance(m, sp.csr_matrix) and m[0, 1] == -2.0 and m[1, 0] == 2.0
