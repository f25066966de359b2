"""Recording a room: rec:start / rec:pause / rec:resume / rec:stop, which tracks are recorded, and
everyone told (rec:status).

The recorder itself (recordings/) is built by the application per session and handed in through a
factory; this module decides what it records: the teacher's camera, microphone and screen, and a
learner's microphone while it is on, camera while on stage, screen while shared — what the class sees
and hears. A school may record the teacher only (`students=False`, the setting LIVECLASS_RECORD_STUDENTS):
learners' faces and voices are then never written, and everyone is told so. Tracks that start and stop mid-period
become new files on the same clock (the recorder's job).
A pause ends every file; nothing is written until the resume, whose files start at the resume on the
same clock (the manifest lists the pause).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from signaling import events as ev
from signaling.media_plan import TrackRef, forwarded
from signaling.protocol import RoomError
from signaling.room import Participant, Room


class Recorder(Protocol):  # recordings.Recorder, as this module uses it (what start/add_track return is unused)
    async def start(self) -> object: ...
    def add_track(self, publisher_id: str, source: str, label: str) -> object: ...
    def remove_track(self, publisher_id: str, source: str) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    async def stop(self) -> dict[str, Any]: ...


# session_id, on_stopped(reason) → a recorder for that session
RecorderFactory = Callable[[int, Callable[[str], None]], Recorder]


def recorded_tracks(room: Room, students: bool = True) -> dict[TrackRef, str]:
    """The tracks to record now, each with a label for the manifest; `students`: learners' tracks too."""
    wanted: dict[TrackRef, str] = {}
    for view in room.media_views():
        if view.role != "teacher" and not students:
            continue
        live = forwarded(view)
        participant = room.participants[view.participant_id]
        label = f"{participant.role}: {participant.name}"
        for source in live:
            if (
                view.role == "teacher"
                or source in ("microphone", "screen")
                or (source == "camera" and room.stage == view.participant_id)
            ):
                wanted[TrackRef(view.participant_id, source)] = label
    return wanted


class RoomRecording:
    """The recording of one room while it runs."""

    def __init__(self, room: Room, recorder: Recorder, peer_of: Callable[[str], str], students: bool = True):
        self.room = room
        self.recorder = recorder
        self.peer_of = peer_of
        self.students = students  # learners' tracks recorded too (else the teacher's only)
        self.tracks: set[TrackRef] = set()
        self.started_at = time.time()
        self.paused = False

    @property
    def state(self) -> str:
        return "paused" if self.paused else "recording"

    def pause(self) -> bool:
        """Stop writing (every file ends) until resume(); False if it was paused already. The tracks
        still follow the class while paused (sync), so the resume records what the class has then."""
        if self.paused:
            return False
        self.recorder.pause()
        self.paused = True
        return True

    def resume(self) -> bool:
        """Write again, into new files; False if it was not paused."""
        if not self.paused:
            return False
        self.recorder.resume()
        self.paused = False
        return True

    def sync(self) -> None:
        """Add and remove tracks so the recording follows what the class sees and hears."""
        wanted = recorded_tracks(self.room, self.students)
        for ref in self.tracks - set(wanted):
            self.recorder.remove_track(self.peer_of(ref.participant_id), ref.source)
        for ref in set(wanted) - self.tracks:
            self.recorder.add_track(self.peer_of(ref.participant_id), ref.source, wanted[ref])
        self.tracks = set(wanted)


def status(recording: RoomRecording | None, reason: str | None = None) -> dict[str, Any]:
    """rec:status and the answer of every rec:* request. `recording` stays true while paused;
    `students_recorded` (null when off): whether learners' tracks are recorded, or the teacher's only."""
    return {
        "recording": recording is not None,
        "state": recording.state if recording else "off",
        "started_at": recording.started_at if recording else None,
        "reason": reason,
        "students_recorded": recording.students if recording else None,
    }


def announce(
    room: Room,
    by: Participant | None,
    recording: RoomRecording | None,
    reason: str | None = None,
    event: str | None = None,
) -> None:
    """Everyone in the room sees that the period is being recorded, paused, or no longer recorded.
    `event`: the record to write (default: recording_started, or recording_stopped without a recording)."""
    room.recording = recording is not None
    room.recording_state = recording.state if recording else "off"
    room.students_recorded = recording.students if recording else None
    data = status(recording, reason)
    for p in room.present():
        room._send(p, "rec:status", data)
    room._event(
        event or (ev.REC_STARTED if recording else ev.REC_STOPPED), by, None, **({"reason": reason} if reason else {})
    )


def refuse_not_recording() -> RoomError:
    return RoomError("not_recording", "Nothing is being recorded: start recording first.")


def refuse_unavailable() -> RoomError:
    return RoomError("recording_unavailable", "Recording is not available on this server.")
