"""How the API serves the built pages (no browser): the client's routes
are the API's, each page carries a CSP of what it uses, files are cached
by their fingerprints and revalidated by ETag, compressed, and refused
clearly when the build is missing or a name is unknown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.middleware import RequestContextMiddleware
from serving.web import EMBED_CSP, PAGE_CSP, WEB_DIR, create_web_router
from sonicforge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
API_TS = ROOT / "web" / "src" / "lib" / "api.ts"


def client_routes(block: str) -> dict[str, str]:
    """The ``name: "METHOD /path"`` entries of one const object in api.ts."""
    text = API_TS.read_text()
    body = text.split(f"export const {block} = {{", 1)[1].split("} as const", 1)[0]
    return dict(re.findall(r'(\w+): "([A-Z]+ /[^"]*)"', body))


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from serving.app import create_app

    var = tmp_path_factory.mktemp("web-openapi")
    settings = Settings(var_dir=var, environment="test", jwt_secret="s" * 48)
    return create_app(settings).openapi()


def operations(spec: dict[str, Any]) -> set[str]:
    norm = {
        f"{m.upper()} {re.sub(r'{[^}]*}', '{}', p)}"
        for p, item in spec["paths"].items()
        for m in item
    }
    return norm


def test_every_route_the_pages_call_is_in_the_openapi_document(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    routes = client_routes("ROUTES")
    assert len(routes) >= 20
    missing = {
        n: r for n, r in routes.items() if re.sub(r"{[^}]*}", "{}", r) not in ops | {"GET /ready"}
    }
    assert missing == {}, f"api.ts calls routes the API does not document: {missing}"


def test_optional_routes_that_exist_have_the_method_the_pages_use(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    paths = {op.split(" ", 1)[1] for op in ops}
    for name, r in client_routes("OPTIONAL_ROUTES").items():
        method, path = r.split(" ", 1)
        norm = re.sub(r"{[^}]*}", "{}", path)
        if norm in paths:
            assert f"{method} {norm}" in ops, f"{name}: {r} exists with another method"


def test_web_config_lists_the_operations_and_the_ui_links(tmp_path: Path) -> None:
    from serving.app import create_app

    settings = Settings(var_dir=tmp_path, environment="test", jwt_secret="s" * 48)
    with TestClient(create_app(settings)) as client:
        r = client.get("/api/v1/web/config")
    assert r.status_code == 200
    body = r.json()
    assert body["dagster_url"] == f"http://{settings.run_host}:{settings.dagster_ui_port}"
    assert body["mlflow_url"] == f"http://{settings.run_host}:{settings.mlflow_ui_port}"
    routes = set(body["routes"])
    assert {"GET /api/v1/stream/status", "GET /stream/events", "POST /api/v1/vote"} <= routes
    assert "GET /api/v1/nothing" not in routes


def test_the_build_has_no_inline_script_or_style() -> None:
    pages = sorted(WEB_DIR.glob("*.html"))
    assert {p.name for p in pages} == {"index.html", "embed.html", "console.html", "offline.html"}
    for page in pages:
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page.name
        assert " style=" not in html and "<style" not in html, page.name
        assert re.search(r'<script type="module" crossorigin src="/assets/[\w-]+\.js">', html)


@pytest.fixture
def web() -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(create_web_router())
    app.add_middleware(RequestContextMiddleware)
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/listen", "/console", "/offline", "/embed"])
def test_pages_carry_their_own_csp(web: TestClient, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert csp == (EMBED_CSP if path == "/embed" else PAGE_CSP)
    assert r.headers.get_list("content-security-policy") == [csp]  # the API's is not added
    for rule in ("script-src 'self'", "media-src 'self' blob:", "connect-src 'self'"):
        assert rule in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert ("x-frame-options" in r.headers) is (path != "/embed")
    assert r.headers["cache-control"] == "no-cache"


def test_assets_are_immutable_compressed_and_revalidated(web: TestClient) -> None:
    index = web.get("/").text
    script = re.search(r'src="(/assets/[^"]+\.js)"', index)
    assert script
    r = web.get(script.group(1), headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    again = web.get(script.group(1), headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    head = web.head("/")
    assert (
        head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    )


def test_worker_and_manifest(web: TestClient) -> None:
    sw = web.get("/sw.js")
    assert sw.status_code == 200 and sw.headers["cache-control"] == "no-cache"
    assert sw.headers["content-type"].startswith("text/javascript")
    assert "__SHELL__" not in sw.text and "sonicforge-shell-" in sw.text
    manifest = web.get("/manifest.webmanifest")
    assert manifest.headers["content-type"] == "application/manifest+json"
    body = manifest.json()
    assert body["start_url"].startswith("/") and body["display"] == "standalone"
    sizes = {i["sizes"] for i in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in body["icons"]:
        assert web.get(icon["src"]).status_code == 200, icon


@pytest.mark.parametrize(
    "path", ["/assets/nope.js", "/icons/../../pyproject.toml", "/assets/%2e%2e%2fweb.py"]
)
def test_unknown_files_are_404_and_never_read_from_disk(web: TestClient, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 404
    assert "pyproject" not in r.text and "import" not in r.text


def test_a_missing_build_says_how_to_make_it(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(create_web_router(tmp_path / "nothing"))
    r = TestClient(app).get("/")
    assert r.status_code == 503
    assert "make web" in r.json()["error"]["message"]
