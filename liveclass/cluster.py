"""How the HTTP API reaches live rooms: through the router only (signaling/router.py), on any node.

The router answers a refusal with a RoomError; here it becomes the API's error: a room that is not open
is a 409, a cluster that cannot host or reach the room right now a 503 the client retries.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from liveclass.appkeys import SETTINGS
from liveclass.errors import ApiError
from liveclass.live import ROUTER, SOCKETIO_NAMESPACE, SOCKETIO_PATH
from signaling.protocol import RoomError
from signaling.router import NodeInfo

_UNAVAILABLE = {"no_node", "node_unavailable"}
log = logging.getLogger(__name__)


def api_error(exc: RoomError) -> ApiError:
    if exc.code in _UNAVAILABLE:
        return ApiError(503, exc.code, exc.message, headers={"Retry-After": "2"})
    if exc.code == "unknown_node":
        return ApiError(404, "not_found", exc.message)
    return ApiError(409, exc.code, exc.message)


async def place(request: web.Request, session_id: int) -> NodeInfo:
    """The node that hosts the session (placing it on the least-loaded live node if it has none)."""
    try:
        return await request.app[ROUTER].place(session_id)
    except RoomError as exc:
        raise api_error(exc) from None


async def room_command(request: web.Request, session_id: int, name: str, **args: Any) -> Any:
    """Run a command in the session's room, on whichever node hosts it."""
    try:
        return await request.app[ROUTER].command(session_id, name, **args)
    except RoomError as exc:
        raise api_error(exc) from None


async def drop_user_everywhere(request: web.Request, user_id: int, reason: str) -> None:
    """The account's live connections close on every node (logout, deactivation). The account change is
    stored already: when the nodes cannot be reached it stands, only the open connection stays."""
    try:
        await request.app[ROUTER].command_all("drop_user", user_id=user_id, reason=reason)
    except RoomError as exc:
        log.warning("user %s (%s): live connections not closed: %s", user_id, reason, exc.message)


async def drop_user_from_sessions(request: web.Request, user_id: int, session_ids: list[int], reason: str) -> None:
    """The account's connections to these sessions' rooms close (e.g. it was removed from their class)."""
    for session_id in session_ids:
        try:
            await request.app[ROUTER].command(session_id, "drop_user", user_id=user_id, reason=reason)
        except RoomError as exc:
            log.warning("user %s (%s): not taken out of session %s: %s", user_id, reason, session_id, exc.message)


def connect_info(request: web.Request, node: NodeInfo) -> dict[str, str]:
    """Where a client opens the node's Socket.IO: the origin, and the path under the node's base URL
    (a reverse proxy may route /node/2/socket.io/ to the second node)."""
    base = node.url or request.app[SETTINGS].public_url.rstrip("/") or f"{request.scheme}://{request.host}"
    parts = urlsplit(base)
    return {
        "url": f"{parts.scheme}://{parts.netloc}",
        "socketio_path": parts.path.rstrip("/") + SOCKETIO_PATH,
        "namespace": SOCKETIO_NAMESPACE,
        "node": node.node_id,
    }
