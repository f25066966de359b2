"""The records store's tables (SQLAlchemy 2). The same models run on SQLite and PostgreSQL."""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


# Row ids are INTEGER columns: 32-bit on PostgreSQL. A larger id cannot exist, and must not reach a query
# (the driver would fail on it), so the API refuses it first.
MAX_ID = 2**31 - 1
# The years a school's dates and times may name: the calendar's edges (year 1, 9999) overflow when a
# time is converted between zones, and no period or record is that far from today.
FIRST_YEAR, LAST_YEAR = 1970, 2100


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class AccountRole(str, enum.Enum):
    admin = "admin"
    teacher = "teacher"
    student = "student"
    parent = "parent"
    observer = "observer"


class PeriodMode(str, enum.Enum):
    online = "online"
    hybrid = "hybrid"


class Base(DeclarativeBase):
    pass


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable and readable in SQL.
    return Enum(cls, name=name, native_enum=False, validate_strings=True, length=16)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    personal_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[AccountRole] = mapped_column(_enum(AccountRole, "account_role"))
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SchoolClass(Base):
    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("name", "school_year", name="uq_class_name_year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    school_year: Mapped[str] = mapped_column(String(16))
    homeroom_teacher_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    homeroom_teacher: Mapped[User | None] = relationship(lazy="joined")


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("class_id", "student_id", name="uq_enrollment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class ParentLink(Base):
    __tablename__ = "parent_links"
    __table_args__ = (UniqueConstraint("parent_id", "student_id", name="uq_parent_link"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class TeachingAssignment(Base):
    __tablename__ = "teaching_assignments"
    __table_args__ = (UniqueConstraint("teacher_id", "class_id", "subject", name="uq_assignment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(100))


class Period(Base):
    __tablename__ = "periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"), index=True)
    subject: Mapped[str] = mapped_column(String(100))
    teacher_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mode: Mapped[PeriodMode] = mapped_column(_enum(PeriodMode, "period_mode"), default=PeriodMode.online)
    parents_invited: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    school_class: Mapped[SchoolClass] = relationship(lazy="joined")
    teacher: Mapped[User] = relationship(lazy="joined")


class LiveSession(Base):
    """One live run of a period (a room at run time)."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_period_running", "period_id", "ended_at"),
        # At most one running session per period, even when several "start" requests race.
        Index(
            "uq_sessions_one_running",
            "period_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    node: Mapped[str] = mapped_column(String(64))
    # A legal hold keeps every record of the session whatever the retention periods say.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    legal_hold_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    legal_hold_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    legal_hold_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Which kinds of record the retention job has deleted, and when: {"chat": "2027-11-23T02:00:00Z", ...}
    purged: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    period: Mapped[Period] = relationship(lazy="joined")

    @property
    def running(self) -> bool:
        return self.ended_at is None


class AuthSession(Base):
    """A login: the cookie or bearer token is a random value whose SHA-256 is stored here."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)

    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(Base):
    """Failed logins, counted per account and per address for throttling (shared by every node)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    personal_id: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class NodeHeartbeat(Base):
    """A node's last sign of life in the store: where a crash left its sessions' attendance open."""

    __tablename__ = "node_heartbeats"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UsedJoinToken(Base):
    """Join-token ids already spent: a token is single use, across nodes too."""

    __tablename__ = "used_join_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)


# -- session records (written from the live room's domain events) ------------------------------------
class SessionEvent(Base):
    """Everything that happened in a session, in order: the record the others are derived from."""

    __tablename__ = "session_events"
    __table_args__ = (Index("ix_session_events_session_at", "session_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    data: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class AttendanceInterval(Base):
    """One stretch of presence in the room; a drop closes it, a reconnect opens the next."""

    __tablename__ = "attendance_intervals"
    __table_args__ = (Index("ix_attendance_session_user", "session_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    room_role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_session_at", "session_id", "at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the room's message id
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="text")
    text: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class Handout(Base):
    __tablename__ = "handouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(128))


class Recording(Base):
    """One recorded file of a session (one track, or one stretch of a track), placed on the session clock."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(255))  # relative to the recordings directory
    kind: Mapped[str] = mapped_column(String(16))  # video / audio
    source: Mapped[str] = mapped_column(String(16))  # camera / microphone / screen
    label: Mapped[str] = mapped_column(String(255))
    codec: Mapped[str] = mapped_column(String(16))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    recovered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- records archive ----------------------------------------------------------------------------------
class RecordKind(str, enum.Enum):
    """The kinds of record a retention period is set for."""

    recordings = "recordings"
    chat = "chat"
    attendance = "attendance"
    handouts = "handouts"
    assessments = "assessments"  # quick polls and quizzes: the session's poll_* events
    audit = "audit"


class RetentionPolicy(Base):
    """How many days a kind of record is kept (counted from the end of its session); admins set it."""

    __tablename__ = "retention_policies"

    kind: Mapped[RecordKind] = mapped_column(_enum(RecordKind, "record_kind"), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class RecordingShare(Base):
    """A session's recordings shared by its teacher with the class, through an expiring link.

    Only the SHA-256 of the link's token is stored; the link also needs a login of a student of the
    class (or, when `include_parents`, of one of their parents).
    """

    __tablename__ = "recording_shares"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    include_parents: Mapped[bool] = mapped_column(Boolean, default=False)

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


# -- question bank (liveclass/questions.py) -----------------------------------------------------------
class Question(Base):
    """A teacher's question, reused in the room's polls and quizzes; the shape is the room's (signaling/polls.py)."""

    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_subject_topic", "subject", "topic"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True)
    subject: Mapped[str] = mapped_column(String(100))
    topic: Mapped[str] = mapped_column(String(200), default="")  # the chapter; may be ""
    kind: Mapped[str] = mapped_column(String(16))  # single / multiple / truefalse / text / number
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list] = mapped_column(JSON)
    correct: Mapped[list | None] = mapped_column(JSON, nullable=True)
    tolerance: Mapped[float | None] = mapped_column(Float, nullable=True)
    points: Mapped[float | None] = mapped_column(Float, nullable=True)
    explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The image is a file named by its SHA-256 under <files dir>/question-images.
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship(lazy="joined")
