"""The web pages: the listener player (``/``, ``/listen``), the embeddable
player (``/embed``), the operator console (``/console``), the offline page,
the PWA manifest and service worker, and the fingerprinted assets.

The files are built from ``web/`` by Vite (``make web``) into
``serving/webui/`` and shipped inside the Python package, so serving them
needs no Node.js. They are read into memory once, with a gzip copy of each
compressible file; fingerprinted assets are cached for a year, the pages
and the service worker are revalidated (ETag) on every load.

Each page carries its own Content-Security-Policy, listing only what it
uses: scripts, styles, fonts and manifests from this origin, no inline
code; audio, XHR, WebSocket and EventSource to this origin (``blob:`` media
for Media Source Extensions, which hls.js feeds). The embeddable player is
the only page another site may frame.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from serving.deps import context_of
from serving.schemas.common import Schema, error_responses

WEB_DIR = Path(__file__).resolve().parent / "webui"

_BASE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; "
    "manifest-src 'self'; base-uri 'none'; form-action 'self'"
)
PAGE_CSP = _BASE_CSP + "; frame-ancestors 'none'"
# Any site may put the embeddable player in an iframe (as AzuraCast's widgets).
EMBED_CSP = _BASE_CSP + "; frame-ancestors *"
WORKER_CSP = "default-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

PAGES = {
    "/": "index.html",
    "/listen": "index.html",
    "/embed": "embed.html",
    "/console": "console.html",
    "/offline": "offline.html",
}
COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".json", ".webmanifest", ".map", ".txt")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class WebFile:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    cache_control: str
    csp: str


def _media_type(name: str) -> str:
    if name.endswith(".webmanifest"):
        return "application/manifest+json"
    if name.endswith(".js"):
        return "text/javascript; charset=utf-8"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")


def _csp_for(name: str) -> str:
    if name == "embed.html":
        return EMBED_CSP
    if name == "sw.js":
        return WORKER_CSP
    return PAGE_CSP


def load_files(root: Path) -> dict[str, WebFile]:
    """Every file under ``root``, keyed by its path relative to it."""
    files: dict[str, WebFile] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        body = path.read_bytes()
        packed = gzip.compress(body, 9, mtime=0) if name.endswith(COMPRESSIBLE) else None
        files[name] = WebFile(
            body=body,
            gzipped=packed if packed is not None and len(packed) < len(body) else None,
            media_type=_media_type(name),
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            cache_control=IMMUTABLE if name.startswith("assets/") else REVALIDATE,
            csp=_csp_for(name),
        )
    return files


class WebUnavailable(Response):
    def __init__(self) -> None:
        super().__init__(
            b'{"error":{"code":"unavailable","message":"the web UI is not built into this '
            b'install; run `make web` (it builds web/ into serving/webui/)","request_id":null,'
            b'"details":[]}}',
            status_code=503,
            media_type="application/json",
        )


def _respond(request: Request, item: WebFile) -> Response:
    headers = {
        "ETag": item.etag,
        "Cache-Control": item.cache_control,
        "Content-Security-Policy": item.csp,
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == item.etag:
        return Response(status_code=304, headers=headers)
    body = item.body
    if item.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = item.gzipped
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=item.media_type)
    return Response(body, headers=headers, media_type=item.media_type)


def _not_found() -> Response:
    return Response(
        b'{"error":{"code":"not_found","message":"no such web file","request_id":null,'
        b'"details":[]}}',
        status_code=404,
        media_type="application/json",
    )


class WebConfig(Schema):
    """What the pages need to know about this deployment."""

    dagster_url: str = Field(examples=["http://127.0.0.1:3000"])
    mlflow_url: str = Field(examples=["http://127.0.0.1:5000"])
    docs_url: str = Field(examples=["/docs"])
    web_base_url: str = Field(examples=["http://127.0.0.1:8000"])
    routes: list[str] = Field(
        description="Every API operation this deployment serves, as 'METHOD /path': the "
        "pages use an optional feature (analytics, payments, recommendations) only when "
        "its route is here.",
        examples=[["GET /api/v1/stream/status", "POST /api/v1/vote"]],
    )


def api_routes(app: Any) -> list[str]:
    """Every documented operation, as 'METHOD /path' (from the app's OpenAPI
    document, which FastAPI builds once)."""
    paths = app.openapi().get("paths", {})
    return sorted(f"{method.upper()} {path}" for path, item in paths.items() for method in item)


def create_web_router(root: Path = WEB_DIR) -> APIRouter:
    """The pages and their files, read from ``root`` once."""
    files = load_files(root)
    router = APIRouter()

    def page(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def read_page(request: Request) -> Response:
            item = files.get(name)
            return WebUnavailable() if item is None else _respond(request, item)

        return read_page

    for path, name in PAGES.items():
        router.add_api_route(
            path, page(name), methods=["GET", "HEAD"], include_in_schema=False, name=f"web:{path}"
        )

    for path, name in (
        ("/sw.js", "sw.js"),
        ("/manifest.webmanifest", "manifest.webmanifest"),
        ("/favicon.ico", "icons/favicon.ico"),
        ("/robots.txt", "robots.txt"),
    ):
        router.add_api_route(
            path, page(name), methods=["GET", "HEAD"], include_in_schema=False, name=f"web:{path}"
        )

    def folder_files(folder: str) -> Callable[[Request, str], Awaitable[Response]]:
        async def read_web_file(request: Request, name: str) -> Response:
            # Looked up among the files read at start-up: no path reaches the disk.
            item = files.get(f"{folder}/{name}")
            if item is None:
                return _not_found()
            return _respond(request, item)

        return read_web_file

    for folder in ("assets", "icons"):
        router.add_api_route(
            f"/{folder}/{{name}}",
            folder_files(folder),
            methods=["GET", "HEAD"],
            include_in_schema=False,
            name=f"web:{folder}",
        )

    routes_cache: list[str] = []

    @router.get(
        "/api/v1/web/config",
        response_model=WebConfig,
        tags=["web"],
        responses=error_responses(429),
        summary="What the web pages need: links to the Dagster and MLflow UIs, and the "
        "API operations this deployment serves",
    )
    def read_web_config(request: Request) -> WebConfig:
        s = context_of(request).settings
        host = s.run_host
        tracking = s.resolved_mlflow_tracking_uri
        if not routes_cache:
            routes_cache.extend(api_routes(request.app))
        return WebConfig(
            dagster_url=f"http://{host}:{s.dagster_ui_port}",
            mlflow_url=tracking
            if tracking.startswith(("http://", "https://"))
            else f"http://{host}:{s.mlflow_ui_port}",
            docs_url="/docs",
            web_base_url=s.web_base_url,
            routes=routes_cache,
        )

    return router
