"""The answers of the records-archive routes, as pydantic models: they describe the answers in the
OpenAPI document (the handlers build plain dicts), and the tests validate real answers against them
(`extra="forbid"`), so the document cannot drift from what the server sends.

Times are ISO 8601 in UTC ("…Z"); minutes are rounded to 0.1. docs/records-archive.md explains the fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from liveclass.api.schemas import SessionOut


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonRef(Answer):
    user_id: int
    name: str


class Person(PersonRef):
    personal_id: str


class SessionSummary(Answer):
    session_id: int
    period_id: int
    class_id: int
    class_name: str
    subject: str
    teacher: PersonRef
    period_starts_at: datetime
    period_ends_at: datetime
    started_at: datetime
    ended_at: datetime | None
    running: bool
    legal_hold: bool
    recordings: int | None
    participants: int | None


class SessionList(Answer):
    items: list[SessionSummary]
    total: int


class Interval(Answer):
    joined_at: datetime
    left_at: datetime | None
    end_reason: str | None


class AttendanceLine(Answer):
    user_id: int
    name: str
    personal_id: str
    room_role: str
    enrolled: bool
    status: Literal["present", "late", "absent", "denied", "not_admitted"]
    arrived_at: datetime | None
    intervals: list[Interval]
    minutes_present: float
    minutes_late: float
    camera_minutes: float
    microphone_minutes: float
    screen_minutes: float
    hands_raised: int
    messages: int
    admitted_by: str | None
    denied_by: str | None
    denied_reason: str | None


class SessionAttendance(Answer):
    session: SessionSummary
    lesson_started_at: datetime
    items: list[AttendanceLine]


class ClassRef(Answer):
    class_id: int
    name: str
    school_year: str


class StudentSummary(Answer):
    user_id: int
    name: str
    personal_id: str
    sessions: int
    attended: int
    present: int
    late: int
    absent: int
    attendance_rate: float | None
    minutes_present: float
    minutes_late: float
    camera_minutes: float
    hands_raised: int
    messages: int
    # Assessments (quick polls and quizzes) of the sessions counted: those the student answered or was in
    # the room for when they closed; answered; the score and maximum over those with points (None: none).
    assessments: int
    assessments_answered: int
    score: float | None
    max_score: float | None
    score_rate: float | None
    right_answers: int


class ClassAttendance(Answer):
    class_: ClassRef
    from_: str
    to: str
    sessions: list[SessionSummary]
    items: list[StudentSummary]

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=lambda name: name.rstrip("_"))


class AssessmentOption(Answer):
    id: str  # "A", "B", …; "true" / "false"
    text: str


class AssessmentCount(Answer):
    answer: str | None  # a choice id, or a typed answer (None: the "other" answers past the first 20)
    count: int
    correct: bool | None
    other: bool | None = None


class AssessmentAnswer(Person):
    choices: list[str] | None
    text: str | None
    correct: bool | None
    points: float | None
    answered_at: datetime
    changes: int


class AssessmentQuestion(Answer):
    index: int
    kind: Literal["single", "multiple", "truefalse", "text", "number"]
    text: str
    options: list[AssessmentOption]
    correct: list[str] | None
    tolerance: float | None
    points: float | None
    explanation: str | None
    bank_id: int | None
    has_image: bool
    counts: list[AssessmentCount]
    answered: int
    right: int | None
    answers: list[AssessmentAnswer]


class AssessmentScore(Person):
    score: float | None
    max_score: float | None
    right: int | None
    answered: int
    questions: int


class Assessment(Answer):
    number: int
    poll_id: str
    title: str | None
    quick: bool
    anonymous: bool
    final: bool
    pace: Literal["all", "one"]
    time_limit: int | None
    seconds_per_question: int | None
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    revealed: bool
    show_correct: bool
    max_score: float | None
    answered: int
    eligible: int | None
    not_answered: list[Person]
    questions: list[AssessmentQuestion]
    scores: list[AssessmentScore]


class AssessmentTotal(Person):
    score: float | None
    max_score: float | None
    right: int
    answered: int
    questions: int
    polls: int
    polls_answered: int


class SessionAssessments(Answer):
    session: SessionSummary
    items: list[Assessment]
    students: list[AssessmentTotal]


class AuditActor(PersonRef):
    role: str


class AuditEntryOut(Answer):
    entry_id: int
    at: datetime
    action: str
    target: str | None
    address: str | None
    details: dict[str, Any] | None
    actor: AuditActor | None


class AuditPage(Answer):
    items: list[AuditEntryOut]
    next_before_id: int | None


class RecordingOut(Answer):
    recording_id: int
    kind: str
    source: str
    label: str | None
    codec: str | None
    start_ms: int
    duration_ms: int | None
    size: int | None
    sha256: str | None
    recovered: bool
    url: str


class RecordingList(Answer):
    items: list[RecordingOut]


class LessonVideoJob(Answer):
    state: Literal["running", "done", "failed"]
    progress: float
    error: str | None
    url: str | None


class HandoutOut(Answer):
    handout_id: int
    session_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime
    url: str


class RecordsSession(SessionOut, Answer):
    legal_hold: bool
    legal_hold_reason: str | None
    legal_hold_at: datetime | None
    purged: dict[str, datetime]


class RecordsPeriod(Answer):
    period_id: int
    class_name: str
    subject: str
    teacher: PersonRef | Person
    starts_at: datetime
    ends_at: datetime


class RoomEventOut(Answer):
    at: datetime
    type: str
    by: Person | None
    person: Person | None
    data: dict[str, Any] | None


class ChatLine(Answer):
    message_id: str
    at: datetime
    kind: str
    from_: Person | None
    to: Person | None
    text: str | None
    deleted_at: datetime | None
    deleted_by: Person | None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=lambda name: name.rstrip("_"))


class SessionEventOut(Answer):
    at: datetime
    type: str
    actor: Person | None
    target: Person | None
    data: dict[str, Any] | None


class SessionRecords(Answer):
    session: RecordsSession
    period: RecordsPeriod
    attendance: list[AttendanceLine]
    lobby: list[RoomEventOut]
    chat: list[ChatLine]
    moderation: list[RoomEventOut]
    events: list[SessionEventOut]
    handouts: list[HandoutOut]
    recordings: list[RecordingOut]


class ShareCreated(Answer):
    share_id: int
    token: str
    url: str
    expires_at: datetime
    include_parents: bool


class ShareOut(Answer):
    share_id: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    include_parents: bool
    active: bool
    created_by: PersonRef | None


class ShareList(Answer):
    items: list[ShareOut]


class SharedPage(Answer):
    share_id: int
    expires_at: datetime
    session: SessionSummary
    recordings: list[RecordingOut]  # their url: /api/v1/shared/TOKEN/recordings/ID/file


class RetentionPolicyOut(Answer):
    kind: Literal["recordings", "chat", "attendance", "handouts", "assessments", "audit"]
    days: int
    default_days: int
    updated_at: datetime | None
    updated_by: PersonRef | None


class RetentionReport(Answer):
    at: datetime
    dry_run: bool
    days: dict[str, int]
    deleted: dict[str, int]
    sessions: dict[str, int]
    files_deleted: dict[str, int]
    events: dict[str, int]
    held_sessions: int
    failed_sessions: list[int]


class RetentionLastRun(Answer):
    """The report of the newest real run, read back from its audit entry (`via`: daily, api or cli)."""

    model_config = ConfigDict(extra="allow")
    at: datetime


class RetentionView(Answer):
    policies: list[RetentionPolicyOut]
    last_run: RetentionLastRun | None


class LegalHold(Answer):
    session_id: int
    legal_hold: bool
    legal_hold_reason: str | None
    legal_hold_at: datetime | None
    legal_hold_by: PersonRef | None
    purged: dict[str, datetime]
