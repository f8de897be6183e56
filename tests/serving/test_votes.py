"""Votes, aggregates and the Bayesian chart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from serving.app import create_app
from serving.context import AppContext
from serving.db.models import OutboxEvent, Vote
from serving.db.types import utcnow
from serving.services.votes import bayesian
from tests.serving.conftest import Account, Users
from tests.serving.factories import SeededTrack


def _vote(client: TestClient, who: Account, track_id: str, **fields: object) -> dict:  # type: ignore[type-arg]
    r = client.post("/api/v1/vote", json={"track_id": track_id, **fields}, headers=who.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_vote_is_recorded_with_its_event(
    client: TestClient, ctx: AppContext, users: Users, seeded: list[SeededTrack]
) -> None:
    who, track = users.create(), seeded[0]
    body = _vote(client, who, track.track_id, stars=4, direction="up")
    assert body["track_id"] == track.track_id
    assert body["stars"] == 4
    assert body["direction"] == "up"
    assert body["created_at"] == body["updated_at"]
    with ctx.db.session() as s:
        row = s.scalar(select(Vote).where(Vote.user_id == who.user_id))
        assert row is not None
        assert (row.track_id, row.genre, row.stars, row.direction) == (
            track.track_id,
            track.genre,
            4,
            1,
        )
        event = s.scalar(select(OutboxEvent).where(OutboxEvent.type == "vote"))
        assert event is not None
        assert event.properties == {"stars": 4, "direction": "up"}
        assert event.track_id == track.track_id


def test_voting_again_replaces_the_vote(
    client: TestClient, ctx: AppContext, users: Users, seeded: list[SeededTrack]
) -> None:
    who, track = users.create(), seeded[0]
    first = _vote(client, who, track.track_id, stars=2)
    second = _vote(client, who, track.track_id, direction="down")
    assert second["stars"] is None
    assert second["direction"] == "down"
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] >= first["updated_at"]
    with ctx.db.session() as s:
        assert len(s.scalars(select(Vote).where(Vote.user_id == who.user_id)).all()) == 1


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"stars": 6}, ["body", "stars"]),
        ({"stars": 0}, ["body", "stars"]),
        ({"direction": "sideways"}, ["body", "direction"]),
        ({}, ["body"]),
    ],
)
def test_invalid_votes_are_422(
    client: TestClient,
    users: Users,
    seeded: list[SeededTrack],
    payload: dict,
    where: list,  # type: ignore[type-arg]
) -> None:
    who = users.create()
    r = client.post(
        "/api/v1/vote", json={"track_id": seeded[0].track_id, **payload}, headers=who.headers
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == where


def test_a_vote_on_an_unknown_track_is_404(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    r = client.post(
        "/api/v1/vote", json={"track_id": "trk_nothing", "stars": 5}, headers=users.create().headers
    )
    assert r.status_code == 404


def test_voting_needs_an_account(client: TestClient, seeded: list[SeededTrack]) -> None:
    assert (
        client.post("/api/v1/vote", json={"track_id": seeded[0].track_id, "stars": 5}).status_code
        == 401
    )


def test_aggregates_and_the_callers_own_vote(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    a, b, c = users.create(), users.create(), users.create()
    tid = seeded[0].track_id
    _vote(client, a, tid, stars=5, direction="up")
    _vote(client, b, tid, stars=3)
    _vote(client, c, tid, direction="down")
    body = client.get(f"/api/v1/vote/{tid}", headers=a.headers).json()
    assert body["votes"] == 3
    assert body["stars_count"] == 2
    assert body["stars_avg"] == 4.0
    assert (body["ups"], body["downs"]) == (1, 1)
    # ratings 5, 3 and 1 (a thumb down): the prior mean is their mean, 3.
    assert body["score"] == pytest.approx(bayesian(3.0, 10.0, 9.0, 3), abs=1e-4)
    assert body["mine"]["stars"] == 5
    assert client.get(f"/api/v1/vote/{tid}").json()["mine"] is None


def test_withdrawing_a_vote(client: TestClient, users: Users, seeded: list[SeededTrack]) -> None:
    who, tid = users.create(), seeded[0].track_id
    _vote(client, who, tid, stars=5)
    assert client.delete(f"/api/v1/vote/{tid}", headers=who.headers).status_code == 204
    assert client.get(f"/api/v1/vote/{tid}").json()["votes"] == 0
    assert client.delete(f"/api/v1/vote/{tid}", headers=who.headers).status_code == 404


def test_one_five_star_vote_does_not_top_the_chart(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    voters = [users.create() for _ in range(12)]
    lone, popular, meh = seeded[0].track_id, seeded[1].track_id, seeded[3].track_id
    _vote(client, voters[0], lone, stars=5)
    for v in voters:
        _vote(client, v, popular, stars=4)
    for v in voters[:6]:
        _vote(client, v, meh, stars=2)
    chart = client.get("/api/v1/top-tracks", params={"period": "all"}).json()
    assert [t["track_id"] for t in chart["items"]] == [popular, lone, meh]
    assert chart["items"][0]["rank"] == 1
    assert chart["items"][0]["votes"] == 12
    assert chart["items"][0]["stars_avg"] == 4.0
    assert chart["prior_votes"] == 10.0
    assert chart["prior_mean"] == pytest.approx((5 + 12 * 4 + 6 * 2) / 19, abs=1e-4)


def test_the_chart_by_genre_and_period(
    client: TestClient, ctx: AppContext, users: Users, seeded: list[SeededTrack]
) -> None:
    who = users.create()
    house = [t for t in seeded if t.genre == "house"]
    techno = [t for t in seeded if t.genre == "techno"]
    _vote(client, who, house[0].track_id, stars=5)
    _vote(client, who, techno[0].track_id, stars=5)
    _vote(client, who, house[1].track_id, stars=4)
    with ctx.db.session() as s:  # one vote from last month
        s.execute(
            update(Vote)
            .where(Vote.track_id == house[1].track_id)
            .values(updated_at=utcnow() - timedelta(days=20))
        )
        s.commit()
    week = client.get("/api/v1/top-tracks", params={"genre": "house", "period": "week"}).json()
    assert [t["track_id"] for t in week["items"]] == [house[0].track_id]
    assert week["genre"] == "house"
    month = client.get("/api/v1/top-tracks", params={"genre": "house", "period": "month"}).json()
    assert [t["track_id"] for t in month["items"]] == [house[0].track_id, house[1].track_id]
    assert {t["genre"] for t in month["items"]} == {"house"}


def test_chart_parameters_are_validated(client: TestClient) -> None:
    assert client.get("/api/v1/top-tracks", params={"period": "decade"}).status_code == 422
    assert client.get("/api/v1/top-tracks", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/top-tracks", params={"genre": "Drop Table"}).status_code == 422


def test_the_chart_is_cached_until_its_ttl(
    make_context: Callable[..., AppContext], seeded: list[SeededTrack]
) -> None:
    ctx = make_context(top_tracks_cache_s=60.0)
    with TestClient(create_app(context=ctx)) as client:
        u = Users(client, ctx).create()
        assert client.get("/api/v1/top-tracks").json()["items"] == []
        client.post(
            "/api/v1/vote", json={"track_id": seeded[0].track_id, "stars": 5}, headers=u.headers
        )
        assert client.get("/api/v1/top-tracks").json()["items"] == []  # cached
        ctx.top_cache.clear()
        assert len(client.get("/api/v1/top-tracks").json()["items"]) == 1


def test_the_hot_path_and_the_route_answer_alike(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    """Plain chart queries are answered before FastAPI's routing
    (serving.hot); anything else reaches the route. Both must agree."""
    from serving.hot import chart_query

    _vote(client, users.create(), seeded[0].track_id, stars=5)
    hot = client.get("/api/v1/top-tracks", params={"genre": "house", "period": "all", "limit": 5})
    # An extra parameter is not understood by the hot path: FastAPI answers.
    routed = client.get(
        "/api/v1/top-tracks", params={"genre": "house", "period": "all", "limit": 5, "x": 1}
    )
    assert hot.status_code == routed.status_code == 200
    strip = lambda body: {k: v for k, v in body.items() if k != "generated_at"}  # noqa: E731
    assert strip(hot.json()) == strip(routed.json())
    assert hot.json()["items"][0]["track_id"] == seeded[0].track_id
    assert hot.headers["x-ratelimit-limit"] and hot.headers["x-frame-options"] == "DENY"
    assert chart_query(b"genre=house&period=all&limit=5") == ("house", "all", 5)
    assert chart_query(b"") == (None, "week", 20)
    for bad in (
        b"limit=0",
        b"limit=101",
        b"limit=x",
        b"period=decade",
        b"genre=A+B",
        b"genre=a&genre=b",
        b"x=1",
    ):
        assert chart_query(bad) is None, bad
    assert client.get("/api/v1/top-tracks", params={"limit": 101}).status_code == 422


def test_a_jwt_vote_is_served_by_the_hot_path_as_the_route_would(
    client: TestClient, ctx: AppContext, users: Users, seeded: list[SeededTrack]
) -> None:
    """The hot path (serving.hot) casts a JWT vote without FastAPI's
    dependencies; a vote with an API key goes through the route. Both
    answer alike, and both commit the vote and its event."""
    from serving.deps import get_optional_principal

    who, track = users.create(), seeded[0]
    r = client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["votes:write"]}, headers=who.headers
    )
    key = r.json()["key"]
    by_route = client.post(
        "/api/v1/vote",
        json={"track_id": seeded[1].track_id, "stars": 3},
        headers={"X-API-Key": key},
    )

    def refuse() -> None:
        raise AssertionError("the route's principal dependency ran")

    client.app.dependency_overrides[get_optional_principal] = refuse  # type: ignore[attr-defined]
    try:
        hot = client.post(
            "/api/v1/vote",
            json={"track_id": track.track_id, "stars": 5, "direction": "up"},
            headers=who.headers,
        )
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert hot.status_code == by_route.status_code == 200, (hot.text, by_route.text)
    assert hot.json().keys() == by_route.json().keys()
    assert hot.json()["stars"] == 5 and hot.json()["direction"] == "up"
    assert hot.headers["content-type"] == by_route.headers["content-type"]
    for name in (
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-content-type-options",
    ):
        assert name in hot.headers, name
    with ctx.db.session() as s:
        row = s.scalar(
            select(Vote).where(Vote.user_id == who.user_id, Vote.track_id == track.track_id)
        )
        assert row is not None and (row.stars, row.direction) == (5, 1)
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "vote")).all()
        assert {e.track_id for e in events} == {track.track_id, seeded[1].track_id}


def test_a_vote_after_logout_is_refused_at_once(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    who = users.create()
    _vote(client, who, seeded[0].track_id, stars=4)  # the principal is now cached
    assert client.post("/api/v1/auth/logout", headers=who.headers).status_code == 200
    r = client.post(
        "/api/v1/vote", json={"track_id": seeded[0].track_id, "stars": 2}, headers=who.headers
    )
    assert r.status_code == 401, r.text
    assert "revoked" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"track_id": ', "application/json", 422),
        (b'{"stars": 9, "track_id": "%s"}', "application/json", 422),
        (b'{"stars": 3, "track_id": "%s"}', "text/plain", 422),
        (b'{"stars": 3, "track_id": "trk_nothing"}', "application/json", 404),
        (b'{"stars": 3, "track_id": "%s"}', "application/json; charset=utf-8", 200),
    ],
)
def test_votes_the_hot_path_declines_get_the_routes_answer(
    client: TestClient,
    users: Users,
    seeded: list[SeededTrack],
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    """The body the hot path read is handed on to the route intact."""
    who = users.create()
    if b"%s" in content:
        content = content % seeded[0].track_id.encode()
    r = client.post(
        "/api/v1/vote", content=content, headers=who.headers | {"Content-Type": content_type}
    )
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
