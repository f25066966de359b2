"""The aiohttp application: middlewares, routes, the store, the live room, the web client."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from liveclass.api import (
    archive_routes,
    auth_routes,
    export_routes,
    handouts_routes,
    health_routes,
    nodes_routes,
    periods_routes,
    questions_routes,
    records_routes,
    retention_routes,
    share_routes,
    users_routes,
)
from liveclass.access_log import redact
from liveclass.api.openapi import build_openapi
from liveclass.api.routing import add_routes
from liveclass.appkeys import DB, SETTINGS
from liveclass.archive.retention import retention_ctx
from liveclass.auth import auth_middleware
from liveclass.config import Settings
from liveclass.db import create_engine, session_factory
from liveclass.errors import ApiError
from liveclass.live import setup_live
from liveclass.liveness import liveness_ctx
from liveclass.logs import request_id_middleware
from liveclass.metrics import setup_metrics
from liveclass.passwords import prepare_dummy_hash

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
WEB_CLIENT_DIR = Path(__file__).resolve().parent.parent / "web_client"
SOCKETIO_CLIENT_DIR = WEB_CLIENT_DIR.parent / "node_modules" / "socket.io-client" / "dist"
# The page loads only its own scripts and styles and talks only to its own server.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every refusal and failure answers in the error shape of docs/api.md; nothing leaks a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        return web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, redact(request.path))
        return web.json_response(
            {"error": {"code": "internal_error", "message": "Something went wrong on the server; it has been logged."}},
            status=500,
        )


@web.middleware
async def security_headers_middleware(request: web.Request, handler):
    """Every answer carries them, refusals and 404s of pages too."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(request, exc.headers)
        raise
    _secure(request, response.headers)
    return response


def _secure(request: web.Request, headers) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")  # with CSP frame-ancestors, for older browsers
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    else:
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)


def create_app(settings: Settings) -> web.Application:
    """`settings` must have been through `prepare_data_dir` (secret key resolved), and its store migrated
    (`liveclass serve` runs the migrations before it builds the app)."""
    app = web.Application(
        middlewares=[request_id_middleware, security_headers_middleware, error_middleware, auth_middleware],
        client_max_size=2 * 1024 * 1024,
    )  # JSON bodies; uploads are streamed
    app[SETTINGS] = settings
    engine = create_engine(settings.effective_database_url)
    app[DB] = session_factory(engine)

    async def store_ctx(app: web.Application):  # first in, last out: the store outlives what is added after it
        yield
        await engine.dispose()

    app.cleanup_ctx.append(store_ctx)

    async def password_check_ready(app: web.Application) -> None:
        await prepare_dummy_hash()

    app.on_startup.append(password_check_ready)
    setup_live(app, settings, app[DB])
    app.cleanup_ctx.append(liveness_ctx)  # heartbeat, a crash's open attendance closed, forgotten periods
    app.cleanup_ctx.append(retention_ctx)  # the daily retention run (after the store is migrated)

    routes = add_routes(
        app,
        API_PREFIX,
        [
            auth_routes.routes,
            users_routes.routes,
            periods_routes.routes,
            handouts_routes.routes,
            records_routes.routes,
            archive_routes.routes,
            share_routes.routes,
            export_routes.routes,
            retention_routes.routes,
            nodes_routes.routes,
            questions_routes.routes,
        ],
    )
    routes += add_routes(app, "", [health_routes.routes])
    add_routes(app, "/api", [questions_routes.image_routes])  # the bank's image links: /api/question-images/…
    spec: dict[str, Any] = {}  # built on its first request: most of create_app's time went into it

    async def openapi(request: web.Request) -> web.Response:
        if not spec:
            spec.update(build_openapi(routes, API_PREFIX))
        return web.json_response(spec)

    app.router.add_get(API_PREFIX + "/openapi.json", openapi)
    setup_metrics(app)
    if (WEB_CLIENT_DIR / "index.html").exists():

        async def index(request: web.Request) -> web.FileResponse:
            return web.FileResponse(WEB_CLIENT_DIR / "index.html")

        app.router.add_get("/", index)
        if SOCKETIO_CLIENT_DIR.exists():  # installed by `make run` (npm install)
            app.router.add_static("/static/vendor/socket.io/", SOCKETIO_CLIENT_DIR)
        app.router.add_static("/static/", WEB_CLIENT_DIR, follow_symlinks=False)
    return app
