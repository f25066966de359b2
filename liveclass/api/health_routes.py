"""Liveness and readiness probes for process supervisors and load balancers."""

from __future__ import annotations

from aiohttp import web
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from liveclass.api.routing import PUBLIC, RouteTable
from liveclass.api.schemas import Health
from liveclass.appkeys import DB, SETTINGS
from liveclass.db import alembic_config
from liveclass.live import ROUTER
from signaling.protocol import RoomError

routes = RouteTable("health")


@routes.route("GET", "/healthz", summary="The process is up", access=PUBLIC, response=Health)
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.route(
    "GET",
    "/readyz",
    summary="The store is reachable and its schema is current",
    access=PUBLIC,
    response=Health,
    other_statuses={503: "Not ready: the store or (with several nodes) Redis is unreachable, or the schema is old"},
)
async def readyz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    head = ScriptDirectory.from_config(alembic_config(settings.effective_database_url)).get_current_head()
    try:
        async with request.app[DB]() as db:
            connection = await db.connection()
            current = await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    except Exception:  # noqa: BLE001 - any failure to reach the store means "not ready"
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    if current != head:
        return web.json_response(
            {"status": "unavailable", "database": f"schema {current}, expected {head}: run `liveclass db upgrade`"},
            status=503,
        )
    try:
        await request.app[ROUTER].check()
    except RoomError:
        return web.json_response(
            {"status": "unavailable", "database": "ok", "cluster": "Redis unreachable"}, status=503
        )
    return web.json_response({"status": "ready", "database": "ok", "node": settings.effective_node_id})
