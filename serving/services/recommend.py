"""Recommendations served from the champion model in memory.

The champion (``models:/sonicforge-recommender@champion``) is loaded by a
background thread when the API starts and whenever the registry's alias
moves (polled every ``recommend_poll_s``): the new model is built whole and
then swapped in with one assignment, so no request sees half a model and
none fails during the swap. Until a champion exists, every listener gets
the cold-start lists.

Candidates are the catalog's tracks on air (every track, if none is): a
track the model has never seen is ranked by the vector its content
features predict, so a track mastered a minute ago is recommended and has
neighbours. Scoring one listener is a (tracks × factors) product and a
partial sort: well under a millisecond for ten thousand tracks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.recommend.features import describe_similarity, feature_vector
from serving.cache import TTLCache
from serving.schemas.recommendations import (
    RecommendationList,
    RecommendationReason,
    RecommendedTrack,
)
from serving.schemas.tracks import TrackPublic

if TYPE_CHECKING:
    from models.recommend.artifact import RecommenderArtifact

log = logging.getLogger("serving.recommend")

#: A listener's favourite genre (from their votes) is kept this long.
FAVOURITE_CACHE_S = 60.0
#: Liked tracks a "because you liked" reason is chosen among.
REASON_HISTORY = 50


@dataclass(frozen=True)
class LoadedModel:
    version: str
    artifact: RecommenderArtifact
    loaded_at: float


def _row(track: TrackPublic) -> dict[str, Any]:
    row: dict[str, Any] = {"genre": track.genre, "bpm": track.bpm, "musical_key": track.musical_key}
    if track.score is not None:
        row.update(
            quality_score=track.score.quality_score,
            integrated_lufs=track.score.integrated_lufs,
            tempo_bpm_est=track.score.tempo_bpm_est,
        )
    return row


def _unit(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class ServingIndex:
    """Candidate tracks with their content and model vectors, and the trending order."""

    def __init__(
        self,
        tracks: list[TrackPublic],
        model: LoadedModel | None,
        trending: dict[str, float],
        key: tuple[Any, ...],
    ) -> None:
        self.key = key
        self.tracks = tracks
        self.ids = [t.track_id for t in tracks]
        self.position = {t: n for n, t in enumerate(self.ids)}
        self.model = model
        feats = np.stack([feature_vector(_row(t)) for t in tracks]) if tracks else np.zeros((0, 1))
        self.features = feats.astype(np.float32)
        mu, sd = (feats.mean(axis=0), feats.std(axis=0) + 1e-3) if len(tracks) else (0.0, 1.0)
        self._mu, self._sd = mu, sd
        self.content_unit = _unit((feats - mu) / sd) if len(tracks) else feats
        now = datetime.now(UTC)
        scores = np.array(
            [trending.get(t.track_id, _fallback_trend(t, now)) for t in tracks], dtype=np.float64
        )
        self.trending_order = np.argsort(-scores, kind="stable")
        self.trending_score = scores
        self.from_table = bool(trending)
        self.vectors: np.ndarray | None = None
        self.vector_unit: np.ndarray | None = None
        # artifact item index -> candidate position (-1: not a candidate)
        self.to_candidate = np.zeros(0, dtype=np.int64)
        if model is not None and tracks:
            a = model.artifact
            self.vectors = a.vectors_for(self.ids, self.features)
            self.vector_unit = _unit(self.vectors)
            self.to_candidate = np.full(len(a.item_ids), -1, dtype=np.int64)
            for n, tid in enumerate(self.ids):
                j = a.item_index(tid)
                if j is not None:
                    self.to_candidate[j] = n

    def content_unit_of(self, track: TrackPublic) -> np.ndarray:
        n = self.position.get(track.track_id)
        if n is not None:
            return self.content_unit[n]
        v = (feature_vector(_row(track)) - self._mu) / self._sd
        return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)


def _fallback_trend(track: TrackPublic, now: datetime) -> float:
    """Without a trending table: plays, decayed by the track's age (two-day half-life)."""
    age_h = max(0.0, (now - track.created_at).total_seconds() / 3600)
    return (track.plays + 1.0) * 0.5 ** (age_h / 48.0)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class RecommendationService:
    def __init__(
        self,
        *,
        catalog: Any,
        lakehouse: Any,
        db: Any,
        tracking_uri: str,
        artifact_root: str | None,
        model_name: str,
        alias: str,
        poll_s: float,
    ) -> None:
        self.catalog = catalog
        self.lakehouse = lakehouse
        self.db = db
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.model_name = model_name
        self.alias = alias
        self.poll_s = poll_s
        self.model: LoadedModel | None = None
        self.swaps = 0
        self.last_error: str | None = None
        self._index: ServingIndex | None = None
        self._index_lock = threading.Lock()
        self._favourites: TTLCache[str] = TTLCache(FAVOURITE_CACHE_S, max_entries=10_000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry: Any = None

    @classmethod
    def from_context(cls, ctx: Any) -> RecommendationService:
        s = ctx.settings
        return cls(
            catalog=ctx.catalog,
            lakehouse=ctx.lakehouse,
            db=ctx.db,
            tracking_uri=s.resolved_mlflow_tracking_uri,
            artifact_root=s.resolved_mlflow_artifact_root,
            model_name=s.recommend_model_name,
            alias=s.recommend_alias,
            poll_s=s.recommend_poll_s,
        )

    # -- the champion --------------------------------------------------------
    def start(self) -> None:
        """Load the champion and follow its alias, on a background thread."""
        # A request's products are one vector against the catalog (about a
        # tenth of a millisecond on one core); BLAS worker threads would only
        # spin against the event loop for the cores (10k tracks: 25 ms a
        # request under load with them, measured by bench/recommend.py).
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, "blas")
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._follow, name="recommender", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _store_exists(self) -> bool:
        # An embedded store that was never created has no champion; opening
        # it would create and migrate an empty database.
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///")).exists()
        return True

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # the current model keeps serving; retried next poll
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("recommender refresh failed", extra={"error": self.last_error})
            if self.poll_s <= 0 or self._stop.wait(self.poll_s):
                return

    def refresh(self) -> bool:
        """Load the champion if the alias points at another version; True on a swap."""
        if not self._store_exists():
            return False
        if self._registry is None:
            from models.recommend.registry import RecommenderRegistry

            # One client for every poll: building one costs far more than the query.
            self._registry = RecommenderRegistry(
                self.tracking_uri, artifact_root=self.artifact_root, model_name=self.model_name
            )
        registry = self._registry
        version = registry.champion_version(self.alias)
        if version is None or (self.model is not None and self.model.version == version):
            return False
        self.set_model(LoadedModel(version, registry.load(version), time.time()))
        return True

    def set_model(self, model: LoadedModel) -> None:
        """Swap in a loaded model (one assignment: requests in flight keep the old one)."""
        self.model = model
        self.swaps += 1
        self.last_error = None
        log.info("recommender champion loaded", extra={"version": model.version})

    # -- the index -------------------------------------------------------------
    def _trending_table(self) -> tuple[int | None, dict[str, float]]:
        from models.recommend.sources import read_table

        try:
            version = self.lakehouse.version("trending_tracks")
        except Exception:
            return None, {}
        if version is None:
            return None, {}
        t = read_table(self.lakehouse, "trending_tracks", ["track_id", "score"])
        if t is None or "score" not in t.column_names:
            return version, {}
        return version, dict(zip(t["track_id"].to_pylist(), t["score"].to_pylist(), strict=True))

    def index(self) -> ServingIndex:
        """The index for the current catalog snapshot and model (rebuilt when either moved)."""
        snap = self.catalog.snapshot()
        model = self.model
        current = self._index
        key = (snap.versions, model.version if model else None)
        if current is not None and current.key[:2] == key:
            return current
        with self._index_lock:
            current = self._index
            if current is not None and current.key[:2] == key:
                return current
            on_air = [t for t in snap.ordered if t.on_air]
            tracks = on_air or list(snap.ordered)
            trending_version, trending = self._trending_table()
            self._index = ServingIndex(tracks, model, trending, (*key, trending_version))
            return self._index

    async def aindex(self) -> ServingIndex:
        import anyio

        snap = await self.catalog.asnapshot()
        current, model = self._index, self.model
        if current is not None and current.key[:2] == (
            snap.versions,
            model.version if model else None,
        ):
            return current
        return await anyio.to_thread.run_sync(self.index)

    # -- the lists -------------------------------------------------------------
    def _item(
        self, idx: ServingIndex, n: int, score: float, reason: RecommendationReason
    ) -> RecommendedTrack:
        t = idx.tracks[n]
        return RecommendedTrack(
            track_id=t.track_id,
            genre=t.genre,
            bpm=t.bpm,
            musical_key=t.musical_key,
            duration_s=t.duration_s,
            audio_url=t.audio_url,
            score=float(score) if math.isfinite(score) else 0.0,
            reason=reason,
        )

    def trending(
        self, idx: ServingIndex, *, limit: int, genre: str | None = None
    ) -> RecommendationList:
        items = []
        for n in idx.trending_order:
            t = idx.tracks[n]
            if genre is not None and t.genre != genre:
                continue
            text = f"trending in {genre}" if genre else "trending on the station"
            items.append(
                self._item(
                    idx,
                    int(n),
                    idx.trending_score[n],
                    RecommendationReason(
                        kind="trending_in_genre" if genre else "trending", text=text
                    ),
                )
            )
            if len(items) >= limit:
                break
        return RecommendationList(items=items, strategy="trending", model_version=None)

    def favourite_genre(self, user_id: str) -> str | None:
        cached = self._favourites.get(user_id)
        if cached is not None:
            return cached or None
        from sqlalchemy import func, or_, select

        from serving.db.models import Vote

        with self.db.session() as session:
            row = session.execute(
                select(Vote.genre, func.count())
                .where(Vote.user_id == user_id, or_(Vote.stars >= 4, Vote.direction == 1))
                .group_by(Vote.genre)
                .order_by(func.count().desc(), Vote.genre)
                .limit(1)
            ).first()
        genre = str(row[0]) if row else ""
        self._favourites.set(user_id, genre)
        return genre or None

    def cold_start(self, idx: ServingIndex, user_id: str, *, limit: int) -> RecommendationList:
        genre = self.favourite_genre(user_id)
        items: list[RecommendedTrack] = []
        if genre:
            items = self.trending(idx, limit=limit, genre=genre).items
        seen = {i.track_id for i in items}
        for item in self.trending(idx, limit=limit + len(items)).items:
            if len(items) >= limit:
                break
            if item.track_id not in seen:
                items.append(item)
        return RecommendationList(
            items=items,
            strategy="cold_start",
            model_version=self.model.version if self.model else None,
        )

    def personalized(self, idx: ServingIndex, user_id: str, *, limit: int) -> RecommendationList:
        model = idx.model
        j = model.artifact.user_index(user_id) if model is not None else None
        if model is None or j is None or idx.vectors is None or not idx.tracks:
            return self.cold_start(idx, user_id, limit=limit)
        a = model.artifact
        scores = idx.vectors @ a.user_factors[j]
        heard, weights = a.history_of(j)
        pos = idx.to_candidate[heard]
        scores[pos[pos >= 0]] = -np.inf
        top = _top(scores, limit)
        liked = heard[weights > 0]
        liked = liked[np.argsort(-weights[weights > 0])][:REASON_HISTORY]
        liked_vecs = _unit(a.item_vectors[liked]) if len(liked) else None
        items = []
        for n in top:
            reason = RecommendationReason(kind="trending", text="picked for your taste")
            if liked_vecs is not None and idx.vector_unit is not None:
                best = int(np.argmax(liked_vecs @ idx.vector_unit[n]))
                tid = str(a.item_ids[liked[best]])
                meta = _describe(idx, a, int(liked[best]))
                reason = RecommendationReason(
                    kind="because_you_liked", text=f"because you liked {tid}{meta}", track_id=tid
                )
            items.append(self._item(idx, int(n), float(scores[n]), reason))
        if len(items) < limit:  # a small catalog: fill with what is trending
            have = {i.track_id for i in items} | {str(a.item_ids[h]) for h in heard}
            for item in self.trending(idx, limit=limit + len(have)).items:
                if len(items) >= limit:
                    break
                if item.track_id not in have:
                    items.append(item)
        return RecommendationList(items=items, strategy="personalized", model_version=model.version)

    def similar(self, idx: ServingIndex, track: TrackPublic, *, limit: int) -> RecommendationList:
        if not idx.tracks:
            return RecommendationList(items=[], strategy="similar", model_version=None)
        content = idx.content_unit @ idx.content_unit_of(track)
        scores = content.astype(np.float64)
        model = idx.model
        if model is not None and idx.vector_unit is not None:
            vec = model.artifact.vectors_for(
                [track.track_id], feature_vector(_row(track))[None, :]
            )[0]
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                scores = 0.5 * scores + 0.5 * (idx.vector_unit @ (vec / norm))
        n_self = idx.position.get(track.track_id)
        if n_self is not None:
            scores[n_self] = -np.inf
        seed = _row(track)
        items = [
            self._item(
                idx,
                int(n),
                float(scores[n]),
                RecommendationReason(
                    kind="similar",
                    text=describe_similarity(seed, _row(idx.tracks[int(n)])),
                    track_id=track.track_id,
                ),
            )
            for n in _top(scores, limit)
        ]
        return RecommendationList(
            items=items, strategy="similar", model_version=model.version if model else None
        )

    def status(self) -> dict[str, Any]:
        m = self.model
        return {
            "version": m.version if m else None,
            "kind": m.artifact.kind if m else None,
            "swaps": self.swaps,
            "last_error": self.last_error,
        }


def _describe(idx: ServingIndex, a: RecommenderArtifact, item: int) -> str:
    n = idx.to_candidate[item] if item < len(idx.to_candidate) else -1
    if n >= 0:
        t = idx.tracks[int(n)]
        bpm = f", {t.bpm:.0f} bpm" if t.bpm else ""
        return f" ({t.genre}{bpm})"
    return ""
