"""The live room's Socket.IO server: namespace /live, msgpack, every client presents a join token."""
from __future__ import annotations

import logging
from typing import Any

import socketio

from signaling.join_token import JoinClaims, JoinTokenError, SpentTokens, accept_join_token

log = logging.getLogger(__name__)

NAMESPACE = "/live"


class LiveServer:
    """Owns the Socket.IO server and the rooms of this node."""

    def __init__(self, *, secret: str, spent_tokens: SpentTokens, client_manager: Any = None):
        self._secret = secret
        self._spent = spent_tokens
        self.sio = socketio.AsyncServer(async_mode="aiohttp", serializer="msgpack", cors_allowed_origins=[],
                                        client_manager=client_manager, max_http_buffer_size=1_000_000)
        self._ended_sessions: set[int] = set()
        self.sio.on("connect", self._on_connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    def attach(self, app, socketio_path: str = "socket.io") -> None:
        self.sio.attach(app, socketio_path=socketio_path)

    async def _on_connect(self, sid: str, environ: dict, auth: Any) -> None:
        auth = auth if isinstance(auth, dict) else {}
        try:
            claims = await accept_join_token(self._secret, auth.get("token"), self._spent, auth.get("session_id"))
        except JoinTokenError as exc:
            raise _refused(exc.code, exc.message) from None
        if claims.session_id in self._ended_sessions:
            raise _refused("session_ended", "The period has ended.")
        await self.sio.save_session(sid, {"claims": claims}, namespace=NAMESPACE)
        await self.sio.enter_room(sid, _room_name(claims.session_id), namespace=NAMESPACE)
        log.info("participant %s joined session %s as %s", claims.user_id, claims.session_id, claims.room_role)

    async def _on_disconnect(self, sid: str, *args: Any) -> None:
        pass

    async def claims_of(self, sid: str) -> JoinClaims:
        return (await self.sio.get_session(sid, namespace=NAMESPACE))["claims"]

    async def end_room(self, session_id: int) -> None:
        """End the period for everyone in it; nobody may join it again."""
        self._ended_sessions.add(session_id)
        room = _room_name(session_id)
        await self.sio.emit("room:ended", {"session_id": session_id}, room=room, namespace=NAMESPACE)
        await self.sio.close_room(room, namespace=NAMESPACE)


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    # Clients get connect_error with {message, data: {code, message}}.
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


def _room_name(session_id: int) -> str:
    return f"session:{session_id}"
