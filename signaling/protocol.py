"""Payloads of the client → server requests (validated with pydantic) and the acknowledgement shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

MAX_CHAT_LENGTH = 2000
MAX_PAYLOAD_BYTES = 64 * 1024  # a request larger than this is answered payload_too_large
# ... except these, which carry more by nature: a quiz of 20 questions with their texts.
LARGER_PAYLOADS = {"poll:open": 256 * 1024}
ParticipantId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class RoomError(Exception):
    """A request the room refuses: answered {ok: false, error: {code, message}}."""

    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def answer(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message, **self.extra}}


def ok(data: Any = None) -> dict[str, Any]:
    return {"ok": True, "data": data}


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Empty(Payload):
    pass


class AdmitRequest(Payload):
    participant_ids: list[ParticipantId] = Field(default_factory=list, max_length=500)
    all: bool = False

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.all and not self.participant_ids:
            raise ValueError("give participant_ids or all: true")
        return self


class DenyRequest(AdmitRequest):
    reason: Reason | None = None


class ChatSend(Payload):
    # Longer than the limit is answered message_too_long by the room; this bound only stops abuse.
    text: Annotated[str, StringConstraints(max_length=MAX_CHAT_LENGTH * 10)]
    to: ParticipantId | None = None


class ChatDelete(Payload):
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class HandLower(Payload):
    participant_id: ParticipantId | None = None
    all: bool = False


class MediaState(Payload):
    camera: bool | None = None
    microphone: bool | None = None
    screen: bool | None = None


class MuteRequest(Payload):
    participant_id: ParticipantId
    source: Literal["camera", "microphone", "screen"]


class KickRequest(Payload):
    participant_id: ParticipantId
    reason: Reason | None = None


class LockRequest(Payload):
    locked: bool
    what: Literal["room", "microphones", "cameras", "chat"] = "room"


class PermissionChanges(Payload):
    camera: bool | None = None
    microphone: bool | None = None
    screen: bool | None = None
    chat: bool | None = None


class StageRequest(Payload):
    participant_id: ParticipantId | None = None


MAX_SDP = 60_000


class PublishTrack(Payload):
    mid: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    # camera_low / screen_low: the low layer of the camera / screen, for subscribers on weak links
    source: Literal["camera", "microphone", "screen", "camera_low", "screen_low"]


class PublishRequest(Payload):
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SDP)]
    tracks: list[PublishTrack] = Field(max_length=5)


class SaverRequest(Payload):
    # data saver: "screen" = audio and the shared screen only, "audio" = audio only
    mode: Literal["off", "screen", "audio"]


class GridRequest(Payload):
    # the classmates whose tiles the viewer's gallery shows now (its page): their cameras get the grid slots first
    participant_ids: list[ParticipantId] = Field(max_length=12)


class AnswerRequest(Payload):
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SDP)]


class CandidateRequest(Payload):
    direction: Literal["publish", "subscribe"]
    # null: the end of candidates. Fields as in the browser's RTCIceCandidateInit.
    candidate: dict[str, str | int | None] | None = None


PollId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PollChoice = Annotated[str, StringConstraints(min_length=1, max_length=8)]


QuestionText = Annotated[str, StringConstraints(max_length=1000)]
OptionText = Annotated[str, StringConstraints(max_length=200)]
# Only an image the question bank signed (liveclass/questions.py): nothing from elsewhere reaches the class.
ImageUrl = Annotated[str, StringConstraints(pattern=r"^/api/question-images/[A-Za-z0-9_.=-]{1,300}$")]


class QuestionPayload(Payload):
    """One question as the teacher's browser took it from the bank (the room checks it: polls.Question.check)."""

    kind: Literal["single", "multiple", "truefalse", "text", "number"]
    text: QuestionText = ""
    options: list[OptionText] = Field(default_factory=list, max_length=6)
    correct: list[OptionText] | None = Field(default=None, max_length=10)
    tolerance: float | None = Field(default=None, ge=0)
    points: float | None = Field(default=None, ge=0, le=1000)
    explanation: QuestionText | None = None
    image_url: ImageUrl | None = None
    bank_id: int | None = Field(default=None, ge=1)


class PollOpen(Payload):
    """A quick poll (`kind`: A/B/C/… with `options` letters, 2–6, or true/false; no text to type), or
    `questions` (1–20) with their texts: one question, or a quiz."""

    kind: Literal["abcd", "truefalse"] | None = None
    options: int = Field(default=4, ge=2, le=6)  # abcd only: how many letters (ignored for truefalse)
    multiple: bool = False
    correct: list[PollChoice] | None = Field(default=None, min_length=1, max_length=6)
    points: float | None = Field(default=None, ge=0, le=1000)
    questions: list[QuestionPayload] | None = Field(default=None, min_length=1, max_length=20)
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    anonymous: bool = False
    final: bool = False  # an answer once given cannot be changed
    time_limit: int | None = Field(default=None, ge=10, le=7200)  # seconds for the whole poll
    seconds_per_question: int | None = Field(default=None, ge=5, le=600)  # one question at a time


class PollRef(Payload):
    poll_id: PollId


class PollReveal(PollRef):
    show_correct: bool = False


class PollAnswer(Payload):
    # No participant field: a student answers for themself only (extra fields are refused).
    poll_id: PollId
    question: int = Field(default=0, ge=0, le=19)  # its index in the poll
    choices: list[PollChoice] | None = Field(default=None, min_length=1, max_length=6)  # choice questions
    # Text and number questions. Longer than polls.MAX_TEXT_ANSWER is answered answer_too_long by the room;
    # this bound only stops abuse.
    text: Annotated[str, StringConstraints(max_length=5000)] | None = None


class PermitRequest(Payload):
    participant_id: ParticipantId
    permissions: PermissionChanges


def parse(model: type[Payload], data: Any) -> Payload:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RoomError("invalid_payload", "The request must carry an object (map) payload.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise RoomError("invalid_payload", f"Invalid request: {problems}") from None
