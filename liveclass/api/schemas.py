"""Request and response bodies of the HTTP API (pydantic: validation and the OpenAPI schemas)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from liveclass.models import FIRST_YEAR, LAST_YEAR, MAX_ID, AccountRole, PeriodMode


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("include the time zone offset, e.g. 2026-11-24T08:00:00+07:00")
    if not FIRST_YEAR < value.year < LAST_YEAR:  # also keeps the conversion below from overflowing
        raise ValueError(f"a time between {FIRST_YEAR + 1} and {LAST_YEAR - 1}")
    return value.astimezone(timezone.utc)  # the API answers in UTC, whatever zone the client wrote


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="the id of an existing row")]  # never past the store's range


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ok(BaseModel):
    ok: bool


class Health(BaseModel):
    status: str  # ok / ready / unavailable
    database: str | None = None
    node: str | None = None
    cluster: str | None = None  # with several nodes: why Redis is not usable


# -- auth --------------------------------------------------------------------------------------------
class LoginRequest(Strict):
    personal_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    issue_token: bool = Field(False, description="API clients: return a bearer token instead of setting a cookie.")


class ChangePasswordRequest(Strict):
    current_password: Annotated[str, StringConstraints(max_length=256)]
    new_password: Annotated[str, StringConstraints(max_length=256)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    personal_id: str
    full_name: str
    role: AccountRole
    date_of_birth: date | None = None
    must_change_password: bool
    active: bool


class LoginResponse(BaseModel):
    user: UserOut
    csrf_token: str
    must_change_password: bool
    access_token: str | None = None


# -- users -------------------------------------------------------------------------------------------
class UserCreate(Strict):
    personal_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    full_name: Name
    role: AccountRole
    date_of_birth: date | None = None
    password: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        None, description="Omit to generate one; it is returned once and must be changed at first login."
    )


class UserUpdate(Strict):
    full_name: Name | None = None
    role: AccountRole | None = None
    date_of_birth: date | None = None
    active: bool | None = None


class UserCreated(BaseModel):
    user: UserOut
    generated_password: str | None = None


class PasswordReset(BaseModel):
    generated_password: str


# -- classes -----------------------------------------------------------------------------------------
class ClassCreate(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    school_year: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-\d{4}$")]
    homeroom_teacher_id: Id | None = None


class ClassUpdate(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    homeroom_teacher_id: Id | None = None


class AssignmentCreate(Strict):
    teacher_id: Id
    subject: Short


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    teacher_id: int
    class_id: int
    subject: str


class ClassOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    school_year: str
    homeroom_teacher_id: int | None


class ClassDetail(ClassOut):
    students: list[UserOut]
    assignments: list[AssignmentOut]


# -- periods and sessions ----------------------------------------------------------------------------
class PeriodCreate(Strict):
    class_id: Id
    subject: Short
    teacher_id: Id | None = Field(None, description="Admins name the teacher; a teacher creates their own periods.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    mode: PeriodMode = PeriodMode.online
    parents_invited: bool = False


class PeriodUpdate(Strict):
    subject: Short | None = None
    teacher_id: Id | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    mode: PeriodMode | None = None
    parents_invited: bool | None = None


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    period_id: int
    started_at: datetime
    ended_at: datetime | None
    node: str
    running: bool


class PeriodOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    class_id: int
    class_name: str
    subject: str
    teacher_id: int
    teacher_name: str
    starts_at: datetime
    ends_at: datetime
    mode: PeriodMode
    parents_invited: bool
    live_session: SessionOut | None = None
    # When the last session of the period ended (it was taught), or null: the teacher's list says "taught".
    taught_until: datetime | None = None


class IceServerOut(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class ConnectInfo(BaseModel):
    url: str  # the origin of the node that hosts the room
    socketio_path: str  # its Socket.IO path (under the node's base URL)
    namespace: str
    node: str  # that node's id


class JoinResponse(BaseModel):
    token: str
    expires_in: int
    room_role: str
    session_id: int
    connect: ConnectInfo
    ice_servers: list[IceServerOut]
