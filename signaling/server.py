"""The live room's Socket.IO server: namespace /live, msgpack, every client presents a join token.

This module only translates between Socket.IO and `Room`: it checks tokens on connect, validates
payloads, answers every request with an acknowledgement, and delivers what the room leaves in its
outbox. All room rules live in room.py and policy.py.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable

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
from signaling.room_state import restore, snapshot, was_connected
from signaling.router import LocalRouter, Router

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
                 record_students: bool = True, router: Router | None = None,
                 recover_recordings: Callable[[int], list[dict]] | None = None,
                 on_drain_requested: Callable[[], None] | None = None, drain_timeout: float = 30.0):
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
        # Cluster: where sessions live and commands to them (LocalRouter: this process alone).
        self.router = router or LocalRouter("local", "")
        self.router.bind(self)
        self._recover_recordings = recover_recordings  # session id → manifests of a dead node's files
        self._on_drain_requested = on_drain_requested
        self._drain_timeout = drain_timeout  # a drain hands its rooms over within this time
        self._opening: dict[int, asyncio.Lock] = {}
        self._released: set[int] = set()  # ended rooms whose placement is forgotten
        self._moved: set[int] = set()  # rooms handed to another node (their state is not saved again)
        self._moving = False  # draining: rooms are moving away, nobody new gets in
        self._recording_notice: dict[int, str] = {}  # session → why a recording restarted (told to the teacher)
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


    async def _open_room(self, session_id: int, lost_at: float | None = None, from_node: str | None = None) -> Room:
        """The session's room on this node: open already, restored from the state its previous node
        saved (a take-over), or new."""
        if session_id in self.rooms:
            return self.rooms[session_id]
        async with self._opening.setdefault(session_id, asyncio.Lock()):
            if session_id in self.rooms:
                return self.rooms[session_id]
            state = await self.router.load_room(session_id)
            room = Room(session_id, self._sink, grace_seconds=self._grace, sees_classmates=self._sees_classmates)
            if state is not None and not state.get("ended"):
                await self._take_over(room, state, lost_at, from_node)
            # Only now: nobody enters a room whose take-over (its recording) is not complete.
            self.rooms[session_id] = room
        self._opening.pop(session_id, None)
        return room

    async def _take_over(self, room: Room, state: dict, lost_at: float | None, from_node: str | None) -> None:
        """Restore a room another node hosted: everyone admitted keeps their seat (back without the lobby
        within the grace period); after a node loss their attendance closes at its last heartbeat; a
        recording that was running goes on here as a new recording."""
        seats = restore(room, state)
        if lost_at is not None:
            connected = was_connected(state)
            for seat in seats:
                if seat.user_id in connected:
                    self._sink.emit(ev.RoomEvent(room.session_id, ev.PARTICIPANT_DROPPED, seat.user_id, seat.user_id,
                                                 {"reason": "node_lost", "node": from_node}, lost_at))
        for seat in seats:
            self._schedule(room.grace_seconds, self._expire, room, seat)
        log.info("session %s taken over from %s (%d people keep their seats; recording: %s)", room.session_id,
                 from_node, len(seats), state.get("recording_state"))
        if state.get("recording_state", "off") != "off" and self._recorder_factory and self._media:
            reason = "node_lost" if lost_at is not None else "node_moved"
            if lost_at is not None and self._recover_recordings is not None:
                # The dead node's files end where it died: repaired, checksummed and listed.
                for manifest in await asyncio.to_thread(self._recover_recordings, room.session_id):
                    room._event(ev.RECORDING_SAVED, None, None, manifest=manifest)
            async with room.media_lock:
                try:
                    current = await self._start_recording(room, None, reason)
                except RoomError as exc:
                    log.warning("recording of session %s not resumed: %s", room.session_id, exc.message)
                else:
                    if state["recording_state"] == "paused" and current.pause():
                        recording.announce(room, None, current, event=ev.REC_PAUSED)
                    self._recording_notice[room.session_id] = reason
        await self._settle(room)

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
        """After any change: deliver what the room said, save its state for a take-over, then bring the
        media plane in step with it."""
        await self._flush(room, requester)
        await self._save_state(room)
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

    async def _save_state(self, room: Room) -> None:
        if room.session_id in self._moved:
            return
        if not room.ended:
            self.router.room_changed(room.session_id, lambda: snapshot(room))
        elif room.session_id not in self._released:
            self._released.add(room.session_id)
            try:
                await self.router.release(room.session_id)
            except Exception as exc:  # noqa: BLE001 - the room has ended anyway; the placement expires with it
                log.warning("session %s: placement not released (%s)", room.session_id, type(exc).__name__)

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
            room = await self._room_for_connection(claims.session_id)
            self._pending[sid] = []
            participant = room.arrive(sid, claims, auth.get("resume_token"))
        except (JoinTokenError, RoomError) as exc:
            self._pending.pop(sid, None)
            raise _refused(exc.code, exc.message) from None
        self._room_of_sid[sid] = claims.session_id
        if participant.role == "teacher" and participant.state == "admitted" and \
                room.session_id in self._recording_notice:
            # The teacher learns that the recording went on as a new recording on this node.
            current = self._recordings.get(room.session_id)
            room._send(participant, "rec:status",
                       recording.status(room, current, self._recording_notice.pop(room.session_id)))
        await self._settle(room)
        asyncio.get_running_loop().create_task(self._release_pending(sid))
        log.info("user %s connected to session %s as %s", claims.user_id, claims.session_id, claims.room_role)

    async def _room_for_connection(self, session_id: int) -> Room:
        """The room, if this node hosts the session; a client sent to the wrong node joins again."""
        if self._moving:
            raise RoomError("node_moving", "This server is handing its classes to another one; join again.")
        if session_id not in self.rooms:
            owner = await self.router.place(session_id)
            if owner.node_id != self.router.node_id:
                raise RoomError("wrong_node", "This period is hosted by another server; join again.")
        return await self._open_room(session_id)

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
        if room.session_id in self._moved:
            return  # the node that took the room over keeps the seat now
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
            return recording.status(room, await self._start_recording(room, teacher))

    async def _start_recording(self, room: Room, by: Participant | None, reason: str | None = None) -> RoomRecording:
        """Start recording the room (under its media lock); `reason` when the server restarts it."""
        recorder = self._recorder_factory(room.session_id, lambda why: self._recorder_stopped(room, why))
        try:
            await recorder.start()
        except RecordingRefused as exc:  # e.g. low_disk_space: the teacher is told why
            raise RoomError(exc.code, exc.message) from None
        current = self._recordings[room.session_id] = RoomRecording(
            room, recorder, lambda pid: peer_id(room, pid), students=self._record_students)
        current.sync()
        recording.announce(room, by, current, reason)
        return current

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

    # -- commands: run here for the router, whichever node they came from ----------------------------
    async def run_command(self, name: str, args: dict[str, Any]) -> Any:
        """A command to this node's rooms (signaling/router.py); RoomError refuses it."""
        commands = {"end_room": self.end_room, "share_handout": self.share_handout, "drop_user": self.drop_user,
                    "user_present": self.user_present, "adopt": self.adopt, "drain": self.request_drain,
                    "live_sessions": self._live_sessions_command, "evict": self.evict}
        command = commands.get(name)
        if command is None:
            raise RoomError("unknown_command", f"Unknown command {name!r}.")
        return await command(**args)

    def load(self) -> dict[str, int]:
        rooms = [r for r in self.rooms.values() if not r.ended]
        return {"rooms": len(rooms),
                "participants": sum(1 for r in rooms for p in r.participants.values() if p.connected)}

    def live_sessions(self) -> list[int]:
        return sorted(sid for sid, room in self.rooms.items() if not room.ended)

    async def _live_sessions_command(self) -> list[int]:
        return self.live_sessions()

    def census(self) -> dict[tuple[str, str], int]:
        """People in this node's rooms by room role and state (admitted, lobby, reconnecting)."""
        counts: dict[tuple[str, str], int] = {}
        for room in self.rooms.values():
            if room.ended:
                continue
            for p in room.participants.values():
                if p.state != "gone":
                    key = (p.role, p.state if p.connected else "reconnecting")
                    counts[key] = counts.get(key, 0) + 1
        return counts

    async def end_room(self, session_id: int, by_user_id: int | None = None, by_name: str | None = None) -> None:
        """End the period for everyone in it (ended over HTTP by `by_user_id`); nobody may join it again."""
        room = await self._open_room(session_id)
        room.end(None, by_user_id, by_name)
        await self._settle(room)

    async def drop_user(self, user_id: int, reason: str = "logged_out") -> int:
        """The account logged out, or lost its right to be here: its connections close now, in every
        room of this node. Returns how many seats it lost."""
        dropped = 0
        for room in list(self.rooms.values()):
            if room.remove_user(user_id, reason):
                dropped += 1
                await self._settle(room)
        return dropped

    async def user_logged_out(self, user_id: int) -> None:
        await self.drop_user(user_id, "logged_out")

    async def user_present(self, session_id: int, user_id: int) -> bool:
        room = self.rooms.get(session_id)
        return room is not None and any(p.user_id == user_id for p in room.present())

    async def share_handout(self, session_id: int, uploader_user_id: int, handout: dict) -> dict:
        room = self.rooms.get(session_id)
        if room is None:
            raise RoomError("not_in_room", "Join the room before handing out material.")
        message = room.share_handout(uploader_user_id, handout)
        await self._settle(room)
        return {"message_id": message["message_id"]}

    async def adopt(self, session_id: int, lost_at: float | None = None, from_node: str | None = None) -> None:
        """The router moved the session here (its node died or drained): open its room now."""
        await self._open_room(session_id, lost_at, from_node)

    async def evict(self, session_id: int) -> None:
        """This node was taken for dead (cut off from the cluster longer than the node TTL) and the session
        now lives on another node: close the room here so that its people join it there. Nothing is
        written to the records from here any more: the node that took the room over keeps them."""
        room = self.rooms.get(session_id)
        if room is None or room.ended:
            return
        log.warning("session %s was moved to another node while this one was unreachable: closing it here",
                    session_id)
        self._moved.add(session_id)
        if session_id in self._recordings:  # what was recorded here is finished and listed all the same
            async with room.media_lock:
                await self._stop_recording(room, None, "node_moving")
        room.sink = _DISCARD  # the other node closed these people's attendance at this node's last heartbeat
        for participant in list(room.participants.values()):
            if participant.state != "gone" and participant.sid is not None:
                room._send(participant, "room:closing", {
                    "reason": "node_moving", "message": "Moving the class to another server; reconnecting…"}, True)
                room.leave(participant, "node_moving")
        await self._settle(room)
        self.rooms.pop(session_id, None)
        await self.router.unplace(session_id)

    async def request_drain(self) -> None:
        """An admin asked this node to drain: it moves its rooms away and exits (as on SIGTERM)."""
        if self._on_drain_requested is None:
            raise RoomError("no_other_node", "This server cannot be drained.")
        asyncio.get_running_loop().call_later(0.2, self._on_drain_requested)

    async def close(self) -> None:
        """Server shutdown. Alone: everyone leaves now, so their attendance closes at this moment. In a
        cluster: the rooms move to other nodes and everyone reconnects there without the lobby."""
        if getattr(self, "_quality_task", None):
            self._quality_task.cancel()
        if self.router.moves_rooms:
            await self._move_rooms()
        for room in list(self.rooms.values()):
            if room.session_id in self._recordings:  # a shutdown finishes the recording properly
                async with room.media_lock:
                    await self._stop_recording(room, None, "server_stopped")
        for handle in list(self._timers):
            handle.cancel()
        for room in self.rooms.values():
            if room.session_id in self._moved:
                continue  # handed over (or being): its people keep their seats on the next node
            for participant in list(room.participants.values()):
                if participant.state != "gone":
                    room._send(participant, "room:closing", {
                        "reason": "server_stopped",
                        "message": "The server is restarting; reconnect in a moment."}, True)
                    room.leave(participant, "server_stopped")
            await self._settle(room)

    async def _move_rooms(self) -> None:
        """Drain: hand every room to another node. First, at once, each room's state is saved (with the
        recording that must go on) and only then is everyone told and disconnected, so whoever joins
        again finds the room; then, within the drain timeout, recordings are finished here and each
        session is placed on another node, which opens the room before people arrive."""
        self._moving = True
        await self.router.begin_drain()
        moving = [r for r in self.rooms.values() if not r.ended]
        for room in moving:
            self._close_for_move(room)
        await self.router.flush_rooms()
        for room in moving:
            self._moved.add(room.session_id)
            await self._settle(room)
        try:
            await asyncio.wait_for(asyncio.gather(*(self._hand_over(room) for room in moving)), self._drain_timeout)
        except asyncio.TimeoutError:
            log.warning("drain timeout (%g s): the remaining sessions are placed when people join again",
                        self._drain_timeout)

    def _close_for_move(self, room: Room) -> None:
        was_recording = (room.recording_state, room.students_recorded)
        for participant in list(room.participants.values()):
            if participant.state == "gone" or participant.sid is None:
                continue
            room._send(participant, "room:closing", {
                "reason": "node_moving", "message": "Moving the class to another server; reconnecting…"}, True)
            if participant.state == "lobby":
                room.leave(participant, "node_moving")
            else:
                room.disconnected(participant.sid, reason="node_moving")
        state = snapshot(room)
        state["recording_state"], state["students_recorded"] = was_recording
        self.router.room_changed(room.session_id, lambda: state)

    async def _hand_over(self, room: Room) -> None:
        if room.session_id in self._recordings:
            async with room.media_lock:
                await self._stop_recording(room, None, "node_moving")
            await self._flush(room)
        self.rooms.pop(room.session_id, None)
        try:
            # This node is draining: the least-loaded other node takes the session and opens its room
            # before people arrive.
            await self.router.place(room.session_id)
        except RoomError as exc:
            log.warning("session %s left unplaced (%s): the next join places it", room.session_id, exc.message)
            with contextlib.suppress(RoomError):
                await self.router.unplace(room.session_id)
        log.info("session %s moved away", room.session_id)


class _Discard:
    """The sink of a room this node no longer owns: its events are not records any more."""

    def emit(self, event: ev.RoomEvent) -> None:
        pass


_DISCARD = _Discard()


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    # Clients get connect_error with {message, data: {code, message}}.
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})
