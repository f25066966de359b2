"""A real Socket.IO client (msgpack, namespace /live) for tests, recording everything it receives: the
bench's protocol client (bench/client.py RoomSocket), with a test's login (tests.helpers.Person) and asserts."""

from __future__ import annotations

from typing import Any, Callable

from bench.client import Refused as RefusedError
from bench.client import RoomSocket
from tests.helpers import Person

__all__ = ["LiveClient", "RefusedError", "admitted", "enter"]


class LiveClient(RoomSocket):
    def __init__(self, person: Person):
        super().__init__()
        self.person = person
        person.server.live_clients.append(self)

    async def connect(self, session_id: int, resume: bool = False) -> "LiveClient":
        """Join as a documented client does: ask /join, then connect where its answer says (the node
        that hosts the room)."""
        return await self.connect_with(await self.person.json("POST", f"/sessions/{session_id}/join"), resume)

    async def connect_with(self, join: dict, resume: bool = False) -> "LiveClient":
        """Connect with a join answer obtained earlier (its token is spent now). Raises RefusedError."""
        await super().connect_with(join, resume, wait_timeout=10)
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> dict:
        return await self.ask(event, data, timeout)

    async def ok(self, event: str, data: Any = None) -> Any:
        answer = await self.call(event, data)
        assert answer["ok"] is True, (event, answer)
        return answer["data"]

    async def refused(self, event: str, data: Any = None) -> str:
        answer = await self.call(event, data)
        assert answer["ok"] is False and answer["error"]["message"], (event, answer)
        return answer["error"]["code"]

    async def wait_for(
        self, name: str, where: Callable[[Any], bool] = lambda d: True, timeout: float = 10, after: int = 0
    ) -> Any:
        return await super().wait_for(name, where, timeout, after)

    async def drop(self) -> None:
        """The network goes away: close the transport without saying goodbye."""
        await self.sio.eio.disconnect(abort=True)
        await self.wait_for("_disconnected")

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()


async def enter(person: Person, session_id: int) -> LiveClient:
    return await LiveClient(person).connect(session_id)


async def admitted(teacher: LiveClient, person: Person, session_id: int) -> LiveClient:
    """A learner joins, waits in the lobby, and the teacher lets them in."""
    client = await enter(person, session_id)
    waiting = await teacher.wait_for(
        "lobby:updated", lambda d: any(e["name"] == person.user.full_name for e in d["lobby"])
    )
    entry = next(e for e in waiting["lobby"] if e["name"] == person.user.full_name)
    await teacher.ok("lobby:admit", {"participant_ids": [entry["participant_id"]]})
    await client.wait_for("room:state")
    return client
