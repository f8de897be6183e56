"""Matrix factorisation candidates from ``implicit`` and the content hybrid.

- ``IALS``: implicit-feedback ALS (Hu, Koren & Volinsky 2008).
- ``BPR``: Bayesian personalised ranking (Rendle et al. 2009).
- ``HybridIALS``: iALS plus a ridge map from content features to the item
  factors, learnt on tracks with enough listens (the attribute-to-factor
  mapping of Gantner et al. 2010). A track's vector is its own factor
  shrunk toward the one its features predict, by how much it has been
  heard: a track mastered a minute ago is all content, a hit is all
  collaborative. Listeners unknown to the model are folded in from their
  history with the same least-squares step ALS uses.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits


def with_bias(features: np.ndarray) -> np.ndarray:
    return np.hstack([features, np.ones((features.shape[0], 1), dtype=np.float32)])


def content_projection(
    features: np.ndarray, factors: np.ndarray, counts: np.ndarray, *, ridge: float, min_count: int
) -> np.ndarray:
    """Ridge regression from (features, 1) to item factors over tracks with at
    least ``min_count`` training interactions, weighted by log(1 + count)."""
    warm = counts >= min_count
    if warm.sum() < 2:
        return np.zeros((features.shape[1] + 1, factors.shape[1]), dtype=np.float32)
    F = with_bias(features[warm]).astype(np.float64)
    w = np.log1p(counts[warm]).astype(np.float64)[:, None]
    A = F.T @ (F * w) + ridge * np.eye(F.shape[1])
    b = F.T @ (factors[warm].astype(np.float64) * w)
    return np.linalg.solve(A, b).astype(np.float32)


def fold_in(
    history_vectors: np.ndarray,
    gram: np.ndarray,
    confidence: np.ndarray,
    *,
    regularization: float,
    alpha: float,
) -> np.ndarray:
    """The ALS user vector for a history (the vectors of the tracks heard,
    with positive ``confidence``): (YᵀY + Yₕᵀ(C−I)Yₕ + λI)⁻¹ Yₕᵀ C 1."""
    k = gram.shape[0]
    if len(history_vectors) == 0:
        return np.zeros(k, dtype=np.float32)
    Y = history_vectors.astype(np.float64)
    c = 1.0 + alpha * np.asarray(confidence, dtype=np.float64)
    A = gram + (Y.T * (c - 1.0)) @ Y + regularization * np.eye(k)
    return np.linalg.solve(A, Y.T @ c).astype(np.float32)


class IALS:
    """iALS through ``implicit`` (CPU, conjugate gradient)."""

    name = "ials"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 12,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.user_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_factors = np.zeros((0, factors), dtype=np.float32)

    def _fit_als(self, train: sp.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):  # implicit's own threads do the work
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                calculate_training_loss=False,
                random_state=self.seed,
            )
            model.fit(train.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        self._fit_als(train)

    @property
    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_vectors.T

    def params(self) -> dict[str, float | int | str]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
        }


class HybridIALS(IALS):
    """iALS with content-predicted factors for rarely heard tracks."""

    name = "hybrid_ials"

    def __init__(
        self,
        *,
        prior: float = 8.0,
        ridge: float = 1.0,
        min_count: int = 5,
        content_scale: float = 3.0,
        **kwargs: float,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.prior = prior
        # Ridge predictions are shrunk toward the mean; scaled back up, new
        # tracks compete with heard ones (tuned on a validation split).
        self.content_scale = content_scale
        self.ridge = ridge
        self.min_count = min_count
        self.projection = np.zeros((0, 0), dtype=np.float32)
        self.cf_weight = np.zeros(0, dtype=np.float32)
        self._item_vectors = np.zeros((0, 0), dtype=np.float32)
        self._content = np.zeros((0, 0), dtype=np.float32)

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        self._fit_als(train)
        counts = np.diff(train.tocsc().indptr)
        self.projection = content_projection(
            features, self.item_factors, counts, ridge=self.ridge, min_count=self.min_count
        )
        self.cf_weight = (counts / (counts + self.prior)).astype(np.float32)
        self._content = with_bias(features) @ self.projection
        self.rescale(self.content_scale)

    def rescale(self, content_scale: float) -> None:
        """Blend again with another content scale (no refit)."""
        self.content_scale = content_scale
        b = self.cf_weight[:, None]
        mixed = b * self.item_factors + (1 - b) * content_scale * self._content
        self._item_vectors = mixed.astype(np.float32)

    @property
    def item_vectors(self) -> np.ndarray:
        return self._item_vectors

    def params(self) -> dict[str, float | int | str]:
        return {
            **super().params(),
            "prior": self.prior,
            "ridge": self.ridge,
            "min_count": self.min_count,
            "content_scale": self.content_scale,
        }


class BPR:
    """BPR through ``implicit`` (CPU, Hogwild SGD)."""

    name = "bpr"

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 60,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.user_factors = np.zeros((0, factors + 1), dtype=np.float32)
        self.item_factors = np.zeros((0, factors + 1), dtype=np.float32)

    def fit(self, train: sp.csr_matrix, features: np.ndarray) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
        )
        with threadpool_limits(1, "blas"):
            model.fit((train > 0).astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)

    @property
    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T

    def params(self) -> dict[str, float | int | str]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "seed": self.seed,
        }
