"""The router for many nodes: a registry, placements, room states and commands, all in Redis.

Keys (under the configured prefix `p`):
- `p:nodes`            hash node id → the node's last heartbeat (NodeInfo as JSON): state, URL, load
- `p:placed:<session>` the node that hosts the session
- `p:hosted:<node>`    set of the sessions placed on a node (what a take-over moves)
- `p:room:<session>`   the room's durable state (signaling/room_state.py), saved as it changes
- `p:lock:<name>`      locks for work that runs once across the cluster
Channels: `p:cmd:<node>` (commands to one node), `p:cmd-all` (to every node), `p:reply:<node>`.

A node whose heartbeat is older than the TTL is dead: every live node sweeps the registry and re-places
a dead node's sessions (a compare-and-set makes exactly one move win), then tells the new owner to take
the room over with the dead node's last heartbeat, where the attendance of its people closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Callable, Concatenate, Coroutine, ParamSpec, TypeVar, cast

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from signaling.protocol import RoomError
from signaling.router import DEAD, DRAINING, LIVE, NodeInfo, Router

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0
ROOM_STATE_TTL = 24 * 3600  # a room's saved state outlives any period
FORGET_DEAD_AFTER = 600.0  # a dead node with nothing left to move stays listed this long
SAVE_INTERVAL = 0.1  # room states are saved at most this often (the latest state wins)

# Move a session from the node it is on (ARGV[1], "" for none) to the candidate (ARGV[4..], in order of
# preference) hosting the fewest sessions right now; counted and moved in one step, so that periods started
# at the same moment spread evenly. Returns the node chosen, or nil if someone moved the session first.
_MOVE = """
local current = redis.call('GET', KEYS[1])
if not ((current == false and ARGV[1] == '') or current == ARGV[1]) then return false end
local best, fewest = false, 0
for i = 4, #ARGV do
  local hosted = redis.call('SCARD', ARGV[2] .. ARGV[i])
  if not best or hosted < fewest then best, fewest = ARGV[i], hosted end
