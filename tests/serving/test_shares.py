"""Share codes, share links with UTM parameters, and clicks."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.context import AppContext
from serving.db.models import OutboxEvent
from tests.serving.conftest import Users
from tests.serving.factories import SeededTrack


def test_create_a_share(client: TestClient, users: Users, seeded: list[SeededTrack]) -> None:
    who = users.create()
    r = client.post("/api/v1/share", json={"track_id": seeded[0].track_id}, headers=who.headers)
    assert r.status_code == 201
    body = r.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", body["code"])
    assert body["track_id"] == seeded[0].track_id
    assert body["landing_url"] == (
        f"https://radio.example.com/listen?track={seeded[0].track_id}&ref={body['code']}"
    )
    codes = {
        client.post(
            "/api/v1/share", json={"track_id": seeded[0].track_id}, headers=who.headers
        ).json()["code"]
        for _ in range(5)
    }
    assert len(codes) == 5


def test_sharing_needs_an_account_and_a_real_track(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    assert client.post("/api/v1/share", json={"track_id": seeded[0].track_id}).status_code == 401
    r = client.post(
        "/api/v1/share", json={"track_id": "trk_missing"}, headers=users.create().headers
    )
    assert r.status_code == 404


def test_open_a_share_gives_links_for_every_network(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    track = seeded[0]
    code = client.post(
        "/api/v1/share", json={"track_id": track.track_id}, headers=users.create().headers
    ).json()["code"]
    r = client.get(f"/api/v1/share/{code}")
    assert r.status_code == 200
    body = r.json()
    assert body["track"]["track_id"] == track.track_id
    assert body["track"]["genre"] == track.genre
    assert body["clicks"] == 1
    urls = body["share_urls"]
    assert set(urls) == {"x", "facebook", "whatsapp", "telegram", "reddit", "linkedin", "email"}
    hosts = {k: urlparse(v).netloc for k, v in urls.items()}
    assert hosts == {"x": "twitter.com", "facebook": "www.facebook.com", "whatsapp": "wa.me",
                     "telegram": "t.me", "reddit": "www.reddit.com",
                     "linkedin": "www.linkedin.com", "email": ""}  # fmt: skip
    assert urls["email"].startswith("mailto:?subject=")
    for network, url in urls.items():
        landing = re.search(r"https%3A%2F%2Fradio\.example\.com%2Flisten%3F[^&\s]*", url)
        assert landing is not None, network
        params = parse_qs(urlparse(unquote(landing.group(0))).query)
        assert params["utm_source"] == [network]
        assert params["utm_medium"] == ["email" if network == "email" else "social"]
        assert params["utm_campaign"] == ["track_share"]
        assert params["utm_content"] == [code]
        assert params["ref"] == [code]


def test_each_open_counts_a_click_into_the_outbox(
    client: TestClient, ctx: AppContext, users: Users, seeded: list[SeededTrack]
) -> None:
    code = client.post(
        "/api/v1/share", json={"track_id": seeded[0].track_id}, headers=users.create().headers
    ).json()["code"]
    client.get(
        f"/api/v1/share/{code}", params={"utm_source": "x"}, headers={"Referer": "https://t.co/abc"}
    )
    assert client.get(f"/api/v1/share/{code}").json()["clicks"] == 2
    with ctx.db.session() as s:
        clicks = s.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.type == "share_click")
            .order_by(OutboxEvent.event_id)
        ).all()
    assert [c.properties for c in clicks] == [
        {"code": code, "utm_source": "x", "referrer": "https://t.co/abc"},
        {"code": code, "utm_source": None, "referrer": None},
    ]
    assert {c.track_id for c in clicks} == {seeded[0].track_id}
    assert all(c.request_id for c in clicks)


def test_unknown_and_malformed_codes(client: TestClient) -> None:
    assert client.get("/api/v1/share/AAAAAAAAAAAA").status_code == 404
    assert client.get("/api/v1/share/x").status_code == 422
    assert (
        client.get("/api/v1/share/AAAAAAAAAAAA", params={"utm_source": "<script>"}).status_code
        == 422
    )
