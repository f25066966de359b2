"""One live room at run time, on the node that owns it: its rules (room.py), its media (media_bridge.py),
its recording (recording.py), the delivery of what it says, and its place in the cluster (its durable state
saved for a take-over). The node's Socket.IO adapter (server.py) keeps one per open session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from recordings import RecordingRefused
from signaling import events as ev
from signaling import recording
from signaling.media_bridge import RoomMedia
from signaling.protocol import RoomError
from signaling.recording import RecorderFactory, RoomRecording
from signaling.room import Outgoing, Participant, Room
from signaling.room_state import snapshot
from signaling.router import Router

log = logging.getLogger(__name__)

# Sends one message of the room's outbox (the adapter knows the sockets); `requester`: the connection
# whose request is being answered.
Deliver = Callable[[Outgoing, "str | None"], Awaitable[None]]
MOVING = {"reason": "node_moving", "message": "Moving the class to another server; reconnecting…"}


# Events that each carry the whole of something (the hand queue, the lobby, the quality report): of several
# to one connection in one delivery, only the last matters.
COALESCED = frozenset({"hand:queue", "lobby:updated", "room:quality", "poll:counts"})
# The teacher's live poll counts go out at most once in this many seconds: 45 answers within one second cost
# a handful of poll:counts, and the counts are exact at most this long after the last answer.
POLL_COUNTS_INTERVAL = 0.25


def _coalesced(outbox: list[Outgoing]) -> list[Outgoing]:
    last = {(out.sid, out.event): i for i, out in enumerate(outbox) if out.event in COALESCED}
    return [out for i, out in enumerate(outbox) if out.event not in COALESCED or last[(out.sid, out.event)] == i]


class _Discard:
    """The sink of a room this node no longer owns: its events are not records any more."""

    def emit(self, event: ev.RoomEvent) -> None:
        pass

    async def written(self, timeout: float) -> bool:
        return True


class LiveRoom:
    def __init__(
        self,
        room: Room,
        *,
        media: RoomMedia | None,
        deliver: Deliver,
        router: Router,
        recorder_factory: RecorderFactory | None,
        record_students: bool,
    ):
        self.room = room
        self.media = media  # None: a server without media (rtc:* answered media_unavailable)
        self.recording: RoomRecording | None = None
        self.recording_notice: str | None = None  # why the server restarted the recording (told to the teacher)
        self.moved = False  # handed to another node: its state is not saved again, its timers do nothing
        self.released = False  # ended, and its placement forgotten
        self._links_sent: dict[str, dict[str, Any]] = {}  # participant → the last you:link it was sent
        self._deliver = deliver
        self._router = router
        self._recorder_factory = recorder_factory  # None: rec:start answers recording_unavailable
        self._record_students = record_students  # False: recordings hold the teacher's tracks only
        self._counts_sent_at = float("-inf")  # (loop time) the last poll:counts
        self._counts_timer: asyncio.TimerHandle | None = None
        self._deadline_timer: tuple[float, asyncio.TimerHandle] | None = None  # (the poll's deadline, its timer)

    @property
    def session_id(self) -> int:
        return self.room.session_id

    # -- after every change --------------------------------------------------------------------------
    async def flush(self, requester: str | None = None) -> None:
        """Deliver what the room said. One delivery at a time: sending yields, and two requests handled at
        once must not interleave their messages (clients rely on the order of versions)."""
        room = self.room
        self._poll_counts()
        self._poll_deadline()
        async with room.delivery_lock:
            outbox, room.outbox = _coalesced(room.outbox), []
            for out in outbox:
                await self._deliver(out, requester)

    def _poll_counts(self) -> None:
        """Send the teacher's poll counts if they changed: now, or when the interval since the last ends."""
        if not self.room.poll_counts_due or self._counts_timer is not None or self.moved:
            return
        loop = asyncio.get_running_loop()
        wait = self._counts_sent_at + POLL_COUNTS_INTERVAL - loop.time()
        if wait <= 0:
            self._counts_sent_at = loop.time()
            self.room.send_poll_counts()
        else:
            self._counts_timer = loop.call_later(wait, self._counts_due)

    def _poll_deadline(self) -> None:
        """Keep one timer on the open poll's deadline (its time limit, or its current question's)."""
        deadline = None if self.moved else self.room.poll_deadline()
        if self._deadline_timer is not None:
            if self._deadline_timer[0] == deadline:
                return
            self._deadline_timer[1].cancel()
            self._deadline_timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self.room.clock())
            self._deadline_timer = (deadline, asyncio.get_running_loop().call_later(delay, self._deadline_due))

    def _deadline_due(self) -> None:
        self._deadline_timer = None
        if not self.moved:
            self.room.poll_time_up()
            asyncio.get_running_loop().create_task(self.settle())

    def _counts_due(self) -> None:
        self._counts_timer = None
        if not self.moved:
            asyncio.get_running_loop().create_task(self.flush())

    async def settle(self, requester: str | None = None) -> None:
        """After any change: deliver what the room said, save its state for a take-over, then bring the
        media plane and the recording in step with it."""
        await self.flush(requester)
        await self._save_state()
        if self.media is None:
            return
        room = self.room
        room.media_changes += 1
        wanted = room.media_changes
        async with room.media_lock:
            # Skipped when an apply that began after this change ran while we waited (a join storm:
            # one plan for many requests, not one per request).
            if room.media_applied < wanted:
                room.media_applied = room.media_changes
                await self._apply_media()
        await self.flush(requester)

    async def _save_state(self) -> None:
        if self.moved:
            return
        if not self.room.ended:
            self._router.room_changed(self.session_id, lambda: snapshot(self.room))
        elif not self.released:
            self.released = True
            try:
                await self._router.release(self.session_id)
            except Exception as exc:  # noqa: BLE001 - the room has ended anyway
                log.warning("session %s: placement not released (%s)", self.session_id, type(exc).__name__)

    async def _apply_media(self) -> None:
        """(Under the media lock; only with media.)"""
        assert self.media is not None
        for participant, slots in await self.media.apply():
            self.room._send(participant, "rtc:slots", {"slots": slots})
        if self.recording is not None:
            if self.room.ended:
                await self.stop_recording(None)
            else:
                self.recording.sync()

    # -- media requests ------------------------------------------------------------------------------
    async def media_request(self, participant: Participant, event: str, payload: Any) -> Any:
        room = self.room
        room.authorize(participant, event, payload)
        if self.media is None:
            raise RoomError("media_unavailable", "Audio and video are not available on this server.")
        async with room.media_lock:
            if event == "rtc:publish":
                return await self.media.publish(participant, payload)
            if event == "rtc:subscribe":
                offer = await self.media.subscribe(participant)
                room._send(participant, "rtc:offer", offer)  # before the rtc:slots that fill it
                return None
            if event == "rtc:answer":
                return await self.media.answer(participant, payload)
            return await self.media.candidate(participant, payload)

    def quality_report(self) -> None:
        """Everyone who receives media learns what their link gets (you:link, when it changed); the teacher
        learns each student's (room:quality)."""
        room = self.room
        if self.media is None or room.ended:
            return
        links = self.media.links()
        for pid, link in links.items():
            participant = room.participants[pid]
            mine = {k: v for k, v in link.items() if k not in ("receiving", "receiving_kbps")}
            if participant.connected and self._links_sent.get(pid) != mine:
                self._links_sent[pid] = mine
                room._send(participant, "you:link", mine)
        teachers = [t for t in room.teachers() if t.connected]
        report = {pid: q for pid, q in self.media.quality(links).items() if room.participants[pid].role != "teacher"}
        for teacher in teachers:
            room._send(teacher, "room:quality", {"participants": report})

    # -- recording -----------------------------------------------------------------------------------
    @property
    def can_record(self) -> bool:
        return self._recorder_factory is not None and self.media is not None

    async def recording_request(self, teacher: Participant, event: str) -> dict[str, Any]:
        room = self.room
        room.authorize(teacher, event, None)
        if not self.can_record:
            raise recording.refuse_unavailable()
        async with room.media_lock:
            current = self.recording
            if event == "rec:stop":
                if current is not None:
                    await self.stop_recording(teacher)
                return recording.status(None)
            if event in ("rec:pause", "rec:resume"):
                if current is None:
                    raise recording.refuse_not_recording()
                changed = current.pause() if event == "rec:pause" else current.resume()
                if changed:  # pausing a paused recording, or resuming a running one, changes nothing
                    recording.announce(
                        room, teacher, current, event=ev.REC_PAUSED if event == "rec:pause" else ev.REC_RESUMED
                    )
                return recording.status(current)
            if current is not None:
                return recording.status(current)
            return recording.status(await self.start_recording(teacher))

    async def start_recording(self, by: Participant | None, reason: str | None = None) -> RoomRecording:
        """Start recording the room (under its media lock; only if it can_record); `reason` when the server
        restarts it."""
        assert self._recorder_factory is not None and self.media is not None
        recorder = self._recorder_factory(self.session_id, self._recorder_stopped)
        try:
            await recorder.start()
        except RecordingRefused as exc:  # e.g. low_disk_space: the teacher is told why
            raise RoomError(exc.code, exc.message) from None
        self.recording = RoomRecording(self.room, recorder, self.media.peer, students=self._record_students)
        self.recording.sync()
        recording.announce(self.room, by, self.recording, reason)
        return self.recording

    async def stop_recording(self, by: Participant | None, reason: str | None = None) -> None:
        """Finish the recording (under the media lock): its files are listed in the records."""
        current, self.recording = self.recording, None
        if current is None:
            return
        manifest = await current.recorder.stop()
        recording.announce(self.room, by, None, reason)
        self.room._event(ev.RECORDING_SAVED, by, None, manifest=manifest)

    async def finish_recording(self, reason: str) -> None:
        if self.recording is not None:
            async with self.room.media_lock:
                await self.stop_recording(None, reason)

    def _recorder_stopped(self, reason: str) -> None:
        """The recorder stopped by itself (a full disk): finish it and tell everyone why."""

        async def finish() -> None:
            await self.finish_recording(reason)
            await self.settle()

        asyncio.get_running_loop().create_task(finish())

    # -- leaving this node ---------------------------------------------------------------------------
    def close_for_move(self) -> dict[str, Any]:
        """Drain: everyone is told the class moves and is disconnected, keeping their seats (attendance
        closes as node_moving). Returns the state the next node restores, with the recording that must
        go on there."""
        room = self.room
        was_recording = (room.recording_state, room.students_recorded)
        for participant in list(room.participants.values()):
            if participant.state == "gone" or participant.sid is None:
                continue
            room._send(participant, "room:closing", MOVING, True)
            if participant.state == "lobby":
                room.leave(participant, "node_moving")
            else:
                room.disconnected(participant.sid, reason="node_moving")
        state = snapshot(room)
        state["recording_state"], state["students_recorded"] = was_recording
        return state

    async def give_up(self) -> None:
        """The room lives on another node now (this one was taken for dead): close it here so that its
        people join it there. What was recorded here is finished and listed; nothing else is written to
        the records from here: the other node closed these people's attendance at this node's last
        heartbeat."""
        self.moved = True
        await self.finish_recording("node_moving")
        room = self.room
        room.sink = _Discard()
        for participant in list(room.participants.values()):
            if participant.state != "gone" and participant.sid is not None:
                room._send(participant, "room:closing", MOVING, True)
                room.leave(participant, "node_moving")
        await self.settle()
