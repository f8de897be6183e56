"""The trained recommender as it is stored in MLflow and served: numpy
arrays in one ``.npz`` plus a JSON card, loaded without ``implicit``.

It scores listeners it was trained on from their factors, folds in
listeners it has not seen from a history, and gives tracks it has not seen
(mastered after training) a vector from their content features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommend.factorization import fold_in, with_bias
from models.recommend.features import DIM, FEATURE_NAMES, FEATURE_VERSION

ARRAYS = "recommender.npz"
CARD = "recommender.json"


@dataclass
class RecommenderArtifact:
    kind: str
    user_ids: np.ndarray  # str
    item_ids: np.ndarray  # str
    user_factors: np.ndarray  # (n_users, k)
    item_vectors: np.ndarray  # (n_items, k)
    projection: np.ndarray  # (DIM + 1, k): content → latent (zeros: none)
    content_scale: float
    item_features: np.ndarray  # (n_items, DIM)
    popularity: np.ndarray  # (n_items,)
    history: sp.csr_matrix  # listeners × tracks, the signed training weights
    regularization: float
    alpha: float
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    feature_version: str = FEATURE_VERSION

    def __post_init__(self) -> None:
        self._user_index = {str(u): n for n, u in enumerate(self.user_ids)}
        self._item_index = {str(t): n for n, t in enumerate(self.item_ids)}
        v = self.item_vectors.astype(np.float64)
        self.gram = v.T @ v

    @property
    def factors(self) -> int:
        return int(self.item_vectors.shape[1])

    def user_index(self, user_id: str) -> int | None:
        return self._user_index.get(user_id)

    def item_index(self, track_id: str) -> int | None:
        return self._item_index.get(track_id)

    def content_vectors(self, features: np.ndarray) -> np.ndarray:
        """Latent vectors of tracks from their content features alone."""
        if not np.any(self.projection):
            return np.zeros((len(features), self.factors), dtype=np.float32)
        return (self.content_scale * (with_bias(features) @ self.projection)).astype(np.float32)

    def vectors_for(self, track_ids: list[str], features: np.ndarray) -> np.ndarray:
        """Vectors of ``track_ids``: the trained one where known, else from content."""
        out = self.content_vectors(features)
        for n, t in enumerate(track_ids):
            j = self._item_index.get(t)
            if j is not None:
                out[n] = self.item_vectors[j]
        return out

    def history_of(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """A trained listener's tracks (item indices) and signed weights."""
        lo, hi = self.history.indptr[user], self.history.indptr[user + 1]
        return self.history.indices[lo:hi], self.history.data[lo:hi]

    def fold_in(self, vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The vector of a listener with history ``vectors`` (their tracks'
        vectors) and signed ``weights``; only liked tracks count."""
        pos = weights > 0
        if not pos.any():
            return np.zeros(self.factors, dtype=np.float32)
        return fold_in(
            vectors[pos],
            self.gram,
            weights[pos],
            regularization=self.regularization,
            alpha=self.alpha,
        )

    # -- storage ---------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        h = self.history.tocsr()
        np.savez_compressed(
            d / ARRAYS,
            user_ids=self.user_ids.astype(str),
            item_ids=self.item_ids.astype(str),
            user_factors=self.user_factors,
            item_vectors=self.item_vectors,
            projection=self.projection,
            item_features=self.item_features,
            popularity=self.popularity,
            history_data=h.data.astype(np.float32),
            history_indices=h.indices.astype(np.int32),
            history_indptr=h.indptr.astype(np.int64),
        )
        card = {
            "kind": self.kind,
            "content_scale": self.content_scale,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "params": self.params,
            "metrics": self.metrics,
            "feature_version": self.feature_version,
            "feature_names": list(FEATURE_NAMES),
            "users": len(self.user_ids),
            "items": len(self.item_ids),
        }
        (d / CARD).write_text(json.dumps(card, indent=2, sort_keys=True))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> RecommenderArtifact:
        d = Path(directory)
        card = json.loads((d / CARD).read_text())
        if card.get("feature_version") != FEATURE_VERSION:
            raise ValueError(
                f"recommender in {d} uses feature layout {card.get('feature_version')!r}; "
                f"this code reads {FEATURE_VERSION!r}: retrain it"
            )
        with np.load(d / ARRAYS, allow_pickle=False) as z:
            n_users, n_items = len(z["user_ids"]), len(z["item_ids"])
            history = sp.csr_matrix(
                (z["history_data"], z["history_indices"], z["history_indptr"]),
                shape=(n_users, n_items),
            )
            if z["item_features"].shape[1:] != (DIM,):
                raise ValueError(
                    f"recommender in {d} has features of width {z['item_features'].shape[1]}"
                )
            return cls(
                kind=card["kind"],
                user_ids=z["user_ids"].astype(object),
                item_ids=z["item_ids"].astype(object),
                user_factors=z["user_factors"],
                item_vectors=z["item_vectors"],
                projection=z["projection"],
                content_scale=float(card["content_scale"]),
                item_features=z["item_features"],
                popularity=z["popularity"],
                history=history,
                regularization=float(card["regularization"]),
                alpha=float(card["alpha"]),
                params=dict(card.get("params") or {}),
                metrics=dict(card.get("metrics") or {}),
            )


class ArtifactScorer:
    """A stored model scoring another dataset's listeners and tracks (the
    current champion evaluated on today's split): tracks by id or content,
    listeners by id or folded in from their training history there."""

    name = "champion"

    def __init__(self, artifact: RecommenderArtifact, user_ids: np.ndarray, item_ids: np.ndarray):
        self.artifact = artifact
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.U = np.zeros((0, artifact.factors), dtype=np.float32)
        self.V = np.zeros((0, artifact.factors), dtype=np.float32)

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        a = self.artifact
        self.V = a.vectors_for([str(t) for t in self.item_ids], features)
        self.U = np.zeros((len(self.user_ids), a.factors), dtype=np.float32)
        train = train.tocsr()
        for n, user in enumerate(self.user_ids):
            j = a.user_index(str(user))
            if j is not None:
                self.U[n] = a.user_factors[j]
                continue
            lo, hi = train.indptr[n], train.indptr[n + 1]
            if hi > lo:
                self.U[n] = a.fold_in(self.V[train.indices[lo:hi]], train.data[lo:hi])

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.U[users] @ self.V.T

    def params(self) -> dict[str, float | int | str]:
        return {"kind": self.artifact.kind}
