"""Offline evaluation on a time split: precision, recall and NDCG at k,
catalog coverage, overall and on the cold-start slice.

Overall: each test listener's top k over the whole catalog (tracks they
touched in training removed) against the tracks they liked after the
cutoff. Cold-start slice: the same, ranking only the tracks with fewer
than ``COLD_THRESHOLD`` training interactions against the liked ones among
them - how well a model orders the new tracks, which is most of the
catalog on an AI radio. (Ranked over the whole catalog, a popularity
baseline would score zero on new tracks by construction.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.recommend.data import Split

METRICS = ("precision", "recall", "ndcg", "coverage", "users")


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    ndcg: float
    coverage: float
    users: int

    def as_dict(self, prefix: str = "", k: int = 10) -> dict[str, float]:
        return {
            f"{prefix}precision_at_{k}": self.precision,
            f"{prefix}recall_at_{k}": self.recall,
            f"{prefix}ndcg_at_{k}": self.ndcg,
            f"{prefix}coverage": self.coverage,
            f"{prefix}users": float(self.users),
        }


@dataclass(frozen=True)
class Report:
    overall: Metrics
    cold: Metrics

    def as_dict(self, k: int = 10) -> dict[str, float]:
        return {**self.overall.as_dict("", k), **self.cold.as_dict("cold_", k)}


ScoreFn = Callable[[np.ndarray], np.ndarray]


def test_users(split: Split, *, max_users: int | None, seed: int = 0) -> np.ndarray:
    """Listeners with test positives (a seeded sample of ``max_users``)."""
    users = np.flatnonzero(np.diff(split.test_pos.indptr) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return users


def _rank(
    score: ScoreFn,
    users: np.ndarray,
    relevant: sp.csr_matrix,
    seen: sp.csr_matrix,
    candidates: np.ndarray | None,
    *,
    k: int,
    batch: int,
    unavailable: np.ndarray | None = None,
) -> Metrics:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    precision = recall = ndcg = 0.0
    counted = 0
    shown: set[int] = set()
    n_cand = relevant.shape[1] if candidates is None else len(candidates)
    for lo in range(0, len(users), batch):
        ub = users[lo : lo + batch]
        rel = relevant[ub]
        if candidates is not None:
            rel = rel[:, candidates].tocsr()
        keep = np.diff(rel.indptr) > 0
        if not keep.any():
            continue
        ub, rel = ub[keep], rel[keep]
        s = np.array(score(ub), dtype=np.float32)
        if unavailable is not None and candidates is None:
            s[:, unavailable] = -np.inf
        seen_b = seen[ub]
        if candidates is not None:
            s = s[:, candidates]
            seen_b = seen_b[:, candidates]
        s = s.copy()
        rows, cols = seen_b.nonzero()
        s[rows, cols] = -np.inf
        kk = min(k, s.shape[1])
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(s, top, axis=1).argsort(axis=1)[:, ::-1]
        top = np.take_along_axis(top, order, axis=1)
        rel_b = rel.tocsr()
        for r in range(len(ub)):
            liked = rel_b.indices[rel_b.indptr[r] : rel_b.indptr[r + 1]]
            hits = np.isin(top[r], liked)
            n_hit = int(hits.sum())
            precision += n_hit / k
            recall += n_hit / len(liked)
            ideal = discounts[: min(len(liked), k)].sum()
            ndcg += float((hits * discounts[:kk]).sum() / ideal)
            shown.update(top[r].tolist())
        counted += len(ub)
    if counted == 0:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0)
    if unavailable is not None:
        n_cand -= len(unavailable)
    return Metrics(
        precision / counted, recall / counted, ndcg / counted, len(shown) / max(n_cand, 1), counted
    )


def evaluate(
    score: ScoreFn,
    split: Split,
    *,
    k: int = 10,
    max_users: int | None = 10_000,
    batch: int = 1024,
    seed: int = 0,
) -> Report:
    """Overall and cold-start metrics of ``score`` (listener indices →
    dense scores over the catalog) on ``split``."""
    users = test_users(split, max_users=max_users, seed=seed)
    unavailable = np.flatnonzero(~split.available)
    overall = _rank(
        score,
        users,
        split.test_pos,
        split.train_seen,
        None,
        k=k,
        batch=batch,
        unavailable=unavailable if len(unavailable) else None,
    )
    cold_items = split.cold_items
    cold = (
        _rank(score, users, split.test_pos, split.train_seen, cold_items, k=k, batch=batch)
        if len(cold_items) > k
        else Metrics(0.0, 0.0, 0.0, 0.0, 0)
    )
    return Report(overall, cold)
