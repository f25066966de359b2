"""A participant of a live room as a benchmark client sees it: HTTP login and join, then the
Socket.IO protocol of docs/protocol.md (namespace /live, msgpack, every request acknowledged)."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import aiohttp
import socketio

API = "/api/v1"


class ProtocolError(Exception):
    pass


class Participant:
    def __init__(self, base_url: str, personal_id: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.personal_id, self.password = personal_id, password
        self.http: aiohttp.ClientSession | None = None
        self.csrf: str | None = None
        self.sio: socketio.AsyncClient | None = None
        self.participant_id: str | None = None
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

    async def start_period(self, period_id: int) -> int:
        return (await self.request("POST", f"/periods/{period_id}/start"))["id"]

    # -- Socket.IO
    def on(self, event: str, handler: Callable[[Any], None]) -> None:
        """Run `handler(data)` as soon as `event` arrives (before it is recorded)."""
        self._handlers[event] = handler

    async def connect(self, session_id: int) -> None:
        join = await self.request("POST", f"/sessions/{session_id}/join")
        self.sio = socketio.AsyncClient(serializer="msgpack", reconnection=False)
        self.sio.on("*", self._record, namespace=join["connect"]["namespace"])
        await self.sio.connect(join["connect"]["url"], namespaces=[join["connect"]["namespace"]],
                               socketio_path=join["connect"]["socketio_path"], transports=["websocket"],
                               auth={"token": join["token"], "session_id": session_id}, wait_timeout=30)

    async def _record(self, event: str, data: Any = None) -> None:
        if event == "room:state":
            self.participant_id = data["you"]["participant_id"]
        handler = self._handlers.get(event)
        if handler is not None:
            handler(data)
        async with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    async def call(self, event: str, data: Any = None, timeout: float = 30) -> Any:
        answer = await self.sio.call(event, data if data is not None else {}, namespace="/live",
                                     timeout=timeout)
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
