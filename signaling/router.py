"""The one seam between the application and the live rooms: which node hosts which session, and
commands to a room wherever it lives.

Two implementations of one small interface, chosen once at start (LiveKit's Router / LocalRouter /
RedisRouter is the model): `LocalRouter` is a single process, today's embedded default; `RedisRouter`
(signaling/redis_router.py) is many processes on one machine or many, coordinated through Redis.
The HTTP API never touches a room: it asks the router to place a session, to tell it where a session
lives, or to run a command in a room and answer. The node that hosts the room runs every command
(`NodeHandler.run_command`, signaling/server.py), so room logic always runs on the owning node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, AsyncIterator, Callable, Protocol

from signaling.protocol import RoomError

LIVE, DRAINING, DEAD = "live", "draining", "dead"


@dataclass
class NodeInfo:
    node_id: str
    url: str  # the base URL clients use for this node's Socket.IO ("": the URL the client used)
    state: str = LIVE  # live | draining | dead
    started_at: float = field(default_factory=time.time)
    heartbeat_at: float = field(default_factory=time.time)
    rooms: int = 0
    participants: int = 0
    cpu: float = 0.0  # share of one core used by the node's process since the last heartbeat
    sessions: list[int] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return asdict(self)


class NodeHandler(Protocol):  # signaling.server.LiveServer, as a router uses it
    async def run_command(self, name: str, args: dict[str, Any]) -> Any: ...
    def load(self) -> dict[str, int]: ...
    def live_sessions(self) -> list[int]: ...


class CpuMeter:
    """The process's CPU use between two readings, as a share of one core."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), time.process_time())

    def read(self) -> float:
        now = (time.monotonic(), time.process_time())
        wall, cpu = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        return round(cpu / wall, 3) if wall > 0 else 0.0


class Router(ABC):
    """Placement of sessions on nodes and commands to their rooms."""

    def __init__(self, node_id: str, url: str):
        self.node_id = node_id
        self.url = url
        self.handler: NodeHandler | None = None
        self.draining = False
        self.started_at = time.time()
        self._cpu = CpuMeter()

    def bind(self, handler: NodeHandler) -> None:
        """The live server of this node: it runs the commands addressed to its rooms."""
        self.handler = handler

    @property
    def bound(self) -> NodeHandler:
        """The live server of this node, to run a command here (bind() comes first)."""
        assert self.handler is not None, "no live server bound to this router"
        return self.handler

    def self_info(self) -> NodeInfo:
        load = self.handler.load() if self.handler else {"rooms": 0, "participants": 0}
        return NodeInfo(
            self.node_id,
            self.url,
            DRAINING if self.draining else LIVE,
            started_at=self.started_at,
            rooms=load["rooms"],
            participants=load["participants"],
            cpu=self._cpu.read(),
            sessions=self.handler.live_sessions() if self.handler else [],
        )

    async def start(self) -> None:
        """Register this node and start its heartbeat."""

    async def check(self) -> None:
        """Raise RoomError if the cluster cannot be reached (readiness)."""

    async def close(self) -> None:
        """Leave the cluster (after the rooms have moved or closed)."""

    @property
    def alone(self) -> bool:
        """Is this node the whole cluster (every session is its own)?"""
        return False

    async def begin_drain(self) -> None:
        """This node takes no new sessions from now on."""
        self.draining = True

    async def unplace(self, session_id: int) -> None:
        """This node no longer hosts the session (it moved the room away); its saved state stays."""

    @property
    def moves_rooms(self) -> bool:
        """On shutdown, are rooms handed to another node (True) or closed for good (False)?"""
        return False

    @abstractmethod
    async def place(self, session_id: int) -> NodeInfo:
        """The node that hosts the session, placing it on the least-loaded live node if it has none
        or its node is dead (the new node then takes the room over)."""

    @abstractmethod
    async def owner(self, session_id: int) -> NodeInfo | None:
        """The node the session is placed on (None: nowhere), without placing it."""

    @abstractmethod
    async def release(self, session_id: int) -> None:
        """The session's room ended or moved away: forget its placement and its saved state."""

    @abstractmethod
    async def command(self, session_id: int, name: str, **args: Any) -> Any:
        """Run a command in the session's room on the node that hosts it; its answer, or RoomError."""

    @abstractmethod
    async def command_all(self, name: str, **args: Any) -> list[Any]:
        """Run a command on every live node (e.g. drop an account's sockets); their answers."""

    @abstractmethod
    async def nodes(self) -> list[NodeInfo]:
        """Every known node with its state and load."""

    @abstractmethod
    async def drain(self, node_id: str) -> NodeInfo:
        """Stop placing sessions on the node and move its rooms to the others; then it exits."""

    @abstractmethod
    def exclusive(self, name: str, seconds: float) -> contextlib.AbstractAsyncContextManager[bool]:
        """A lock across the cluster for work that must run once at a time (retention, renders).
        Yields False, without waiting, when another holder has it."""

    def room_changed(self, session_id: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        """The room changed: save its durable state (taken lazily by calling `snapshot`) for a take-over."""

    async def flush_rooms(self) -> None:
        """Save now every room state that changed."""

    async def load_room(self, session_id: int) -> dict[str, Any] | None:
        """The last saved state of a room another node hosted (None: a fresh room)."""
        return None


class LocalRouter(Router):
    """One process is the whole cluster: every session lives here; commands are direct calls."""

    def __init__(self, node_id: str, url: str):
        super().__init__(node_id, url)
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def alone(self) -> bool:
        return True

    async def place(self, session_id: int) -> NodeInfo:
        return self.self_info()

    async def owner(self, session_id: int) -> NodeInfo | None:
        return self.self_info() if self.handler and session_id in self.handler.live_sessions() else None

    async def release(self, session_id: int) -> None:
        pass

    async def command(self, session_id: int, name: str, **args: Any) -> Any:
        return await self.bound.run_command(name, {"session_id": session_id, **args})

    async def command_all(self, name: str, **args: Any) -> list[Any]:
        return [await self.bound.run_command(name, args)]

    async def nodes(self) -> list[NodeInfo]:
        return [self.self_info()]

    async def drain(self, node_id: str) -> NodeInfo:
        if node_id != self.node_id:
            raise RoomError("unknown_node", f"There is no node {node_id!r}.")
        raise RoomError(
            "no_other_node",
            "This server runs alone: there is no other node to move its rooms "
            "to. Configure Redis and more nodes to drain one.",
        )

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str, seconds: float) -> AsyncIterator[bool]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        if lock.locked():
            yield False
            return
        async with lock:
            yield True
