"""The pieces of scale-out on their own: a room's saved state brings everyone back into their seats, and
the Redis router (real Redis) places sessions, carries commands between nodes, notices a dead node and
hands out cluster-wide locks. The same pieces end to end, with real node processes: tests/test_cluster.py."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from signaling import protocol as proto
from signaling.events import ListSink
from signaling.protocol import RoomError
from signaling.redis_router import RedisRouter
from signaling.room import Room
from signaling.room_state import restore, snapshot, was_connected
from tests.cluster import REDIS_URL
from tests.rooms import claims


def _class_in_progress() -> tuple[Room, dict]:
    room = Room(7, ListSink())
    teacher = room.arrive("sid-t", claims(1, "teacher", "Cô Hà"))
    student = room.arrive("sid-s", claims(2, "student", "Ánh"))
    late = room.arrive("sid-l", claims(3, "student", "Khôi"))
    room.handle(teacher, "lobby:admit", proto.AdmitRequest(participant_ids=[student.participant_id]))
    room.handle(student, "hand:raise", None)
    room._post(teacher, "Mở sách trang 42.", None)
    room.locks["microphones"] = True
    student.permissions.overrides["microphone"] = True
    room.stage = student.participant_id
    room.disconnected("sid-s")  # Ánh's phone dropped just before the node died
    return room, {"teacher": teacher, "student": student, "late": late}


def test_a_restored_room_keeps_seats_hands_chat_locks_and_stage():
    room, people = _class_in_progress()
    state = json.loads(json.dumps(snapshot(room)))  # as it travels through Redis
    assert was_connected(state) == {1}  # the teacher's attendance was open, Ánh's had closed already

    again = Room(7, ListSink())
    seats = restore(again, state)
    assert sorted(s.name for s in seats) == ["Cô Hà", "Ánh"]  # the lobby is not carried over: Khôi knocks again
    assert all(not s.connected for s in seats)
    assert again.version > room.version  # clients see a newer state
    assert [m["text"] for m in again.chat] == ["Mở sách trang 42."]
    assert again.hands[0][0] == people["student"].participant_id
    assert again.locks["microphones"] and again.stage == people["student"].participant_id

    # Ánh comes back with her resume token: the same seat, no lobby, her permission kept.
    back = again.arrive("sid-new", claims(2, "student", "Ánh"), people["student"].resume_token)
    assert back.participant_id == people["student"].participant_id and back.state == "admitted"
    assert back.permissions.effective(again.locks)["microphone"] is True
    # Without it (someone who only knows the account), she waits in the lobby like anyone new.
    stranger = again.arrive("sid-x", claims(1, "teacher", "Cô Hà"), "not-the-token")
    assert stranger.participant_id != people["teacher"].participant_id


def test_a_snapshot_of_another_room_is_refused():
    room, _ = _class_in_progress()
    with pytest.raises(ValueError):
        restore(Room(8, ListSink()), snapshot(room))


class Handler:
    """A node's live server as the router sees it: it answers commands and reports its load."""

    def __init__(self, name: str):
        self.name = name
        self.commands: list[tuple[str, dict]] = []
        self.sessions: list[int] = []

    async def run_command(self, name: str, args: dict):
        self.commands.append((name, args))
        if name == "refuse":
            raise RoomError("not_in_room", "Join the room first.")
        return {"ran_on": self.name}

    def load(self) -> dict:
        return {"rooms": len(self.sessions), "participants": 0}

    def live_sessions(self) -> list[int]:
        return list(self.sessions)


@pytest.fixture
async def routers():
    prefix = f"lc-test-{uuid.uuid4().hex[:10]}"
    made: list[RedisRouter] = []

    async def node(name: str, ttl: float = 1.0) -> tuple[RedisRouter, Handler]:
        router = RedisRouter(f"node-{name}", f"http://127.0.0.1/{name}", REDIS_URL, prefix=prefix, ttl_seconds=ttl)
        handler = Handler(name)
        router.bind(handler)
        await router.start()
        made.append(router)
        return router, handler

    yield node
    for router in made:
        await router.close()
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_sessions_spread_and_commands_reach_the_hosting_node(routers):
    a, handler_a = await routers("a")
    b, handler_b = await routers("b")
    placed = [(await a.place(session_id)).node_id for session_id in (1, 2, 3, 4)]
    assert sorted(placed) == ["node-a", "node-a", "node-b", "node-b"]  # least loaded first
    assert (await b.place(1)).node_id == placed[0]  # asked again, on any node: the same answer
    remote = next(s for s, n in zip((1, 2, 3, 4), placed) if n == "node-b")
    assert await a.command(remote, "end_room", by_user_id=5) == {"ran_on": "b"}
    assert handler_b.commands[-1] == ("end_room", {"session_id": remote, "by_user_id": 5})
    with pytest.raises(RoomError) as refused:
        await a.command(remote, "refuse")
    assert refused.value.code == "not_in_room"
    answers = await a.command_all("drop_user", user_id=9, reason="account_deactivated")
    assert sorted(x["ran_on"] for x in answers) == ["a", "b"]
    await a.release(remote)
    assert await a.owner(remote) is None


async def test_a_silent_node_is_dead_and_its_sessions_move_with_its_last_heartbeat(routers):
    a, handler_a = await routers("a")
    b, handler_b = await routers("b")
    await b.place(1)
    on_b = [s for s in (1,) if (await a.owner(s)).node_id == "node-b"]
    if not on_b:  # placed on a: put another one on b
        await a.place(2)
        on_b = [2]
    # Node b's machine is lost: its heartbeat stops (no clean exit), and its commands go nowhere.
    for task in b._tasks:
        task.cancel()
    await b._pubsub.aclose()
    last_beat = json.loads(await a.redis.hget(f"{a.prefix}:nodes", "node-b"))["heartbeat_at"]
    await asyncio.sleep(1.6)  # past the 1 s TTL since its last heartbeat: the expiry is what is tested
    assert {n.node_id: n.state for n in await a.nodes()}["node-b"] == "dead"
    moved = await a.place(on_b[0])  # what a /join (or the sweep) does
    assert moved.node_id == "node-a"
    name, args = handler_a.commands[-1]
    assert name == "adopt" and args == {"session_id": on_b[0], "lost_at": last_beat, "from_node": "node-b"}


async def test_cluster_locks_are_held_by_one_node_at_a_time(routers):
    a, _ = await routers("a")
    b, _ = await routers("b")
    async with a.exclusive("retention", 30) as first:
        async with b.exclusive("retention", 30) as second:
            assert (first, second) == (True, False)
    async with b.exclusive("retention", 30) as after:
        assert after is True


async def test_draining_is_refused_without_another_node(routers):
    a, _ = await routers("a")
    with pytest.raises(RoomError) as refused:
        await a.drain("node-a")
    assert refused.value.code == "no_other_node"
    with pytest.raises(RoomError) as unknown:
        await a.drain("node-zz")
    assert unknown.value.code == "unknown_node"


async def test_periods_started_at_the_same_moment_spread_evenly(routers):
    a, _ = await routers("a")
    b, _ = await routers("b")
    c, _ = await routers("c")
    placed = await asyncio.gather(*((a, b, c)[i % 3].place(100 + i) for i in range(12)))
    counts = {name: [p.node_id for p in placed].count(name) for name in ("node-a", "node-b", "node-c")}
    assert counts == {"node-a": 4, "node-b": 4, "node-c": 4}
