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


_REJOIN_FAILURES = {ProtocolError: "join_refused", asyncio.TimeoutError: "no_room_state"}


class Participant:
    def __init__(self, base_url: str, personal_id: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.personal_id, self.password = personal_id, password
        self.http: aiohttp.ClientSession | None = None
        self.csrf: str | None = None
        self.sio: socketio.AsyncClient | None = None
        self.participant_id: str | None = None
        self.resume_token: str | None = None  # the seat's, from room:state: back without the lobby
        self.join: dict | None = None  # the last /join answer (connect.node: the node hosting the room)
        self.refusals: Counter = Counter()  # connect_error codes seen (wrong_node, node_moving, ...)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()
        self._handlers: dict[str, Callable[[Any], None]] = {}

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
        body = await self.request("POST", "/auth/login", json={"personal_id": self.personal_id,
                                                               "password": self.password})
        self.csrf = body["csrf_token"]

    async def start_period(self, period_id: int) -> dict:
        """The period's session, as the API answers it (`id`, and `node`: where it was placed)."""
        return await self.request("POST", f"/periods/{period_id}/start")

    # -- Socket.IO
    def on(self, event: str, handler: Callable[[Any], None]) -> None:
        """Run `handler(data)` as soon as `event` arrives (before it is recorded)."""
        self._handlers[event] = handler

    async def connect(self, session_id: int, resume: bool = False) -> None:
        """/join, then Socket.IO to the node its answer names (with the seat's resume token if `resume`)."""
        join = self.join = await self.request("POST", f"/sessions/{session_id}/join")
        connect = join["connect"]
        auth = {"token": join["token"], "session_id": session_id}
        if resume and self.resume_token:
            auth["resume_token"] = self.resume_token
        self.sio = socketio.AsyncClient(serializer="msgpack", reconnection=False)
        self.sio.on("*", self._record, namespace=connect["namespace"])
        self.sio.on("connect_error", self._refused, namespace=connect["namespace"])
        await self.sio.connect(connect["url"], namespaces=[connect["namespace"]],
                               socketio_path=connect["socketio_path"], transports=["websocket"],
                               auth=auth, wait_timeout=30)

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
                return {"attempts": attempts, "node": self.join["connect"]["node"]}
            except (ProtocolError, aiohttp.ClientError, socketio.exceptions.ConnectionError,
                    asyncio.TimeoutError) as exc:
                if not isinstance(exc, socketio.exceptions.ConnectionError):  # (counted in _refused)
                    self.refusals[_REJOIN_FAILURES.get(type(exc), "http_error")] += 1
                if time.monotonic() + REJOIN_INTERVAL > deadline:
                    raise ProtocolError(f"not back in the room after {attempts} attempts: {exc}") from None
            await asyncio.sleep(REJOIN_INTERVAL * random.uniform(0.8, 1.2))  # not all in step

    async def _refused(self, data: Any = None) -> None:
        info = data.get("data", data) if isinstance(data, dict) else {}
        self.refusals[info.get("code") or "network"] += 1  # no code: the node did not answer

    async def _drop_socket(self) -> None:
        """Forget the current socket (its node may be gone): closed without waiting for an answer."""
        if self.sio is not None:
            try:
                await asyncio.wait_for(self.sio.eio.disconnect(abort=True), 2)
            except Exception:  # noqa: BLE001 - it is already dead, most of the time
                pass
            self.sio = None

    async def _record(self, event: str, data: Any = None) -> None:
        if event == "room:state":
            self.participant_id = data["you"]["participant_id"]
            self.resume_token = data["you"].get("resume_token")
        handler = self._handlers.get(event)
        if handler is not None:
            handler(data)
        async with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    async def ask(self, event: str, data: Any = None, timeout: float = 30) -> dict:
        """The request's answer as it came (`ok`, `data` or `error`); socketio's TimeoutError if none."""
        return await self.sio.call(event, data if data is not None else {}, namespace="/live", timeout=timeout)

    async def call(self, event: str, data: Any = None, timeout: float = 30) -> Any:
        answer = await self.ask(event, data, timeout)
        if not answer.get("ok"):
            raise ProtocolError(f"{event}: {answer.get('error')}")
        return answer.get("data")

    async def wait_for(self, event: str, where: Callable[[Any], bool] = lambda d: True,
                       timeout: float = 30, after: int = 0) -> Any:
        async def found():
            async with self._changed:
                while True:
                    for name, data in self.events[after:]:
                        if name == event and where(data):
                            return data
                    await self._changed.wait()
        return await asyncio.wait_for(found(), timeout)

    def mark(self) -> int:
        return len(self.events)

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            try:
                await asyncio.wait_for(self.sio.disconnect(), 5)
            except Exception:  # noqa: BLE001 - leaving at the end of a run
                pass
        if self.http is not None:
            await self.http.close()
