"""A real Socket.IO client (msgpack, namespace /live) for tests, recording everything it receives."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import socketio

from tests.helpers import Person


class RefusedError(Exception):
    def __init__(self, data: dict):
        super().__init__(data.get("message"))
        self.code = data.get("code")
        self.data = data


class LiveClient:
    def __init__(self, person: Person):
        self.person = person
        self.received: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()
        self._new_socket()
        self.resume_token: str | None = None
        self.participant_id: str | None = None
        self.join: dict | None = None  # the last join answer (which node, …)
        person.server.live_clients.append(self)

    def _new_socket(self) -> None:
        self.sio = socketio.AsyncClient(serializer="msgpack", reconnection=False)
        self._refused: asyncio.Future = asyncio.get_running_loop().create_future()
        self.sio.on("*", self._record, namespace="/live")
        self.sio.on("connect_error", self._on_connect_error, namespace="/live")
        self.sio.on("disconnect", self._on_disconnect, namespace="/live")

    async def _record(self, event: str, data: Any = None) -> None:
        if event == "room:state":
            self.resume_token = data["you"]["resume_token"]
            self.participant_id = data["you"]["participant_id"]
        async with self._changed:
            self.received.append((event, data))
            self._changed.notify_all()

    async def _on_disconnect(self, *args) -> None:
        await self._record("_disconnected", None)

    async def _on_connect_error(self, data) -> None:
        if not self._refused.done():
            self._refused.set_result(data.get("data", data) if isinstance(data, dict) else {"message": str(data)})

    async def connect(self, session_id: int, resume: bool = False) -> "LiveClient":
        """Join as a documented client does: ask /join, then connect where its answer says (the node
        that hosts the room)."""
        return await self.connect_with(await self.person.json("POST", f"/sessions/{session_id}/join"), resume)

    async def connect_with(self, join: dict, resume: bool = False) -> "LiveClient":
        """Connect with a join answer obtained earlier (its token is spent now)."""
        if self.join is not None:  # a reconnect: a fresh socket (the old one is closed)
            self._new_socket()
        self.join = join
        auth = {"token": join["token"]}
        if resume and self.resume_token:
            auth["resume_token"] = self.resume_token
        connect = join["connect"]
        try:
            await self.sio.connect(connect["url"], namespaces=[connect["namespace"]], auth=auth,
                                   transports=["websocket"], socketio_path=connect["socketio_path"], wait_timeout=10)
        except socketio.exceptions.ConnectionError:
            try:
                refusal = await asyncio.wait_for(self._refused, 2)
            except asyncio.TimeoutError:  # no answer at all: the node is not there
                refusal = {"code": "network", "message": "the node did not answer"}
            raise RefusedError(refusal) from None
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> dict:
        return await self.sio.call(event, data, namespace="/live", timeout=timeout)

    async def ok(self, event: str, data: Any = None) -> Any:
        answer = await self.call(event, data)
        assert answer["ok"] is True, (event, answer)
        return answer["data"]

    async def refused(self, event: str, data: Any = None) -> str:
        answer = await self.call(event, data)
        assert answer["ok"] is False and answer["error"]["message"], (event, answer)
        return answer["error"]["code"]

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    async def wait_for(self, name: str, where: Callable[[Any], bool] = lambda d: True, timeout: float = 10,
                       after: int = 0) -> Any:
        """The first `name` event (from index `after` on) that satisfies `where`."""
        async def found():
            async with self._changed:
                while True:
                    for event, data in self.received[after:]:
                        if event == name and where(data):
                            return data
                    await self._changed.wait()
        return await asyncio.wait_for(found(), timeout)

    def mark(self) -> int:
        return len(self.received)

    async def drop(self) -> None:
        """The network goes away: close the transport without saying goodbye."""
        await self.sio.eio.disconnect(abort=True)
        await self.wait_for("_disconnected")

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def enter(person: Person, session_id: int) -> LiveClient:
    return await LiveClient(person).connect(session_id)


async def admitted(teacher: LiveClient, person: Person, session_id: int) -> LiveClient:
    """A learner joins, waits in the lobby, and the teacher lets them in."""
    client = await enter(person, session_id)
    waiting = await teacher.wait_for("lobby:updated", lambda d: any(e["name"] == person.user.full_name
                                                                    for e in d["lobby"]))
    entry = next(e for e in waiting["lobby"] if e["name"] == person.user.full_name)
    await teacher.ok("lobby:admit", {"participant_ids": [entry["participant_id"]]})
    await client.wait_for("room:state")
    return client
