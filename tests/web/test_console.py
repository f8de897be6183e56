"""The operator console against the real stack: an operator signs in,
reorders the queue by drag and drop and skips, and the API shows both at
once; a listener is refused, by the page and by the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import PASSWORD, PageProbe, Stack

pytestmark = pytest.mark.timeout(120)


def sign_in(page: Any, email: str) -> None:
    page.goto("/console")
    page.click("#gate-signin")
    page.fill("#auth-email", email)
    page.fill("#auth-password", PASSWORD)
    page.click("#auth-submit")


def queue_tracks(stack: Stack, headers: dict[str, str]) -> list[str]:
    r = stack.get("/api/v1/stream/queue", headers=headers)
    assert r.status_code == 200
    return [e["track_id"] for e in r.json()["items"]]


def test_operator_reorders_by_drag_and_skips(probe: PageProbe, stack: Stack) -> None:
    page = probe.page
    operator = stack.accounts.setdefault("operator", stack.account("operator"))
    h = operator.headers
    for entry in stack.get("/api/v1/stream/queue", headers=h).json()["items"]:
        httpx.delete(f"{stack.url}/api/v1/stream/queue/{entry['entry_id']}", headers=h)
    on_air = stack.status()["now_playing"]["track_id"]
    picks = [t for t in stack.track_ids if t != on_air][:3]
    for tid in picks:
        assert (
            stack.post("/api/v1/stream/queue", json={"track_id": tid}, headers=h).status_code == 201
        )

    sign_in(page, operator.email)
    page.wait_for_function("() => document.documentElement.dataset.console === 'open'")
    page.wait_for_function("() => document.querySelectorAll('#queue [data-entry-id]').length === 3")
    rows = page.locator("#queue [data-entry-id]")
    assert [rows.nth(i).get_attribute("data-track-id") for i in range(3)] == picks

    # Drag the last row above the first.
    rows.nth(2).drag_to(rows.nth(0), target_position={"x": 20, "y": 2})
    wanted = [picks[2], picks[0], picks[1]]
    page.wait_for_function(
        "(w) => Array.from(document.querySelectorAll('#queue [data-entry-id]'))"
        ".map(r => r.dataset.trackId).join() === w.join()",
        arg=wanted,
    )
    assert queue_tracks(stack, h) == wanted  # in the API at once

    # Keyboard path too: move the second row down.
    page.click(f"#queue [data-track-id='{picks[0]}'] >> text=Move down")
    wanted = [picks[2], picks[1], picks[0]]
    page.wait_for_function(
        "(w) => Array.from(document.querySelectorAll('#queue [data-entry-id]'))"
        ".map(r => r.dataset.trackId).join() === w.join()",
        arg=wanted,
    )
    assert queue_tracks(stack, h) == wanted

    page.click("#ctl-skip")
    page.wait_for_function(
        "() => document.getElementById('control-status').textContent.includes('skip sent')"
    )
    # The skip takes the head of the queue on air, and the console shows it.
    stack.wait_for(
        "the queued track on air", lambda: stack.status()["now_playing"]["track_id"] == picks[2]
    )
    page.wait_for_function(
        "(t) => document.getElementById('np-title').dataset.trackId === t",
        arg=picks[2],
        timeout=15_000,
    )
    page.wait_for_function("() => document.querySelectorAll('#queue [data-entry-id]').length === 2")
    assert page.locator("#outputs [data-output]").count() >= 2  # hls, mp3 (and viz) report

    # KPIs and experiments from the analytics endpoints, where deployed.
    if "GET /api/v1/analytics/dashboard" in stack.get("/api/v1/web/config").json()["routes"]:
        page.wait_for_function(
            "() => document.getElementById('kpis').textContent.includes('Pass rate')"
        )
        page.wait_for_selector("#experiments [data-experiment]")
    # A batch on demand: this stack has no Dagster, and the console says so.
    page.click("#batch-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('batch-status').textContent.includes('Not launched')"
    )
    assert "Dagster" in (page.text_content("#batch-status") or "")
    # The browser logs the 502 of that launch; nothing else may fail.
    assert [e for e in probe.errors if "502" not in e] == []


def test_a_listener_is_refused_the_console(probe: PageProbe, stack: Stack) -> None:
    page = probe.page
    listener = stack.account("listener")
    sign_in(page, listener.email)
    page.wait_for_function("() => document.documentElement.dataset.console === 'refused'")
    assert page.is_hidden("#console")
    assert "operators and admins" in (page.text_content("#gate-text") or "")
    r = stack.post("/api/v1/stream/control", json={"command": "skip"}, headers=listener.headers)
    assert r.status_code == 403
    assert probe.errors == []
