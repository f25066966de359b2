"""The cluster's nodes (Máy chủ): their state and load, and draining one (admins only)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from liveclass import cluster
from liveclass.api.routing import RouteTable, dump
from liveclass.api.work import unit_of_work
from liveclass.live import ROUTER
from signaling.protocol import RoomError

routes = RouteTable("nodes")
ADMIN = {"admin"}


class NodeOut(BaseModel):
    node_id: str
    url: str  # where clients reach its Socket.IO ("": the server's own address)
    state: str  # live | draining | dead
    started_at: float  # Unix time
    heartbeat_at: float  # Unix time of its last heartbeat
    rooms: int
    participants: int  # connected people in its rooms
    cpu: float  # share of one core its process used since the heartbeat before
    sessions: list[int]  # the sessions placed on it


@routes.route(
    "GET",
    "/nodes",
    summary="The nodes that run live rooms, with their state and load",
    access=ADMIN,
    response=NodeOut,
    many=True,
)
async def list_nodes(request: web.Request) -> web.Response:
    return dump([NodeOut(**node.view()) for node in await request.app[ROUTER].nodes()])


@routes.route(
    "POST",
    "/nodes/{node_id}/drain",
    summary="Drain a node: no new periods go to it, its rooms move "
    "to the other nodes (everyone reconnects without the lobby), then it exits",
    access=ADMIN,
    response=NodeOut,
    status=202,
    other_statuses={404: "No such live node", 409: "No other live node could take its rooms"},
)
async def drain_node(request: web.Request) -> web.Response:
    node_id = request.match_info["node_id"]
    try:
        node = await request.app[ROUTER].drain(node_id)
    except RoomError as exc:
        raise cluster.api_error(exc) from None
    async with unit_of_work(request) as work:
        work.audit("node_drained", target=f"node:{node_id}")
    return dump(NodeOut(**node.view()), status=202)
