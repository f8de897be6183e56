"""The PWA: the service worker registers and controls the page, Chromium
finds the app installable (manifest, icons, worker), the app shell works
offline with the offline page for anything else, and the live stream and
the API are never cached."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PageProbe, Stack

pytestmark = pytest.mark.timeout(90)


def test_service_worker_registers_and_the_page_is_installable(
    browser: Any, stack: Stack, tmp_path: Path
) -> None:
    # A profile on disk: Chromium never offers installation in incognito,
    # which every new_context() is.
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, base_url=stack.url
    )
    try:
        page = context.new_page()
        probe = PageProbe(page)
        page.goto("/")
        page.wait_for_function("() => document.documentElement.dataset.sw === 'registered'")
        scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
        assert scope == stack.url + "/"
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [], manifest["errors"]
        assert manifest["url"] == stack.url + "/manifest.webmanifest"
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == [], errors
        # Chromium offers installation; the page keeps the prompt for its button.
        page.wait_for_function(
            "() => document.documentElement.dataset.installable === 'true'", timeout=15_000
        )
        assert page.is_visible("#install")
        page.screenshot(path=str(ARTIFACTS / "installable.png"))
        assert probe.errors == []
    finally:
        context.close()


def test_the_app_shell_works_offline_and_the_stream_is_never_cached(
    probe: PageProbe, stack: Stack
) -> None:
    page = probe.page
    page.goto("/")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now controlled by the worker
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.click("#play")
    page.wait_for_function(
        "() => document.getElementById('audio').currentTime > 0.3", timeout=20_000
    )
    cached: list[str] = page.evaluate(
        """async () => { const out = [];
        for (const name of await caches.keys()) {
          for (const req of await (await caches.open(name)).keys()) out.push(new URL(req.url).pathname);
        } return out; }"""
    )
    assert "/" in cached and "/console" in cached and "/offline" in cached
    assert any(p.startswith("/assets/") and p.endswith(".js") for p in cached)
    live = [p for p in cached if p.startswith(("/hls/", "/stream", "/viz/", "/api/"))]
    assert live == [], live

    page.context.set_offline(True)
    try:
        page.goto("/console")
        assert page.text_content("#gate-h") == "Operator console"
        page.goto("/listen?track=x")
        assert page.is_visible("#play")
        page.goto("/no-such-page")
        assert page.text_content("h1") == "You are offline"
    finally:
        page.context.set_offline(False)


def test_embed_is_the_only_page_another_site_may_frame(browser: Any, stack: Stack) -> None:
    for path in ("/", "/console", "/offline"):
        r = stack.get(path)
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    r = stack.get("/embed")
    assert "x-frame-options" not in r.headers
    assert "frame-ancestors *" in r.headers["content-security-policy"]
    context = browser.new_context()
    page = context.new_page()
    try:
        # Another site, on its own loopback port, frames the player.
        host = (
            f'<!doctype html><title>A blog</title><iframe id="f" src="{stack.url}/embed" '
            'width="480" height="180" title="SonicForge radio"></iframe>'
        ).encode()

        class Blog(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(host)

            def log_message(self, *args: Any) -> None:
                pass

        blog = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blog)
        threading.Thread(target=blog.serve_forever, daemon=True).start()
        page.goto(f"http://127.0.0.1:{blog.server_address[1]}/post")
        frame = page.frame_locator("#f")
        frame.locator("#np-title").wait_for()
        assert frame.locator("#play").is_visible()
        blog.shutdown()
    finally:
        context.close()
