"""The three recommendation endpoints over a seeded catalog, with a champion
swapped in while the API runs."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from fastapi.testclient import TestClient

from models.recommend.artifact import RecommenderArtifact
from models.recommend.features import DIM
from serving.services.recommend import LoadedModel


def _artifact(user_id: str, track_ids: list[str], liked: str) -> RecommenderArtifact:
    k = 4
    rng = np.random.default_rng(0)
    items = rng.normal(size=(len(track_ids), k)).astype(np.float32)
    history = sp.csr_matrix(
        (np.array([2.0], np.float32), (np.array([0]), np.array([track_ids.index(liked)]))),
        shape=(1, len(track_ids)),
    )
    return RecommenderArtifact(
        kind="hybrid_ials", user_ids=np.array([user_id], dtype=object),
        item_ids=np.array(track_ids, dtype=object), user_factors=items[:1] + 0.1,
        item_vectors=items, projection=rng.normal(size=(DIM + 1, k)).astype(np.float32),
        content_scale=1.0, item_features=np.zeros((len(track_ids), DIM), np.float32),
        popularity=np.ones(len(track_ids), np.float32), history=history,
        regularization=0.05, alpha=2.0,
    )  # fmt: skip


def test_recommendation_endpoints(client: TestClient, seeded, users) -> None:
    on_air = [t.track_id for t in seeded if t.mastered]
    listener = users.create()
    # Without a champion: cold start for everyone, trending for all.
    r = client.get("/api/v1/recommendations/personalized", headers=listener.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strategy"] == "cold_start" and body["model_version"] is None
    assert {i["track_id"] for i in body["items"]} == set(on_air)
    assert all(i["reason"]["kind"] == "trending" for i in body["items"])
    r = client.get("/api/v1/recommendations/trending", params={"limit": 2})
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    # The most played on-air track trends first (no trending table yet).
    assert (
        r.json()["items"][0]["track_id"]
        == max((t for t in seeded if t.mastered), key=lambda t: t.plays).track_id
    )

    # A champion arrives while the API runs: the next request uses it.
    svc = client.app.state.recommender  # type: ignore[attr-defined]
    known = on_air[:2]  # the model knows two of the tracks; the rest are new to it
    svc.set_model(LoadedModel("7", _artifact(listener.user_id, known, known[0]), time.time()))
    r = client.get("/api/v1/recommendations/personalized", headers=listener.headers)
    body = r.json()
    assert (
        r.status_code == 200 and body["strategy"] == "personalized" and body["model_version"] == "7"
    )
    ids = [i["track_id"] for i in body["items"]]
    assert known[0] not in ids  # heard already
    assert set(ids) == set(on_air) - {known[0]}
    assert all(i["reason"]["kind"] == "because_you_liked" for i in body["items"][: len(on_air) - 1])
    assert body["items"][0]["reason"]["track_id"] == known[0]

    # Similar works for a track the model never saw, with a reason in words.
    new_track = on_air[-1]
    r = client.get(f"/api/v1/recommendations/similar/{new_track}", params={"limit": 3})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert new_track not in [i["track_id"] for i in items] and len(items) == min(3, len(on_air) - 1)
    assert all(i["reason"]["kind"] == "similar" and i["reason"]["text"] for i in items)

    # Another listener, unknown to the model: cold start, favourite genre first.
    other = users.create()
    r = client.get("/api/v1/recommendations/personalized", headers=other.headers)
    assert r.json()["strategy"] == "cold_start"


def test_recommendation_errors(client: TestClient, seeded) -> None:
    r = client.get("/api/v1/recommendations/personalized")
    assert r.status_code == 401 and "authentication required" in r.json()["error"]["message"]
    r = client.get("/api/v1/recommendations/similar/trk_doesnotexist")
    assert r.status_code == 404 and "trk_doesnotexist" in r.json()["error"]["message"]
    r = client.get("/api/v1/recommendations/trending", params={"limit": 0})
    assert r.status_code == 422
    r = client.get("/api/v1/recommendations/trending", params={"genre": "Bad Genre!"})
    assert r.status_code == 422


def test_no_request_fails_while_the_champion_is_swapped(client: TestClient, seeded, users) -> None:
    """Requests keep answering 200 while another thread swaps models in."""
    import threading

    on_air = [t.track_id for t in seeded if t.mastered]
    listener = users.create()
    svc = client.app.state.recommender  # type: ignore[attr-defined]
    stop = threading.Event()

    def swap() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            liked = on_air[n % len(on_air)]
            svc.set_model(
                LoadedModel(str(n), _artifact(listener.user_id, on_air, liked), time.time())
            )

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        statuses = []
        for k in range(60):
            path = ("personalized", f"similar/{on_air[k % len(on_air)]}", "trending")[k % 3]
            r = client.get(f"/api/v1/recommendations/{path}", headers=listener.headers)
            statuses.append(r.status_code)
            assert r.status_code == 200, r.text
    finally:
        stop.set()
        swapper.join()
    assert svc.swaps > 1 and statuses.count(200) == 60
