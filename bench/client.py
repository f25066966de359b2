"""A participant of a live room as a benchmark client sees it: HTTP login and join, then the
Socket.IO protocol of docs/protocol.md (namespace /live, msgpack, every request acknowledged)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any, Callable

import aiohttp
import socketio

API = "/api/v1"
REJOIN_INTERVAL = 0.5  # seconds between two attempts to get back into a room (the web client waits 2 s)


class ProtocolError(Exception):
    pass


class Refused(ProtocolError):
    """The node refused the connection (connect_error): `code` says why (wrong_node, node_moving, …;
    `network` when it did not answer at all)."""

    def __init__(self, data: dict):
        super().__init__(data.get("message"))
        self.code = data.get("code")
        self.data = data


_REJOIN_FAILURES = {ProtocolError: "join_refused", asyncio.TimeoutError: "no_room_state"}


class RoomSocket:
    """One participant's Socket.IO connection to a live room, as docs/protocol.md describes it (namespace
    /live, msgpack, every request acknowledged): it connects with a /join answer and keeps every event it
    receives, in order, for waits on them. The bench's participants and the tests' clients are both this."""

    def __init__(self) -> None:
        self.sio: socketio.AsyncClient | None = None
        self.received: list[tuple[str, Any]] = []
        self.participant_id: str | None = None
        self.resume_token: str | None = None  # the seat's, from room:state: back without the lobby
        self.join: dict | None = None  # the last /join answer (connect.node: the node hosting the room)
        self.refusals: Counter = Counter()  # connect_error codes seen (wrong_node, node_moving, ...)
        self._changed = asyncio.Condition()
        self._handlers: dict[str, Callable[[Any], None]] = {}
        self._refusal: asyncio.Future | None = None

    def on(self, event: str, handler: Callable[[Any], None]) -> None:
        """Run `handler(data)` as soon as `event` arrives (before it is recorded)."""
        self._handlers[event] = handler

    async def connect_with(self, join: dict, resume: bool = False, wait_timeout: float = 30) -> None:
        """Connect where a /join answer says (its token is spent now), on a new socket; with the seat's
        resume token if `resume`. Raises Refused when the node refuses."""
        self.join = join
        connect = join["connect"]
        auth = {"token": join["token"]}
        if join.get("session_id") is not None:  # the node then checks that the token is for this session
            auth["session_id"] = join["session_id"]
        if resume and self.resume_token:
            auth["resume_token"] = self.resume_token
        self.sio = socketio.AsyncClient(serializer="msgpack", reconnection=False)
        self._refusal = asyncio.get_running_loop().create_future()
        self.sio.on("*", self._record, namespace=connect["namespace"])
        self.sio.on("connect_error", self._refused, namespace=connect["namespace"])
        self.sio.on("disconnect", self._disconnected, namespace=connect["namespace"])
        try:
            await self.sio.connect(
                connect["url"],
                namespaces=[connect["namespace"]],
                auth=auth,
                socketio_path=connect["socketio_path"],
                transports=["websocket"],
                wait_timeout=wait_timeout,
            )
        except socketio.exceptions.ConnectionError:
            try:
                refusal = await asyncio.wait_for(asyncio.shield(self._refusal), 2)
            except asyncio.TimeoutError:  # no answer at all: the node is not there
                self.refusals["network"] += 1
                refusal = {"code": "network", "message": "the node did not answer"}
            raise Refused(refusal) from None

    async def _refused(self, data: Any = None) -> None:
        info = data.get("data", data) if isinstance(data, dict) else {"message": str(data)}
        self.refusals[info.get("code") or "network"] += 1  # no code: the node did not answer
        if self._refusal is not None and not self._refusal.done():
            self._refusal.set_result(info)

    async def _disconnected(self, *args: Any) -> None:
        await self._record("_disconnected", None)

    async def _record(self, event: str, data: Any = None) -> None:
        if event == "room:state":
            self.participant_id = data["you"]["participant_id"]
            self.resume_token = data["you"].get("resume_token")
        handler = self._handlers.get(event)
        if handler is not None:
            handler(data)
        async with self._changed:
            self.received.append((event, data))
            self._changed.notify_all()

    async def ask(self, event: str, data: Any = None, timeout: float = 30) -> dict:
        """The request's answer as it came (`ok`, `data` or `error`); socketio's TimeoutError if none."""
        assert self.sio is not None, "not connected"
        return await self.sio.call(event, data, namespace="/live", timeout=timeout)

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda d: True, timeout: float = 30, after: int = 0
    ) -> Any:
        """The first `event` (from index `after` on) that satisfies `where`."""

        async def found():
            async with self._changed:
                while True:
                    for name, data in self.received[after:]:
                        if name == event and where(data):
                            return data
                    await self._changed.wait()

        return await asyncio.wait_for(found(), timeout)

    def mark(self) -> int:
        return len(self.received)

    async def drop(self) -> None:
        """The network goes away: close the transport without saying goodbye, and without waiting for an
        answer (the node may be gone)."""
        if self.sio is not None:
            try:
                await asyncio.wait_for(self.sio.eio.disconnect(abort=True), 2)
            except Exception:  # noqa: BLE001 - it is already dead, most of the time
                pass

    async def leave_socket(self) -> None:
        """Close the connection politely (at the end of a run or a test)."""
        if self.sio is not None and self.sio.connected:
            try:
                await asyncio.wait_for(self.sio.disconnect(), 5)
            except Exception:  # noqa: BLE001 - leaving at the end
                pass


class Participant(RoomSocket):
    """A benchmark participant: HTTP login and join (with its own session and CSRF token), then the room."""

    def __init__(self, base_url: str, personal_id: str, password: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.personal_id, self.password = personal_id, password
        self.http: aiohttp.ClientSession | None = None
        self.csrf: str | None = None

    # -- HTTP
    async def request(self, method: str, path: str, **kwargs) -> Any:
        if self.http is None:
            self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        async with self.http.request(method, self.base_url + API + path, headers=headers, **kwargs) as response:
            body = await response.json()
            if response.status >= 300:
                raise ProtocolError(f"{method} {path}: {response.status} {body}")
            return body

    async def login(self) -> None:
        body = await self.request(
            "POST", "/auth/login", json={"personal_id": self.personal_id, "password": self.password}
        )
        self.csrf = body["csrf_token"]

    async def start_period(self, period_id: int) -> dict:
        """The period's session, as the API answers it (`id`, and `node`: where it was placed)."""
        return await self.request("POST", f"/periods/{period_id}/start")

    # -- the room
    async def connect(self, session_id: int, resume: bool = False) -> None:
        """/join, then Socket.IO to the node its answer names (with the seat's resume token if `resume`)."""
        join = await self.request("POST", f"/sessions/{session_id}/join")
        await self.connect_with({**join, "session_id": session_id}, resume)

    async def rejoin(self, session_id: int, deadline: float) -> dict:
        """Back into the room after its node was lost: /join (through `base_url`, a live node) and
        connect where it says, with the resume token, again every REJOIN_INTERVAL until a node takes
        the connection and sends room:state, or until `deadline` (time.monotonic()). Returns the attempts."""
        attempts = 0
        while True:
            attempts += 1
            await self._drop_socket()
            mark = self.mark()
            try:
                await self.connect(session_id, resume=True)
                await self.wait_for("room:state", after=mark, timeout=max(1.0, deadline - time.monotonic()))
                assert self.join is not None  # (set by connect)
                return {"attempts": attempts, "node": self.join["connect"]["node"]}
            except (ProtocolError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not isinstance(exc, Refused):  # (a refusal is counted when it comes)
                    self.refusals[_REJOIN_FAILURES.get(type(exc), "http_error")] += 1
                if time.monotonic() + REJOIN_INTERVAL > deadline:
                    raise ProtocolError(f"not back in the room after {attempts} attempts: {exc}") from None
            await asyncio.sleep(REJOIN_INTERVAL * random.uniform(0.8, 1.2))  # not all in step

    async def _drop_socket(self) -> None:
        """Forget the current socket (its node may be gone): closed without waiting for an answer."""
        await self.drop()
        self.sio = None

    async def ask(self, event: str, data: Any = None, timeout: float = 30) -> dict:
        return await super().ask(event, data if data is not None else {}, timeout)

    async def call(self, event: str, data: Any = None, timeout: float = 30) -> Any:
        answer = await self.ask(event, data, timeout)
        if not answer.get("ok"):
            raise ProtocolError(f"{event}: {answer.get('error')}")
        return answer.get("data")

    async def close(self) -> None:
        await self.leave_socket()
        if self.http is not None:
            await self.http.close()
