"""Baselines the candidates must beat, in the same harness: popularity
(TopPop), EASE (Steck 2019, a closed form) and item-kNN (cosine).

Every model here and in ``factorization`` has ``fit(train_pos, features)``
and ``score(users) -> (len(users), n_items)`` dense scores; the harness
masks what each listener has already heard.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp


class Recommender(Protocol):
    name: str

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None: ...

    def score(self, users: np.ndarray) -> np.ndarray: ...

    def params(self) -> dict[str, float | int | str]: ...


class TopPop:
    """Every listener gets the tracks most listeners liked in training."""

    name = "toppop"

    def __init__(self) -> None:
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        self.popularity = np.asarray((train > 0).sum(axis=0), dtype=np.float32).ravel()

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(users), len(self.popularity))).copy()

    def params(self) -> dict[str, float | int | str]:
        return {}


class RandomRanking:
    """A seeded random order: the floor that any model which learnt
    something beats. On an AI radio, where most liked tracks are new,
    TopPop can fall below it."""

    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.n_items = 0

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        self.n_items = train.shape[1]

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.empty((len(users), self.n_items), dtype=np.float32)
        for r, u in enumerate(users):  # per listener, so batches do not change it
            out[r] = np.random.default_rng((self.seed, int(u))).random(self.n_items)
        return out

    def params(self) -> dict[str, float | int | str]:
        return {"seed": self.seed}


class EASE:
    """Embarrassingly shallow autoencoder: B = I - P / diag(P) with
    P = (XᵀX + λI)⁻¹ over the binarised training matrix, zero diagonal.

    The inverse is dense (items × items), so only tracks with training
    interactions take part; the rest score zero (EASE knows nothing of them).
    """

    name = "ease"

    def __init__(self, *, l2: float = 200.0) -> None:
        self.l2 = l2
        self.B = np.zeros((0, 0), dtype=np.float32)
        self.items = np.zeros(0, dtype=np.int64)
        self.X = sp.csr_matrix((0, 0), dtype=np.float32)
        self.n_items = 0

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        X = (train > 0).astype(np.float32).tocsr()
        self.n_items = X.shape[1]
        self.items = np.flatnonzero(np.asarray(X.sum(axis=0)).ravel() > 0)
        Xw = X[:, self.items].tocsc()
        G = (Xw.T @ Xw).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.l2
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        B[np.diag_indices_from(B)] = 0.0
        self.B = B.astype(np.float32)
        self.X = Xw.tocsr()

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), self.n_items), dtype=np.float32)
        out[:, self.items] = self.X[users] @ self.B
        return out

    def params(self) -> dict[str, float | int | str]:
        return {"l2": self.l2}


class ItemKNN:
    """Item-based neighbours: cosine similarity of the tracks' listener
    vectors, the ``k`` nearest kept (``implicit``'s CosineRecommender)."""

    name = "itemknn"

    def __init__(self, *, k: int = 100) -> None:
        self.k = k
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.X = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        from implicit.nearest_neighbours import CosineRecommender

        self.X = (train > 0).astype(np.float32).tocsr()
        model = CosineRecommender(K=self.k)
        model.fit(self.X, show_progress=False)
        self.similarity = model.similarity.tocsr().astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.X[users] @ self.similarity).todense(), dtype=np.float32)

    def params(self) -> dict[str, float | int | str]:
        return {"k": self.k}
