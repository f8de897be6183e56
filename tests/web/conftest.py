"""Fixtures of the browser tests: the real stack on loopback
(``tests.web.stack``: the API with the streamer inside, as ``make run``
starts it without Redis) and Debian's Chromium driven by Playwright from
PyPI.

Chromium and Playwright are the tests' own requirements: without
``/usr/bin/chromium`` (``.ci/run`` installs it with apt) or the package,
these tests skip and say why. Screenshots of every page land in
``tests/web/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.stack import CHROMIUM, CHROMIUM_ARGS, PASSWORD, ROOT, Stack, start_stack

__all__ = ["ARTIFACTS", "CHROMIUM", "CHROMIUM_ARGS", "PASSWORD", "PageProbe", "Stack", "axe_source"]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium with apt")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (the test extra has it)")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _chromium_or_skip()
    if not (ROOT / "serving" / "webui" / "index.html").exists():
        pytest.fail("serving/webui is not built: run `make web`")
    s = start_stack(tmp_path_factory.mktemp("web-stack"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def browser(stack: Stack) -> Iterator[Any]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageProbe:
    """A page with its console errors and failed requests recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


@pytest.fixture
def probe(browser: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[PageProbe]:
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page = context.new_page()
    p = PageProbe(page)
    yield p
    ARTIFACTS.mkdir(exist_ok=True)
    with contextlib.suppress(Exception):  # a crashed page still lets the test report
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def axe_source() -> str:
    path = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        pytest.skip("axe-core is not installed: run `make web` (npm ci in web/)")
    return path.read_text()