end
if not best then return false end
redis.call('SET', KEYS[1], best)
if current then redis.call('SREM', ARGV[2] .. current, ARGV[3]) end
redis.call('SADD', ARGV[2] .. best, ARGV[3])
return best
"""
# Forget a session's placement, wherever it is (its room ended).
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current then redis.call('SREM', ARGV[1] .. current, ARGV[2]) end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""
# Forget a session's placement if it is still on ARGV[1].
_UNPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', ARGV[2] .. ARGV[1], ARGV[3])
return 1
"""


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _needs_redis(
    method: Callable[Concatenate[RedisRouter, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[RedisRouter, _P], Coroutine[Any, Any, _T]]:
    """Redis out of reach is the cluster being unavailable for a moment, said as such (HTTP 503)."""

    @functools.wraps(method)
    async def answer_unavailable(self: RedisRouter, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(self, *args, **kwargs)
        except (RedisError, OSError) as exc:
            log.warning("Redis is out of reach (%s)", type(exc).__name__)
            raise RoomError(
                "node_unavailable", "The servers cannot reach each other right now; try again in a moment."
            ) from None

    return answer_unavailable


class RedisRouter(Router):
    def __init__(self, node_id: str, url: str, redis_url: str, *, prefix: str = "liveclass", ttl_seconds: float = 10.0):
        super().__init__(node_id, url)
        self.redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self.prefix = prefix
        self.ttl = ttl_seconds
        self._move = self.redis.register_script(_MOVE)
        self._unplace = self.redis.register_script(_UNPLACE)
        self._release = self.redis.register_script(_RELEASE)
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        # request id → (done when every answer is in, the answers, how many are expected)
        self._waiting: dict[str, tuple[asyncio.Future[None], list[dict[str, Any]], int]] = {}
        self._dirty: dict[int, Callable[[], dict[str, Any]]] = {}  # changed since the last save
        self._snapshots: dict[int, Callable[[], dict[str, Any]]] = {}  # every room open here
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- keys ----------------------------------------------------------------------------------------
    def _key(self, *parts: Any) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    @property
    def moves_rooms(self) -> bool:
        return True

    # -- life ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._take_back_previous_life()
        await self.heartbeat()
        await self._pubsub.subscribe(
            self._key("cmd", self.node_id), self._key("cmd-all"), self._key("reply", self.node_id)
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="router-listen"),
            loop.create_task(self._beat(), name="router-heartbeat"),
            loop.create_task(self._save_rooms(), name="router-room-states"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # A task whose cancellation was swallowed on the way (asyncio.wait_for in Python 3.11 can) still
            # ends at its next round, seeing _closing: never wait for it forever.
            await asyncio.wait(self._tasks, timeout=5)
        if self._tasks:  # a node (not a command that only borrowed a lock) leaves the cluster
            with contextlib.suppress(RedisError):
                await self.flush_rooms()
                await self.redis.hdel(self._key("nodes"), self.node_id)  # a clean exit: not dead, gone
        with contextlib.suppress(RedisError, RuntimeError):
            await self._pubsub.aclose()
        await self.redis.aclose()

    async def _take_back_previous_life(self) -> None:
        """Restarted under the same node id before anyone noticed it was gone (a worker restarted at once,
        systemd's Restart=): the sessions still placed here were lost at its last heartbeat, as after any
        node loss, and are taken over now."""
        previous = await self.redis.hget(self._key("nodes"), self.node_id)
        sessions = sorted(int(s) for s in await self.redis.smembers(self._key("hosted", self.node_id)))
        if not sessions:
            return
        lost_at = json.loads(previous)["heartbeat_at"] if previous else time.time()
        log.warning("restarted while hosting sessions %s: taking them back", sessions)
        for session_id in sessions:
            await self.bound.run_command(
                "adopt", {"session_id": session_id, "lost_at": lost_at, "from_node": self.node_id}
            )

    async def begin_drain(self) -> None:
        await super().begin_drain()
        await self.heartbeat()  # no node places a session here from now on

    async def heartbeat(self) -> None:
        info = self.self_info()
        info.started_at, info.heartbeat_at = self.started_at, time.time()
        info.sessions = []  # the hosted set is the truth
        await self.redis.hset(self._key("nodes"), self.node_id, json.dumps(info.view()))

    async def _beat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.heartbeat()
                await self._check_placements()
                await self._sweep()
            except (RedisError, OSError, RoomError) as exc:
                log.warning("heartbeat to Redis failed (%s); retrying", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the heartbeat must go on
                log.exception("node heartbeat failed")

    async def _check_placements(self) -> None:
        """Every room open here must be placed here. Fencing: a node cut off from Redis longer than the TTL
        was taken for dead and its sessions moved; when it hears again, it closes those rooms instead of
        running them twice. A placement Redis forgot (it restarted empty) is claimed back, with the room's
        saved state."""
        if self.draining or self.handler is None:
            return
        hosted = {int(s) for s in await self.redis.smembers(self._key("hosted", self.node_id))}
        for session_id in self.handler.live_sessions():
            if session_id in hosted:
                continue
            owner = await self._placed(session_id)
            if owner is None:
                await self._move(
                    keys=[self._key("placed", session_id)], args=["", self._key("hosted", ""), session_id, self.node_id]
                )
                if session_id in self._snapshots:
                    self._dirty[session_id] = self._snapshots[session_id]
                log.warning("session %s: placement lost by Redis, claimed back", session_id)
            elif owner != self.node_id:
                await self.handler.run_command("evict", {"session_id": session_id})

    async def _sweep(self) -> None:
        """Move the sessions of dead nodes to live ones; forget dead nodes with nothing left."""
        if self.draining:
            return
        for node in await self.nodes():
            if node.state != DEAD or node.node_id == self.node_id:
                continue
            for session_id in node.sessions:
                try:
                    await self.place(session_id)
                except RoomError as exc:
                    log.warning("session %s of dead node %s not moved: %s", session_id, node.node_id, exc.message)
            if not node.sessions and time.time() - node.heartbeat_at > FORGET_DEAD_AFTER:
                await self.redis.hdel(self._key("nodes"), node.node_id)

    # -- the registry --------------------------------------------------------------------------------
    @_needs_redis
    async def check(self) -> None:
        await self.redis.ping()

    @_needs_redis
    async def nodes(self) -> list[NodeInfo]:
        raw = await self.redis.hgetall(self._key("nodes"))
        now = time.time()
        found = []
        for node_id, value in sorted(raw.items()):
            try:
                info = NodeInfo(**json.loads(value))
            except (TypeError, ValueError):
                continue
            if now - info.heartbeat_at > self.ttl:
                info.state = DEAD
            info.sessions = sorted(int(s) for s in await self.redis.smembers(self._key("hosted", node_id)))
            found.append(info)
        return found

    # -- placement -----------------------------------------------------------------------------------
    async def _placed(self, session_id: int) -> str | None:
        """The id of the node the session is placed on (a str: the client decodes responses)."""
        return cast("str | None", await self.redis.get(self._key("placed", session_id)))

    @_needs_redis
    async def owner(self, session_id: int) -> NodeInfo | None:
        node_id = await self._placed(session_id)
        if node_id is None:
            return None
        return next((n for n in await self.nodes() if n.node_id == node_id), NodeInfo(node_id, "", DEAD, 0, 0))

    @_needs_redis
    async def place(self, session_id: int) -> NodeInfo:
        for _ in range(5):
            nodes = {n.node_id: n for n in await self.nodes()}
            current = await self._placed(session_id)
            old = nodes.get(current) if current else None
            if old is not None and old.state == LIVE:
                return old
            candidates = sorted(
                (n for n in nodes.values() if n.state == LIVE and n.node_id != current),
                key=lambda n: (n.participants, n.cpu, n.node_id),
            )
            if not candidates:
                raise RoomError("no_node", "No server can host this period right now; try again in a moment.")
            chosen = await self._move(
                keys=[self._key("placed", session_id)],
                args=[current or "", self._key("hosted", ""), session_id, *(n.node_id for n in candidates)],
            )
            if not chosen:
                continue  # another node moved it first: look again
            new = nodes[chosen]
            if current is not None:
                # Taken over from a dead node (its people's attendance closes at its last heartbeat), or
                # from a draining one (it closed the room itself): the new node opens the room now.
                lost_at = old.heartbeat_at if old is not None and old.state == DEAD else None
                log.info("session %s moved from %s to %s", session_id, current, new.node_id)
                await self._adopt(new, session_id, lost_at, current)
            return new
        raise RoomError("no_node", "The period could not be placed on a server; try again in a moment.")

    async def _adopt(self, node: NodeInfo, session_id: int, lost_at: float | None, from_node: str) -> None:
        try:
            await self._send(
                node.node_id, "adopt", {"session_id": session_id, "lost_at": lost_at, "from_node": from_node}
            )
        except RoomError as exc:  # it adopts the room when the first person connects instead
            log.warning("node %s did not take session %s over now: %s", node.node_id, session_id, exc.message)

    @_needs_redis
    async def unplace(self, session_id: int) -> None:
        """This node no longer hosts the session (it moved its room away); its saved state stays."""
        self._snapshots.pop(session_id, None)
        await self._unplace(
            keys=[self._key("placed", session_id)], args=[self.node_id, self._key("hosted", ""), session_id]
        )

    @_needs_redis
    async def release(self, session_id: int) -> None:
        self._dirty.pop(session_id, None)
        self._snapshots.pop(session_id, None)
        await self._release(
            keys=[self._key("placed", session_id), self._key("room", session_id)],
            args=[self._key("hosted", ""), session_id],
        )

    @_needs_redis
    async def drain(self, node_id: str) -> NodeInfo:
        node = next((n for n in await self.nodes() if n.node_id == node_id), None)
        if node is None or node.state == DEAD:
            raise RoomError("unknown_node", f"There is no live node {node_id!r}.")
        if not any(n.state == LIVE and n.node_id != node_id for n in await self.nodes()):
            raise RoomError("no_other_node", "No other live node could take this node's rooms.")
        await self._send(node_id, "drain", {})
        node.state = DRAINING
        return node

    # -- commands ------------------------------------------------------------------------------------
    @_needs_redis
    async def command(self, session_id: int, name: str, **args: Any) -> Any:
        node = await self.place(session_id)
        return await self._send(node.node_id, name, {"session_id": session_id, **args})

    @_needs_redis
    async def command_all(self, name: str, **args: Any) -> list[Any]:
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        answers: list[dict[str, Any]] = []
        self._waiting[request_id] = (future, answers, 0)
        try:
            receivers = await self.redis.publish(
                self._key("cmd-all"), json.dumps({"id": request_id, "from": self.node_id, "name": name, "args": args})
            )
            self._waiting[request_id] = (future, answers, receivers)
            if len(answers) < receivers:
                await asyncio.wait_for(future, COMMAND_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("command %s: %d of %d nodes answered", name, len(answers), receivers)
        finally:
            self._waiting.pop(request_id, None)
        return [a["data"] for a in answers if a.get("ok")]

    async def _send(self, node_id: str, name: str, args: dict[str, Any]) -> Any:
        if node_id == self.node_id:
            return await self.bound.run_command(name, args)
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        answers: list[dict[str, Any]] = []
        self._waiting[request_id] = (future, answers, 1)
        try:
            receivers = await self.redis.publish(
                self._key("cmd", node_id),
                json.dumps({"id": request_id, "from": self.node_id, "name": name, "args": args}),
            )
            if not receivers:
                raise RoomError("node_unavailable", f"The server {node_id} is not answering; try again.")
            await asyncio.wait_for(future, COMMAND_TIMEOUT)
        except asyncio.TimeoutError:
            raise RoomError("node_unavailable", f"The server {node_id} did not answer in time.") from None
        finally:
            self._waiting.pop(request_id, None)
        answer = answers[0]
        if not answer["ok"]:
            raise RoomError(answer["error"]["code"], answer["error"]["message"])
        return answer["data"]

    async def _listen(self) -> None:
        while not self._closing:
            try:
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        body = json.loads(message["data"])
                    except ValueError:
                        continue
                    if message["channel"] == self._key("reply", self.node_id):
                        self._on_reply(body)
                    else:
                        task = asyncio.get_running_loop().create_task(self._run(body))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                log.warning("command channel lost (%s); resubscribing", type(exc).__name__)
                await asyncio.sleep(0.5)

    def _on_reply(self, body: dict[str, Any]) -> None:
        waiting = self._waiting.get(body.get("id", ""))
        if waiting is None:
            return
        future, answers, expected = waiting
        answers.append(body)
        if len(answers) >= expected and not future.done():
            future.set_result(None)

    async def _run(self, body: dict[str, Any]) -> None:
        try:
            answer = {"id": body["id"], "ok": True, "data": await self.bound.run_command(body["name"], body["args"])}
        except RoomError as exc:
            answer = {"id": body["id"], "ok": False, "error": {"code": exc.code, "message": exc.message}}
        except Exception:  # noqa: BLE001 - the caller gets an answer, whatever happened
            log.exception("command %s failed", body.get("name"))
            answer = {
                "id": body["id"],
                "ok": False,
                "error": {"code": "internal_error", "message": "The server could not run the command."},
            }
        with contextlib.suppress(RedisError):
            await self.redis.publish(self._key("reply", body["from"]), json.dumps(answer, default=str))

    # -- room states ---------------------------------------------------------------------------------
    def room_changed(self, session_id: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._dirty[session_id] = self._snapshots[session_id] = snapshot

    async def flush_rooms(self) -> None:
        dirty, self._dirty = self._dirty, {}
        if dirty:
            async with self.redis.pipeline(transaction=False) as pipe:
                for session_id, snapshot in dirty.items():
                    pipe.set(self._key("room", session_id), json.dumps(snapshot()), ex=ROOM_STATE_TTL)
                await pipe.execute()

    async def _save_rooms(self) -> None:
        while not self._closing:
            await asyncio.sleep(SAVE_INTERVAL)
            try:
                await self.flush_rooms()
            except RedisError as exc:
                log.warning("saving room states failed (%s); retrying", type(exc).__name__)

    @_needs_redis
    async def load_room(self, session_id: int) -> dict[str, Any] | None:
        raw = await self.redis.get(self._key("room", session_id))
        return json.loads(raw) if raw else None

    # -- locks ---------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def exclusive(self, name: str, seconds: float) -> AsyncIterator[bool]:
        lock = self.redis.lock(self._key("lock", name), timeout=seconds, blocking=False)
        if not await lock.acquire():
            yield False
            return
        try:
            yield True
        finally:
            with contextlib.suppress(LockError, RedisError):
                await lock.release()
