"""Interactions as integer-coded arrays, aggregated per listener and track,
and the time split the offline evaluation trains and tests on.

Weights are signed: a completed play or an up-vote counts for the track, a
skip or a down-vote against it. Models learn from the positive part only
(implicit-feedback confidence), but every pair a listener has touched is
"seen" and never recommended back to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from models.recommend.features import DIM

#: A track with fewer training interactions than this is in the cold-start slice.
COLD_THRESHOLD = 5
US_PER_DAY = 86_400 * 1_000_000


@dataclass
class Dataset:
    """Interactions (one row per listener-track event or aggregate) over a
    catalog of tracks with content features.

    ``ts`` is microseconds since the epoch (UTC). ``item_meta`` holds each
    track's genre, bpm and key, for the reasons shown to listeners.
    """

    user_ids: np.ndarray  # (n_users,) str
    item_ids: np.ndarray  # (n_items,) str
    u: np.ndarray  # int32 user index per row
    i: np.ndarray  # int32 item index per row
    w: np.ndarray  # float32 signed weight per row
    ts: np.ndarray  # int64 microseconds per row
    item_features: np.ndarray  # (n_items, DIM) float32
    item_meta: list[dict[str, Any]] = field(default_factory=list)
    #: When each track appeared (microseconds); tracks are candidates only after.
    item_created_us: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.item_created_us is None:
            self.item_created_us = np.zeros(len(self.item_ids), dtype=np.int64)
        if self.item_features.shape != (len(self.item_ids), DIM):
            raise ValueError(
                f"item_features has shape {self.item_features.shape}; "
                f"expected ({len(self.item_ids)}, {DIM})"
            )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def rows(self) -> int:
        return len(self.u)

    def matrix(self, mask: np.ndarray | None = None) -> sp.csr_matrix:
        """Listeners × tracks, the signed weights of the selected rows summed."""
        u, i, w = (
            (self.u, self.i, self.w) if mask is None else (self.u[mask], self.i[mask], self.w[mask])
        )
        m = sp.coo_matrix(
            (w.astype(np.float32), (u, i)), shape=(self.n_users, self.n_items)
        ).tocsr()
        m.sum_duplicates()
        return m


def positive(m: sp.csr_matrix) -> sp.csr_matrix:
    """The positive part of a signed matrix (confidences for implicit feedback)."""
    out = m.copy()
    out.data = np.where(out.data > 0, out.data, 0).astype(np.float32)
    out.eliminate_zeros()
    return out


def seen(m: sp.csr_matrix) -> sp.csr_matrix:
    """1 where a listener touched a track, whatever the sign."""
    out = m.copy()
    out.data = np.ones_like(out.data, dtype=np.float32)
    return out


@dataclass
class Split:
    """Training matrices before ``cutoff_us`` and the test positives after."""

    train: sp.csr_matrix  # signed, summed
    train_pos: sp.csr_matrix  # positive part
    train_seen: sp.csr_matrix
    test_pos: sp.csr_matrix  # positives after the cutoff not seen before it
    item_counts: np.ndarray  # training interactions (pairs) per item
    cutoff_us: int
    test_end_us: int
    available: np.ndarray  # bool per item: it existed before the test window ended

    @property
    def cold_items(self) -> np.ndarray:
        """Available items with fewer than COLD_THRESHOLD training interactions."""
        return np.flatnonzero((self.item_counts < COLD_THRESHOLD) & self.available)


def time_split(ds: Dataset, *, test_days: float = 7.0, cutoff_us: int | None = None) -> Split:
    """Train on everything before the cutoff (default: ``test_days`` before
    the last interaction), test on the positives of the days after it."""
    if ds.rows == 0:
        raise ValueError("no interactions to split; the time split needs at least two days of data")
    end = int(ds.ts.max()) + 1
    cutoff = int(cutoff_us) if cutoff_us is not None else end - int(test_days * US_PER_DAY)
    before = ds.ts < cutoff
    if not before.any() or before.all():
        raise ValueError(
            f"the cutoff leaves no {'training' if not before.any() else 'test'} interactions; "
            f"data spans {(end - int(ds.ts.min())) / US_PER_DAY:.1f} days, test_days={test_days}"
        )
    train = ds.matrix(before)
    test = positive(ds.matrix(~before))
    train_seen = seen(train)
    # Test positives the listener had already touched in training are not news.
    test = positive(test - test.multiply(train_seen))
    return Split(
        train=train,
        train_pos=positive(train),
        train_seen=train_seen,
        test_pos=test,
        item_counts=np.asarray(train_seen.sum(axis=0)).ravel().astype(np.int64),
        cutoff_us=cutoff,
        test_end_us=end,
        available=np.asarray(ds.item_created_us) < end,
    )


def encode(values: pa.ChunkedArray | pa.Array | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and the distinct values (as numpy str) of a string column."""
    arr = (
        values if isinstance(values, pa.ChunkedArray | pa.Array) else pa.array(values, pa.string())
    )
    enc = pc.dictionary_encode(arr.cast(pa.string()))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, np.asarray(enc.dictionary.to_pylist(), dtype=object)
