"""The live room's Socket.IO server: namespace /live, msgpack, every client presents a join token.

This module only translates between Socket.IO and `Room`: it checks tokens on connect, validates
payloads, answers every request with an acknowledgement, and delivers what the room leaves in its
outbox. All room rules live in room.py and policy.py.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgpack
import socketio
from socketio.msgpack_packet import MsgPackPacket

from signaling import protocol as proto
from signaling.events import EventSink
from signaling import events as ev
from signaling import recording
from signaling.media_bridge import MediaBridge, peer_id
from recordings import RecordingRefused
from signaling.recording import RecorderFactory, RoomRecording
from signaling.join_token import JoinTokenError, SpentTokens, accept_join_token
from signaling.protocol import RoomError, ok
from signaling.room import Participant, Room

log = logging.getLogger(__name__)

NAMESPACE = "/live"

# Client → server requests and their payloads. Anything else is answered unknown_event.
REQUESTS: dict[str, type[proto.Payload]] = {
    "room:sync": proto.Empty,
    "room:leave": proto.Empty,
    "room:end": proto.Empty,
    "lobby:admit": proto.AdmitRequest,
    "lobby:deny": proto.DenyRequest,
    "chat:send": proto.ChatSend,
    "chat:delete": proto.ChatDelete,
    "hand:raise": proto.Empty,
    "hand:lower": proto.HandLower,
    "media:state": proto.MediaState,
    "mod:mute": proto.MuteRequest,
    "mod:kick": proto.KickRequest,
    "mod:lock": proto.LockRequest,
    "mod:permit": proto.PermitRequest,
    "rec:start": proto.Empty,
    "rec:stop": proto.Empty,
    "rec:pause": proto.Empty,
    "rec:resume": proto.Empty,
    "mod:stage": proto.StageRequest,
    "rtc:publish": proto.PublishRequest,
    "rtc:subscribe": proto.Empty,
    "rtc:answer": proto.AnswerRequest,
    "rtc:candidate": proto.CandidateRequest,
}
MEDIA_REQUESTS = {"rtc:publish", "rtc:subscribe", "rtc:answer", "rtc:candidate"}
RECORDING_REQUESTS = {"rec:start", "rec:stop", "rec:pause", "rec:resume"}


class _LenientMsgPackPacket(MsgPackPacket):
    """msgpack as python-socketio speaks it, but maps with non-string keys decode too: such a request
    then gets its invalid_payload answer instead of being dropped unanswered."""

    def decode(self, encoded_packet):
        decoded = msgpack.loads(encoded_packet, ext_hook=self.__class__.ext_hook, strict_map_key=False)
        self.packet_type = decoded["type"]
        self.data = decoded.get("data")
        self.id = decoded.get("id")
        self.namespace = decoded["nsp"]


class LiveServer:
    """Owns the Socket.IO server and the rooms of this node."""

    def __init__(self, *, secret: str, spent_tokens: SpentTokens, sink: EventSink, grace_seconds: float = 60.0,
                 allowed_origins: list[str] | None = None, media: MediaBridge | None = None,
                 sees_classmates: bool = False, quality_interval: float = 5.0,
                 recorder_factory: RecorderFactory | None = None, client_manager: Any = None,
                 record_students: bool = True):
        self._secret = secret
        self._media = media  # None: a server without media (rtc:* answered media_unavailable)
        self._sees_classmates = sees_classmates
        self._quality_interval = quality_interval
        self._recorder_factory = recorder_factory  # None: rec:start answers recording_unavailable
        self._recordings: dict[int, RoomRecording] = {}
        self._record_students = record_students  # False: recordings hold the teacher's tracks only
        self._spent = spent_tokens
        self._sink = sink
        self._grace = grace_seconds
        # The engine's own limit (1 MB) closes a connection; ours (64 KB) only refuses the request.
        # Origins: the server's own, plus any configured (None = same origin only; [] would disable the check).
        self.sio = socketio.AsyncServer(async_mode="aiohttp", serializer=_LenientMsgPackPacket,
                                        cors_allowed_origins=allowed_origins or None,
                                        client_manager=client_manager, max_http_buffer_size=1_000_000)
        self.rooms: dict[int, Room] = {}
        self._room_of_sid: dict[str, int] = {}
        self._pending: dict[str, list] = {}  # messages for connections whose CONNECT is not sent yet
        self._timers: set[asyncio.TimerHandle] = set()
        self.sio.on("connect", self._on_connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        self.sio.on("*", self._on_request, namespace=NAMESPACE)

    @property
    def media(self) -> MediaBridge | None:
        return self._media

    def attach(self, app, socketio_path: str = "socket.io") -> None:
        self.sio.attach(app, socketio_path=socketio_path)

    def room(self, session_id: int) -> Room:
        if session_id not in self.rooms:
            self.rooms[session_id] = Room(session_id, self._sink, grace_seconds=self._grace,
                                          sees_classmates=self._sees_classmates)
        return self.rooms[session_id]

    # -- delivery ------------------------------------------------------------------------------------
    async def _flush(self, room: Room, requester: str | None = None) -> None:
        # One delivery at a time per room: sending yields, and two requests handled at once must not
        # interleave their messages (clients rely on the order of versions).
        async with room.delivery_lock:
            outbox, room.outbox = room.outbox, []
            for out in outbox:
                if out.sid in self._pending:
                    self._pending[out.sid].append(out)
                    continue
                await self._deliver(out, requester)

    async def _settle(self, room: Room, requester: str | None = None) -> None:
        """After any change: deliver what the room said, then bring the media plane in step with it."""
        await self._flush(room, requester)
        if self._media is None:
            return
        room.media_changes += 1
        wanted = room.media_changes
        async with room.media_lock:
            # Skipped when an apply that began after this change ran while we waited (a join storm:
            # one plan for many requests, not one per request).
            if room.media_applied < wanted:
                room.media_applied = room.media_changes
                await self._apply_media(room)
        await self._flush(room, requester)

    async def _apply_media(self, room: Room) -> None:
        """Bring the media plane and the recording in step with the room (under its media lock)."""
        for participant, slots in await self._media.apply(room):
            room._send(participant, "rtc:slots", {"slots": slots})
        recording = self._recordings.get(room.session_id)
        if recording is not None:
            if room.ended:
                await self._stop_recording(room, None)
            else:
                recording.sync()

    async def _deliver(self, out, requester: str | None = None) -> None:
        await self.sio.emit(out.event, out.data, to=out.sid, namespace=NAMESPACE)
        if out.disconnect_after:
            self._room_of_sid.pop(out.sid, None)
            if out.sid == requester:
                # The requester still gets its acknowledgement, sent when the handler returns.
                self._schedule(1.0, self.sio.disconnect, out.sid, NAMESPACE)
            else:
                await self.sio.disconnect(out.sid, namespace=NAMESPACE)

    async def _release_pending(self, sid: str) -> None:
        # python-socketio sends CONNECT after the connect handler returns: wait for it, then deliver
        # what the room already said to this connection, in order.
        for _ in range(200):
            if self.sio.manager.is_connected(sid, NAMESPACE):
                break
            await asyncio.sleep(0.005)
        for out in self._pending.pop(sid, []):
            await self._deliver(out)

    # -- connection ----------------------------------------------------------------------------------
    # python-socketio also hands a client's *event* named "connect" or "disconnect" to these handlers.
    # Such an event comes on an established connection; a real connect or disconnect never does (the
    # library marks the connection pending first), so it is answered as the unknown request it is.
    async def _on_connect(self, sid: str, environ: Any = None, auth: Any = None, *extra: Any) -> dict | None:
        if self.sio.manager.is_connected(sid, NAMESPACE):
            return RoomError("unknown_event", "Unknown request 'connect'.").answer()
        auth = auth if isinstance(auth, dict) else {}
        try:
            claims = await accept_join_token(self._secret, auth.get("token"), self._spent, auth.get("session_id"))
            room = self.room(claims.session_id)
            self._pending[sid] = []
            room.arrive(sid, claims, auth.get("resume_token"))
        except (JoinTokenError, RoomError) as exc:
            self._pending.pop(sid, None)
            raise _refused(exc.code, exc.message) from None
        self._room_of_sid[sid] = claims.session_id
        await self._settle(room)
        asyncio.get_running_loop().create_task(self._release_pending(sid))
        log.info("user %s connected to session %s as %s", claims.user_id, claims.session_id, claims.room_role)

    async def _on_disconnect(self, sid: str, *args: Any) -> dict | None:
        if self.sio.manager.is_connected(sid, NAMESPACE):
            return RoomError("unknown_event", "Unknown request 'disconnect'.").answer()
        self._pending.pop(sid, None)
        session_id = self._room_of_sid.pop(sid, None)
        if session_id is None or session_id not in self.rooms:
            return
        room = self.rooms[session_id]
        dropped = room.disconnected(sid)
        await self._settle(room)
        if dropped is not None:
            self._schedule(room.grace_seconds, self._expire, room, dropped)

    def _schedule(self, delay: float, coroutine_function, *args: Any) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            asyncio.ensure_future(coroutine_function(*args))
        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    async def _expire(self, room: Room, participant: Participant) -> None:
        if room.expire_seat(participant.participant_id):
            await self._settle(room)

    # -- requests ------------------------------------------------------------------------------------
    async def _on_request(self, event: str, sid: Any = None, data: Any = None, *extra: Any) -> dict:
        """Every request gets exactly one answer; nothing a client sends can break the room."""
        # An event literally named "*" comes without its name (python-socketio calls this handler as
        # the one for "*"): `event` is then the sid, never a request, so it is answered unknown_event.
        try:
            return await self._handle(event, sid, data)
        except RoomError as exc:
            return exc.answer()
        except Exception:  # noqa: BLE001 - a bug must not drop the connection or harm the room
            log.exception("request %r failed", event)
            return RoomError("internal_error", "The server could not handle this request; it has been logged.").answer()

    async def _handle(self, event: str, sid: str, data: Any) -> dict:
        model = REQUESTS.get(event) if isinstance(event, str) else None
        if model is None:
            raise RoomError("unknown_event", f"Unknown request {str(event)[:64]!r}.")
        if len(msgpack.packb(data, default=str)) > proto.MAX_PAYLOAD_BYTES:
            raise RoomError("payload_too_large", f"The request is larger than {proto.MAX_PAYLOAD_BYTES} bytes.")
        payload = proto.parse(model, data)
        session_id = self._room_of_sid.get(sid)
        room = self.rooms.get(session_id) if session_id is not None else None
        participant = room.by_sid(sid) if room else None
        if participant is None:
            raise RoomError("not_in_room", "You are not in a room; join again.")
        try:
            if event in MEDIA_REQUESTS:
                result = await self._media_request(room, participant, event, payload)
            elif event in RECORDING_REQUESTS:
                result = await self._recording_request(room, participant, event)
            else:
                result = room.handle(participant, event, payload)
        finally:
            await self._settle(room, requester=sid)
        return ok(result)

    async def _media_request(self, room: Room, participant: Participant, event: str, payload) -> Any:
        room.authorize(participant, event, payload)
        if self._media is None:
            raise RoomError("media_unavailable", "Audio and video are not available on this server.")
        async with room.media_lock:
            if event == "rtc:publish":
                return await self._media.publish(room, participant, payload)
            if event == "rtc:subscribe":
                offer = await self._media.subscribe(room, participant)
                room._send(participant, "rtc:offer", offer)  # before the rtc:slots that fill it
                return None
            if event == "rtc:answer":
                return await self._media.answer(room, participant, payload)
            return await self._media.candidate(room, participant, payload)

    # -- recording -----------------------------------------------------------------------------------
    async def _recording_request(self, room: Room, teacher: Participant, event: str) -> dict:
        room.authorize(teacher, event, None)
        if self._recorder_factory is None or self._media is None:
            raise recording.refuse_unavailable()
        async with room.media_lock:
            current = self._recordings.get(room.session_id)
            if event == "rec:stop":
                if current is not None:
                    await self._stop_recording(room, teacher)
                return recording.status(room, None)
            if event in ("rec:pause", "rec:resume"):
                if current is None:
                    raise recording.refuse_not_recording()
                changed = current.pause() if event == "rec:pause" else current.resume()
                if changed:  # pausing a paused recording, or resuming a running one, changes nothing
                    recording.announce(room, teacher, current,
                                       event=ev.REC_PAUSED if event == "rec:pause" else ev.REC_RESUMED)
                return recording.status(room, current)
            if current is not None:
                return recording.status(room, current)
            recorder = self._recorder_factory(room.session_id, lambda reason: self._recorder_stopped(room, reason))
            try:
                await recorder.start()
            except RecordingRefused as exc:  # e.g. low_disk_space: the teacher is told why
                raise RoomError(exc.code, exc.message) from None
            current = self._recordings[room.session_id] = RoomRecording(
                room, recorder, lambda pid: peer_id(room, pid), students=self._record_students)
            current.sync()
            recording.announce(room, teacher, current)
            return recording.status(room, current)

    async def _stop_recording(self, room: Room, by: Participant | None, reason: str | None = None) -> None:
        current = self._recordings.pop(room.session_id, None)
        if current is None:
            return
        manifest = await current.recorder.stop()
        recording.announce(room, by, None, reason)
        room._event(ev.RECORDING_SAVED, by, None, manifest=manifest)

    def _recorder_stopped(self, room: Room, reason: str) -> None:
        """The recorder stopped by itself (a full disk): finish it and tell everyone why."""
        async def finish() -> None:
            async with room.media_lock:
                await self._stop_recording(room, None, reason)
            await self._settle(room)
        asyncio.get_running_loop().create_task(finish())

    # -- connection quality for the teacher ----------------------------------------------------------
    def start_quality_reports(self) -> None:
        """Every few seconds the teacher learns each student's connection quality (room:quality)."""
        if self._media is not None:
            self._quality_task = asyncio.get_running_loop().create_task(self._report_quality())

    async def _report_quality(self) -> None:
        while True:
            await asyncio.sleep(self._quality_interval)
            for room in list(self.rooms.values()):
                try:
                    teachers = [t for t in room.teachers() if t.connected]
                    if not teachers or room.ended:
                        continue
                    report = {pid: q for pid, q in self._media.quality(room).items()
                              if room.participants[pid].role != "teacher"}
                    for teacher in teachers:
                        room._send(teacher, "room:quality", {"participants": report})
                    await self._flush(room)
                except Exception:  # noqa: BLE001 - a report must never stop the reports
                    log.exception("quality report failed")

    # -- called by the application -------------------------------------------------------------------
    async def end_room(self, session_id: int, by_user_id: int | None = None, by_name: str | None = None) -> None:
        """End the period for everyone in it (ended over HTTP by `by_user_id`); nobody may join it again."""
        room = self.room(session_id)
        room.end(None, by_user_id, by_name)
        await self._settle(room)

    async def user_logged_out(self, user_id: int) -> None:
        for room in self.rooms.values():
            if room.logged_out(user_id):
                await self._settle(room)

    async def share_handout(self, session_id: int, uploader_user_id: int, handout: dict) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            raise RoomError("not_in_room", "Join the room before handing out material.")
        room.share_handout(uploader_user_id, handout)
        await self._settle(room)

    async def close(self) -> None:
        """Server shutdown: everyone present leaves now, so their attendance closes at this moment."""
        if getattr(self, "_quality_task", None):
            self._quality_task.cancel()
        for room in list(self.rooms.values()):
            if room.session_id in self._recordings:  # a shutdown finishes the recording properly
                async with room.media_lock:
                    await self._stop_recording(room, None, "server_stopped")
        for handle in list(self._timers):
            handle.cancel()
        for room in self.rooms.values():
            for participant in list(room.participants.values()):
                if participant.state != "gone":
                    room._send(participant, "room:closing", {"message": "The server is restarting; "
                                                                        "reconnect in a moment."}, True)
                    room.leave(participant, "server_stopped")
            await self._settle(room)


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    # Clients get connect_error with {message, data: {code, message}}.
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})
