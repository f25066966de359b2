"""Bodies of the timetable and roster routes (the school's setup from the web pages)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, model_validator

from liveclass.api.schemas import Id, PeriodOut, Short, Strict
from liveclass.models import FIRST_YEAR, LAST_YEAR, PeriodMode

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class TimetableCreate(Strict):
    """One period on a date, or a weekly period on some weekdays between two dates; the school's local time."""

    class_id: Id
    subject: Short
    teacher_id: Id
    start: dt.time = Field(description="the school's wall-clock time, e.g. 07:00")
    end: dt.time = Field(description="the school's wall-clock time, after start")
    date: dt.date | None = Field(None, description="one period on this date (YYYY-MM-DD)")
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(
        None, description="a weekly period: ISO weekdays, Monday 1 … Sunday 7 (Thứ 2 is 1)", max_length=7
    )
    from_date: dt.date | None = Field(None, description="a weekly period's first day")
    to_date: dt.date | None = Field(None, description="a weekly period's last day (at most 400 days later)")
    mode: PeriodMode = PeriodMode.online
    parents_invited: bool = False
    online_reason: Reason | None = Field(
        None, description="why a class gets more than two fully online periods in a half-day (kept in the audit log)"
    )

    @model_validator(mode="after")
    def one_kind(self) -> "TimetableCreate":
        weekly = self.weekdays is not None or self.from_date is not None or self.to_date is not None
        if (self.date is None) == (not weekly):
            raise ValueError("give either date (one period) or weekdays, from_date and to_date (a weekly period)")
        if weekly and (not self.weekdays or self.from_date is None or self.to_date is None):
            raise ValueError("a weekly period needs weekdays, from_date and to_date")
        for day in (self.date, self.from_date, self.to_date):
            if day is not None and not FIRST_YEAR < day.year < LAST_YEAR:
                raise ValueError(f"dates between {FIRST_YEAR + 1} and {LAST_YEAR - 1}")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if weekly and self.from_date and self.to_date:  # both there: checked above
            if self.to_date < self.from_date:
                raise ValueError("to_date must not be before from_date")
            if (self.to_date - self.from_date).days > 400:
                raise ValueError("a weekly period spans at most 400 days")
        return self


class TimetableCreated(BaseModel):
    created: int
    periods: list[PeriodOut]
    half_days: list[dict[str, Any]] = Field(
        default_factory=list, description="crowded half-days accepted with online_reason"
    )


class TimetableImported(BaseModel):
    created: int
    half_days: list[dict[str, Any]] = Field(default_factory=list)


class RosterPassword(BaseModel):
    personal_id: str
    full_name: str
    password: str


class RosterImported(BaseModel):
    school_year: str
    created: int
    updated: int
    unchanged: int
    passwords: list[RosterPassword] = Field(description="the new accounts' generated passwords, shown once")
