"""Bodies and answers of the question bank's routes (liveclass/api/questions_routes.py).

The request models only take the fields and their JSON types; the rules of a question (lengths, options,
correct answers, points) are checked by liveclass/questions.py, which says what is wrong in English and
Vietnamese and lists every problem at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liveclass.api.schemas import Strict

Kind = Literal["single", "multiple", "truefalse", "text", "number"]


class QuestionFields(Strict):
    text: str | None = None
    options: list[str] | None = Field(None, max_length=50)
    correct: list[str] | None = Field(
        None,
        max_length=50,
        description=(
            'single ["B"]; multiple ["A", "C"]; truefalse ["true"] or ["false"]; text: accepted answers; '
            'number: ["3.5"]; null: no correct answer'
        ),
    )
    tolerance: float | None = None
    points: float | None = None
    explanation: str | None = None
    topic: str | None = Field(None, description="the chapter; may be empty")
    shared: bool | None = Field(None, description="seen and used by the teachers of the same subject")
    image_url: str | None = Field(None, description="read only: ignored (set the image with PUT …/image)")
    bank_id: int | None = Field(None, description="read only: ignored")


class QuestionCreate(QuestionFields):
    kind: str = Field(description="single, multiple, truefalse, text or number")
    text: str
    subject: str = Field(description="as in the teaching assignments (Toán, Ngữ văn…)")


class QuestionUpdate(QuestionFields):
    kind: str | None = None
    subject: str | None = None


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    full_name: str


class QuestionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    bank_id: int
    kind: Kind
    text: str
    options: list[str]
    correct: list[str] | None
    tolerance: float | None
    points: float | None
    explanation: str | None
    image_url: str | None = Field(description="/api/question-images/<token>: signed at this reading, valid 24 h")
    subject: str
    topic: str
    shared: bool
    owner: Owner | None
    may_edit: bool
    created_at: datetime
    updated_at: datetime


class SubjectOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str
    topics: list[str]
    count: int


class ImportProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line: int
    column: str
    reason: str


class ImportResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    created: int
    errors: list[ImportProblem]
