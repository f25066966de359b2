"""An archived period for the records-archive tests: yesterday's Toán period of 10A1, written through
the same RecordsWriter the live room uses (events at their real past times), with a real recording
made by the recorder (the session-scoped `lesson` fixture) copied into the server's recordings dir.

What happened, on the school's clock (Asia/Ho_Chi_Minh), yesterday:
  08:00 period starts; 08:01 the teacher opens the room (session started) and enters
  08:00:30 Ánh enters the lobby, admitted 08:01:10; camera on 08:02-08:12; mic on 08:05-08:07 (muted
        by the teacher at 08:07); raises a hand at 08:06; 2 messages; drops at 08:20, back 08:21,
        leaves at 08:40
  08:10 Bảo enters the lobby (9 minutes late), admitted 08:10:20, stays to the end (08:44)
  Chi never comes (absent); 08:02 Dũng (a student of no class here) knocks and is denied
  08:15 the teacher sends a message; deletes one of Ánh's at 08:16
  08:30 the recording (10 s of real media) is saved; 08:44 the room ends
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from liveclass.models import Enrollment, LiveSession, Period, SchoolClass, User
from liveclass.records import RecordsWriter
from signaling import events as ev
from signaling.events import RoomEvent
from tests.helpers import add_user

SCHOOL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class ArchivedSession:
    session_id: int
    period_id: int
    day: date  # the school-local date of the period
    starts_at: datetime
    teacher: User
    present: User  # Ánh: on time, dropped once
    late: User  # Bảo: 9 minutes late
    absent: User  # Chi: never came
    denied: User  # Dũng: knocked, denied by the teacher
    recording_files: list[Path] = field(default_factory=list)
    chat_texts: list[str] = field(default_factory=list)


def school_time(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=SCHOOL_TZ).astimezone(timezone.utc)


async def seed_archived_session(
    server,
    school,
    lesson: dict | None = None,
    *,
    days_ago: int = 1,
    school_class: SchoolClass | None = None,
    teacher: User | None = None,
    subject: str = "Toán",
) -> ArchivedSession:
    """Seed one finished session `days_ago` days ago (school-local date). `lesson` is the `lesson`
    fixture's recording; without it the session has no recording."""
    day = datetime.now(SCHOOL_TZ).date() - timedelta(days=days_ago)
    cls = school_class or school.school_class
    teacher = teacher or school.teacher
    at = lambda hh, mm, ss=0: school_time(day, hh, mm, ss)  # noqa: E731
    async with server.db() as db:
        present = await db.get(User, school.student.id) if cls.id == school.school_class.id else None
        if present is None:
            present = await add_user(db, "student", "Phạm Ngọc Ánh")
            db.add(Enrollment(class_id=cls.id, student_id=present.id))
        late = await add_user(db, "student", "Trần Gia Bảo")
        absent = await add_user(db, "student", "Lê Thị Chi")
        denied = await add_user(db, "student", "Vũ Văn Dũng")
        db.add_all([Enrollment(class_id=cls.id, student_id=late.id), Enrollment(class_id=cls.id, student_id=absent.id)])
        period = Period(class_id=cls.id, subject=subject, teacher_id=teacher.id, starts_at=at(8, 0), ends_at=at(8, 45))
        db.add(period)
        await db.flush()
        session = LiveSession(period_id=period.id, started_at=at(8, 1), started_by_id=teacher.id, node="node-1")
        db.add(session)
        await db.commit()
        session_id, period_id = session.id, period.id
        teacher_id, present_id, late_id, denied_id = teacher.id, present.id, late.id, denied.id

    def event(type_: str, when: datetime, actor: int | None = None, target: int | None = None, **data) -> RoomEvent:
        return RoomEvent(session_id, type_, actor, target, data, when.timestamp())

    chat = ["Em chào cô ạ", "Bài 3 em chưa hiểu", "Các em mở sách trang 45"]
    # Message ids are unique in the store (the room's own ids are random): one set per seeded session.
    events = [
        event(ev.LOBBY_ENTERED, at(8, 0, 30), present_id, present_id, on_roster=True),
        event(ev.PARTICIPANT_JOINED, at(8, 1), teacher_id, teacher_id, room_role="teacher"),
        event(ev.LOBBY_ADMITTED, at(8, 1, 10), teacher_id, present_id, room_role="student"),
        event(ev.MEDIA_CHANGED, at(8, 1, 20), teacher_id, teacher_id, camera=True, microphone=True),
        event(ev.MEDIA_CHANGED, at(8, 2), present_id, present_id, camera=True),
        event(ev.LOBBY_ENTERED, at(8, 2, 5), denied_id, denied_id, on_roster=False),
        event(ev.LOBBY_DENIED, at(8, 2, 30), teacher_id, denied_id, reason="Không thuộc lớp này"),
        event(ev.MEDIA_CHANGED, at(8, 5), present_id, present_id, microphone=True),
        event(ev.HAND_RAISED, at(8, 6), present_id, present_id, position=1),
        event(ev.HAND_LOWERED, at(8, 6, 30), teacher_id, present_id),
        event(ev.MEDIA_MUTED, at(8, 7), teacher_id, present_id, source="microphone"),
        event(ev.LOBBY_ENTERED, at(8, 10), late_id, late_id, on_roster=True),
        event(ev.LOBBY_ADMITTED, at(8, 10, 20), teacher_id, late_id, room_role="student"),
        event(ev.MEDIA_CHANGED, at(8, 12), present_id, present_id, camera=False),
        event(ev.CHAT_MESSAGE, at(8, 13), present_id, None, message_id=f"{session_id}-m1", text=chat[0], kind="text"),
        event(ev.CHAT_MESSAGE, at(8, 14), present_id, None, message_id=f"{session_id}-m2", text=chat[1], kind="text"),
        event(ev.CHAT_MESSAGE, at(8, 15), teacher_id, None, message_id=f"{session_id}-m3", text=chat[2], kind="text"),
        event(ev.CHAT_DELETED, at(8, 16), teacher_id, present_id, message_id=f"{session_id}-m1"),
        event(ev.PARTICIPANT_DROPPED, at(8, 20), present_id, present_id),
        event(ev.PARTICIPANT_RECONNECTED, at(8, 21), present_id, present_id, room_role="student"),
        event(ev.REC_STARTED, at(8, 29, 50), teacher_id, None),
        event(ev.PARTICIPANT_LEFT, at(8, 40), present_id, present_id, reason="left"),
    ]
    archived = ArchivedSession(
        session_id, period_id, day, at(8, 0), teacher, present, late, absent, denied, chat_texts=chat
    )
    if lesson is not None:
        manifest, files = _copy_recording(lesson, server.settings.recordings_dir, session_id)
        archived.recording_files = files
        events += [
            event(ev.REC_STOPPED, at(8, 30), teacher_id, None),
            event(ev.RECORDING_SAVED, at(8, 30), None, None, manifest=manifest),
        ]
    events += [
        event(ev.PARTICIPANT_LEFT, at(8, 44), None, late_id, reason="ended"),
        event(ev.PARTICIPANT_LEFT, at(8, 44), None, teacher_id, reason="ended"),
        event(ev.ROOM_ENDED, at(8, 44)),
    ]
    writer = RecordsWriter(server.db)
    for e in events:
        writer.emit(e)
    await writer.flush()
    return archived


def _copy_recording(lesson: dict, recordings_dir: Path, session_id: int) -> tuple[dict, list[Path]]:
    manifest = dict(lesson["manifest"], session_id=session_id)
    target = recordings_dir / str(session_id) / str(manifest["recording_id"])
    shutil.copytree(lesson["path"], target)
    return manifest, [target / f["file"] for f in manifest["files"]]
