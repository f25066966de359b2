"""The live rooms' Socket.IO server on this node: namespace /live, msgpack, every client presents a join token.

This module translates between Socket.IO and the node's live rooms (live_room.py): it checks tokens on
connect, validates payloads, answers every request with an acknowledgement, and delivers what a room
leaves in its outbox. It also keeps this node's rooms in the cluster: it opens a room (taking it over
from the state another node saved), runs the router's commands, and hands its rooms over when it drains.
All room rules live in room.py and policy.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgpack
import socketio
from socketio.msgpack_packet import MsgPackPacket

from signaling import events as ev
from signaling import protocol as proto
from signaling import recording
from signaling.events import EventSink
from signaling.join_token import JoinClaims, JoinTokenError, SpentTokens, accept_join_token
from signaling.live_room import LiveRoom
from signaling.media_bridge import Engine, RoomMedia
from signaling.protocol import RoomError, ok
from signaling.recording import RecorderFactory
from signaling.room import Outgoing, Participant, Room
from signaling.room_state import restore, was_connected
from signaling.router import LocalRouter, Router

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

NAMESPACE = "/live"
# A client that vanished without closing its connection (a phone losing its network) is noticed within
# PING_INTERVAL + PING_TIMEOUT seconds instead of Engine.IO's 45: its attendance and the seat's grace
# period start when it really went.
PING_INTERVAL = 5
PING_TIMEOUT = 5
RECORDS_WAIT = 5.0  # seconds an answer waits for the records before it says they are delayed

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
    "media:saver": proto.SaverRequest,
    "media:grid": proto.GridRequest,
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
    "poll:open": proto.PollOpen,
    "poll:close": proto.PollRef,
    "poll:next": proto.PollRef,
    "poll:reveal": proto.PollReveal,
    "poll:answer": proto.PollAnswer,
}
MEDIA_REQUESTS = {"rtc:publish", "rtc:subscribe", "rtc:answer", "rtc:candidate"}
RECORDING_REQUESTS = {"rec:start", "rec:stop", "rec:pause", "rec:resume"}


def _records_refused() -> RoomError:
    return RoomError(
        "records_refused",
        "Done in the room, but the school's records refused to store it, so it "
        "is not kept; the server logged it. Sending it again makes a new one.",
    )


class _LenientMsgPackPacket(MsgPackPacket):  # type: ignore[misc]  # python-socketio has no type information
    """msgpack as python-socketio speaks it, but maps with non-string keys decode too: such a request
    then gets its invalid_payload answer instead of being dropped unanswered."""

    def decode(self, encoded_packet: bytes) -> None:
        decoded = msgpack.loads(encoded_packet, ext_hook=self.__class__.ext_hook, strict_map_key=False)
        self.packet_type = decoded["type"]
        self.data = decoded.get("data")
        self.id = decoded.get("id")
        self.namespace = decoded["nsp"]


class LiveServer:
    """Owns the Socket.IO server and the live rooms of this node."""

    def __init__(
        self,
        *,
        secret: str,
        spent_tokens: SpentTokens,
        sink: EventSink,
        grace_seconds: float = 60.0,
        allowed_origins: list[str] | None = None,
        media_engine: Engine | None = None,
        sees_classmates: bool = False,
        quality_interval: float = 5.0,
        recorder_factory: RecorderFactory | None = None,
        client_manager: Any = None,
        record_students: bool = True,
        router: Router | None = None,
        recover_recordings: Callable[[int], list[dict[str, Any]]] | None = None,
        on_drain_requested: Callable[[], None] | None = None,
        drain_timeout: float = 30.0,
        admission: Callable[[JoinClaims], Awaitable[None]] | None = None,
    ):
        self._secret = secret
        self.media_engine = media_engine  # None: a server without media (rtc:* answered media_unavailable)
        self._sees_classmates = sees_classmates
        self._quality_interval = quality_interval
        self._recorder_factory = recorder_factory
        self._record_students = record_students
        self._spent = spent_tokens
        # Checks a join token's claims against the account's current state (active, still entitled to
        # this room role, the session still running); raises JoinTokenError to refuse.
        self._admission = admission
        self._sink = sink
        self._grace = grace_seconds
        # The engine's own limit (1 MB) closes a connection; ours (64 KB) only refuses the request.
        # Origins: the server's own, plus any configured (None = same origin only; [] would disable the check).
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            serializer=_LenientMsgPackPacket,
            cors_allowed_origins=allowed_origins or None,
            client_manager=client_manager,
            max_http_buffer_size=1_000_000,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
        )
        self.rooms: dict[int, LiveRoom] = {}
        # Cluster: where sessions live and commands to them (LocalRouter: this process alone).
        self.router = router or LocalRouter("local", "")
        self.router.bind(self)
        self._recover_recordings = recover_recordings  # session id → manifests of a dead node's files
        self._on_drain_requested = on_drain_requested
        self._drain_timeout = drain_timeout  # a drain hands its rooms over within this time
        self._opening: dict[int, asyncio.Lock] = {}
        self._moving = False  # draining: rooms are moving away, nobody new gets in
        self._room_of_sid: dict[str, int] = {}
        self._pending: dict[str, list[Outgoing]] = {}  # messages for connections whose CONNECT is not sent yet
        self._timers: set[asyncio.TimerHandle] = set()
        self.sio.on("connect", self._on_connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        self.sio.on("*", self._on_request, namespace=NAMESPACE)

    def attach(self, app: web.Application, socketio_path: str = "socket.io") -> None:
        self.sio.attach(app, socketio_path=socketio_path)

    # -- opening a room ------------------------------------------------------------------------------
    async def _open_room(self, session_id: int, lost_at: float | None = None, from_node: str | None = None) -> LiveRoom:
        """The session's room on this node: open already, restored from the state its previous node
        saved (a take-over), or new."""
        if session_id in self.rooms:
            return self.rooms[session_id]
        async with self._opening.setdefault(session_id, asyncio.Lock()):
            if session_id in self.rooms:
                return self.rooms[session_id]
            state = await self.router.load_room(session_id)
            room = Room(session_id, self._sink, grace_seconds=self._grace, sees_classmates=self._sees_classmates)
            live = LiveRoom(
                room,
                media=RoomMedia(self.media_engine, room) if self.media_engine else None,
                deliver=self._send_out,
                router=self.router,
                recorder_factory=self._recorder_factory,
                record_students=self._record_students,
            )
            if state is not None and not state.get("ended"):
                await self._take_over(live, state, lost_at, from_node)
            # Only now: nobody enters a room whose take-over (its recording) is not complete.
            self.rooms[session_id] = live
        self._opening.pop(session_id, None)
        return live

    async def _take_over(
        self, live: LiveRoom, state: dict[str, Any], lost_at: float | None, from_node: str | None
    ) -> None:
        """Restore a room another node hosted: everyone admitted keeps their seat (back without the lobby
        within the grace period); after a node loss their attendance closes at its last heartbeat; a
        recording that was running goes on here as a new recording."""
        room = live.room
        seats = restore(room, state)
        if lost_at is not None:
            connected = was_connected(state)
            for seat in seats:
                if seat.user_id in connected:
                    self._sink.emit(
                        ev.RoomEvent(
                            room.session_id,
                            ev.PARTICIPANT_DROPPED,
                            seat.user_id,
                            seat.user_id,
                            {"reason": "node_lost", "node": from_node},
                            lost_at,
                        )
                    )
        for seat in seats:
            self._schedule(room.grace_seconds, self._expire, live, seat)
        log.info(
            "session %s taken over from %s (%d people keep their seats; recording: %s)",
            room.session_id,
            from_node or "its saved state",
            len(seats),
            state.get("recording_state"),
        )
        if state.get("recording_state", "off") != "off" and live.can_record:
            reason = "node_lost" if lost_at is not None else "node_moved"
            if lost_at is not None and self._recover_recordings is not None:
                # The dead node's files end where it died: repaired, checksummed and listed.
                for manifest in await asyncio.to_thread(self._recover_recordings, room.session_id):
                    room._event(ev.RECORDING_SAVED, None, None, manifest=manifest)
            async with room.media_lock:
                try:
                    current = await live.start_recording(None, reason)
                except RoomError as exc:
                    log.warning("recording of session %s not resumed: %s", room.session_id, exc.message)
                else:
                    if state["recording_state"] == "paused" and current.pause():
                        recording.announce(room, None, current, event=ev.REC_PAUSED)
                    live.recording_notice = reason
        await live.settle()

    # -- delivery ------------------------------------------------------------------------------------
    async def _send_out(self, out: Outgoing, requester: str | None = None) -> None:
        if out.sid in self._pending:
            self._pending[out.sid].append(out)
        else:
            await self._deliver(out, requester)

    async def _deliver(self, out: Outgoing, requester: str | None = None) -> None:
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
    async def _on_connect(self, sid: str, environ: Any = None, auth: Any = None, *extra: Any) -> dict[str, Any] | None:
        if self.sio.manager.is_connected(sid, NAMESPACE):
            return RoomError("unknown_event", "Unknown request 'connect'.").answer()
        auth = auth if isinstance(auth, dict) else {}
        try:
            claims = await accept_join_token(self._secret, auth.get("token"), self._spent, auth.get("session_id"))
            if self._admission is not None:
                await self._admission(claims)
            live = await self._room_for_connection(claims.session_id)
            self._pending[sid] = []
            participant = live.room.arrive(sid, claims, auth.get("resume_token"))
        except (JoinTokenError, RoomError) as exc:
            self._pending.pop(sid, None)
            raise _refused(exc.code, exc.message, **getattr(exc, "extra", {})) from None
        self._room_of_sid[sid] = claims.session_id
        if participant.role == "teacher" and participant.state == "admitted" and live.recording_notice:
            # The teacher learns that the recording went on as a new recording on this node.
            live.room._send(participant, "rec:status", recording.status(live.recording, live.recording_notice))
            live.recording_notice = None
        await live.settle()
        asyncio.get_running_loop().create_task(self._release_pending(sid))
        log.info("user %s connected to session %s as %s", claims.user_id, claims.session_id, claims.room_role)
        return None

    async def _room_for_connection(self, session_id: int) -> LiveRoom:
        """The room, if this node hosts the session; a client sent to the wrong node joins again."""
        if self._moving:
            raise RoomError("node_moving", "This server is handing its classes to another one; join again.")
        if session_id not in self.rooms:
            owner = await self.router.place(session_id)
            if owner.node_id != self.router.node_id:
                raise RoomError("wrong_node", "This period is hosted by another server; join again.")
        return await self._open_room(session_id)

    async def _on_disconnect(self, sid: str, *args: Any) -> dict[str, Any] | None:
        if self.sio.manager.is_connected(sid, NAMESPACE):
            return RoomError("unknown_event", "Unknown request 'disconnect'.").answer()
        self._pending.pop(sid, None)
        session_id = self._room_of_sid.pop(sid, None)
        live = self.rooms.get(session_id) if session_id is not None else None
        if live is None:
            return None
        dropped = live.room.disconnected(sid)
        await live.settle()
        if dropped is not None:
            self._schedule(live.room.grace_seconds, self._expire, live, dropped)
        return None

    def _schedule(self, delay: float, coroutine_function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            asyncio.ensure_future(coroutine_function(*args))

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    async def _expire(self, live: LiveRoom, participant: Participant) -> None:
        if live.moved:
            return  # the node that took the room over keeps the seat now
        if live.room.expire_seat(participant.participant_id):
            await live.settle()

    # -- requests ------------------------------------------------------------------------------------
    async def _on_request(self, event: str, sid: Any = None, data: Any = None, *extra: Any) -> dict[str, Any]:
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

    async def _handle(self, event: str, sid: str, data: Any) -> dict[str, Any]:
        model = REQUESTS.get(event) if isinstance(event, str) else None
        if model is None:
            raise RoomError("unknown_event", f"Unknown request {str(event)[:64]!r}.")
        limit = proto.LARGER_PAYLOADS.get(event, proto.MAX_PAYLOAD_BYTES)
        if len(msgpack.packb(data, default=str)) > limit:
            raise RoomError("payload_too_large", f"The request is larger than {limit} bytes.")
        payload = proto.parse(model, data)
        session_id = self._room_of_sid.get(sid)
        live = self.rooms.get(session_id) if session_id is not None else None
        participant = live.room.by_sid(sid) if live else None
        if live is None or participant is None:
            raise RoomError("not_in_room", "You are not in a room; join again.")
        try:
            if event in MEDIA_REQUESTS:
                result = await live.media_request(participant, event, payload)
            elif event in RECORDING_REQUESTS:
                result = await live.recording_request(participant, event)
            else:
                result = live.room.handle(participant, event, payload)
        finally:
            await live.settle(requester=sid)  # the others are told at once; the answer waits for the records
        await self._recorded()
        return ok(result)

    async def _recorded(self) -> None:
        """An `ok` means the records hold what the request did: wait for the batch that holds it."""
        try:
            stored = await self._sink.written(RECORDS_WAIT)
        except ev.RecordsRefused:
            raise _records_refused() from None
        if not stored:
            raise RoomError(
                "records_delayed",
                "Done, but the school's records could not be saved yet; they are "
                "kept and saved as soon as the database answers.",
            )

    # -- connection quality for the teacher ----------------------------------------------------------
    def start_quality_reports(self) -> None:
        """Every few seconds the teacher learns each student's connection quality (room:quality)."""
        if self.media_engine is not None:
            self._quality_task = asyncio.get_running_loop().create_task(self._report_quality())

    async def _report_quality(self) -> None:
        while True:
            await asyncio.sleep(self._quality_interval)
            for live in list(self.rooms.values()):
                try:
                    live.quality_report()
                    await live.flush()
                except Exception:  # noqa: BLE001 - a report must never stop the reports
                    log.exception("quality report failed")

    # -- this node's load ----------------------------------------------------------------------------
    def _open_rooms(self) -> list[Room]:
        return [live.room for live in self.rooms.values() if not live.room.ended]

    def load(self) -> dict[str, int]:
        rooms = self._open_rooms()
        return {
            "rooms": len(rooms),
            "participants": sum(1 for r in rooms for p in r.participants.values() if p.connected),
        }

    def live_sessions(self) -> list[int]:
        return sorted(room.session_id for room in self._open_rooms())

    def census(self) -> dict[tuple[str, str], int]:
        """People in this node's rooms by room role and state (admitted, lobby, reconnecting)."""
        counts: dict[tuple[str, str], int] = {}
        for room in self._open_rooms():
            for p in room.participants.values():
                if p.state != "gone":
                    key = (p.role, p.state if p.connected else "reconnecting")
                    counts[key] = counts.get(key, 0) + 1
        return counts

    # -- commands: run here for the router, whichever node they came from ----------------------------
    async def run_command(self, name: str, args: dict[str, Any]) -> Any:
        """A command to this node's rooms (signaling/router.py); RoomError refuses it."""
        commands: dict[str, Callable[..., Awaitable[Any]]] = {
            "end_room": self.end_room,
            "share_handout": self.share_handout,
            "drop_user": self.drop_user,
            "user_present": self.user_present,
            "adopt": self.adopt,
            "drain": self.request_drain,
            "live_sessions": self._live_sessions_command,
            "evict": self.evict,
            "auto_end": self.auto_end,
            "resume_recording": self.resume_recording,
        }
        command = commands.get(name)
        if command is None:
            raise RoomError("unknown_command", f"Unknown command {name!r}.")
        result = await command(**args)
        try:
            await self._sink.written(RECORDS_WAIT)  # e.g. a handout's chat message is in the records when answered
        except ev.RecordsRefused:
            # Logged by the writer. A handout's announcement (a chat message) not in the records is not reported
            # as announced; other commands (adopt, drain, …) stand.
            if name == "share_handout":
                raise _records_refused() from None
        return result

    async def _live_sessions_command(self) -> list[int]:
        return self.live_sessions()

    async def end_room(self, session_id: int, by_user_id: int | None = None, by_name: str | None = None) -> None:
        """End the period for everyone in it (ended over HTTP by `by_user_id`); nobody may join it again."""
        live = await self._open_room(session_id)
        live.room.end(None, by_user_id, by_name)
        await live.settle()

    async def resume_recording(self, session_id: int, reason: str) -> bool:
        """The period was being recorded when the server stopped without finishing: record it again now, as
        a new recording (it takes the tracks as people come back); the teacher is told on return."""
        live = await self._open_room(session_id)
        if live.room.ended or live.recording is not None or not live.can_record:
            return False
        async with live.room.media_lock:
            await live.start_recording(None, reason)
        live.recording_notice = reason
        await live.settle()
        return True

    async def auto_end(self, session_id: int) -> bool:
        """The period is long over: end its room if nobody is in it (connected, or with a seat kept for a
        resume). True if it ended now."""
        live = await self._open_room(session_id)
        if live.room.ended or not live.room.abandoned:
            return False
        live.room.end(None, reason="auto_ended")
        await live.settle()
        return True

    async def drop_user(self, user_id: int, reason: str = "logged_out", session_id: int | None = None) -> int:
        """The account logged out, or lost its right to be here: its connections close now, in every
        room of this node (or in one session's). Returns how many seats it lost."""
        dropped = 0
        for live in list(self.rooms.values()):
            if session_id is not None and live.session_id != session_id:
                continue
            if live.room.remove_user(user_id, reason):
                dropped += 1
                await live.settle()
        return dropped

    async def user_present(self, session_id: int, user_id: int) -> bool:
        live = self.rooms.get(session_id)
        return live is not None and any(p.user_id == user_id for p in live.room.present())

    async def share_handout(self, session_id: int, uploader_user_id: int, handout: dict[str, Any]) -> dict[str, Any]:
        live = self.rooms.get(session_id)
        if live is None:
            raise RoomError("not_in_room", "Join the room before handing out material.")
        message = live.room.share_handout(uploader_user_id, handout)
        await live.settle()
        return {"message_id": message["message_id"]}

    async def adopt(self, session_id: int, lost_at: float | None = None, from_node: str | None = None) -> None:
        """The router moved the session here (its node died or drained): open its room now."""
        await self._open_room(session_id, lost_at, from_node)

    async def evict(self, session_id: int) -> None:
        """This node was taken for dead (cut off from the cluster longer than the node TTL) and the session
        now lives on another node: close the room here so that its people join it there."""
        live = self.rooms.get(session_id)
        if live is None or live.room.ended:
            return
        log.warning("session %s was moved to another node while this one was unreachable: closing it here", session_id)
        await live.give_up()
        self.rooms.pop(session_id, None)
        await self.router.unplace(session_id)

    async def request_drain(self) -> None:
        """An admin asked this node to drain: it moves its rooms away and exits (as on SIGTERM)."""
        if self._on_drain_requested is None:
            raise RoomError("no_other_node", "This server cannot be drained.")
        asyncio.get_running_loop().call_later(0.2, self._on_drain_requested)

    # -- shutdown ------------------------------------------------------------------------------------
    async def close(self) -> None:
        """Server shutdown. Alone: everyone leaves now, so their attendance closes at this moment. In a
        cluster: the rooms move to other nodes and everyone reconnects there without the lobby."""
        if getattr(self, "_quality_task", None):
            self._quality_task.cancel()
        if self.router.moves_rooms:
            await self._move_rooms()
        for live in list(self.rooms.values()):
            await live.finish_recording("server_stopped")  # a shutdown finishes the recording properly
        for handle in list(self._timers):
            handle.cancel()
        for live in self.rooms.values():
            if live.moved:
                continue  # handed over (or being): its people keep their seats on the next node
            room = live.room
            for participant in list(room.participants.values()):
                if participant.state != "gone":
                    room._send(
                        participant,
                        "room:closing",
                        {"reason": "server_stopped", "message": "The server is restarting; reconnect in a moment."},
                        True,
                    )
                    room.leave(participant, "server_stopped")
            await live.settle()
        # Every connection's transport closes now (a namespace's disconnect leaves it open until the client
        # closes it), and Engine.IO's background tasks end: the web server then has nothing to wait for.
        if self.sio.eio.sockets:  # (Engine.IO refuses to close an empty set)
            await self.sio.eio.disconnect()
        await self.sio.shutdown()

    async def _move_rooms(self) -> None:
        """Drain: hand every room to another node. First, at once, each room's state is saved (with the
        recording that must go on) and only then is everyone told and disconnected, so whoever joins
        again finds the room; then, within the drain timeout, recordings are finished here and each
        session is placed on another node, which opens the room before people arrive."""
        self._moving = True
        await self.router.begin_drain()
        moving = [live for live in self.rooms.values() if not live.room.ended]
        for live in moving:
            self.router.room_changed(live.session_id, _taken(live.close_for_move()))
        await self.router.flush_rooms()
        for live in moving:
            live.moved = True
            await live.settle()
        try:
            await asyncio.wait_for(asyncio.gather(*(self._hand_over(live) for live in moving)), self._drain_timeout)
        except asyncio.TimeoutError:
            log.warning(
                "drain timeout (%g s): the remaining sessions are placed when people join again", self._drain_timeout
            )

    async def _hand_over(self, live: LiveRoom) -> None:
        await live.finish_recording("node_moving")
        await live.flush()
        self.rooms.pop(live.session_id, None)
        try:
            # This node is draining: the least-loaded other node takes the session and opens its room
            # before people arrive.
            await self.router.place(live.session_id)
        except RoomError as exc:
            log.warning("session %s left unplaced (%s): the next join places it", live.session_id, exc.message)
            with contextlib.suppress(RoomError):
                await self.router.unplace(live.session_id)
        log.info("session %s moved away", live.session_id)


def _taken(state: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A room's state already taken, as Router.room_changed takes a snapshot."""
    return lambda: state


def _refused(code: str, message: str, **extra: Any) -> socketio.exceptions.ConnectionRefusedError:
    # Clients get connect_error with {message, data: {code, message, …extra such as retry_after}}.
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message, **extra})
