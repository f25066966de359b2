"""Query parameters: a route declares its own as a pydantic model (`query=` on the route table, routing.py);
these are the kinds of value such models are made of. One set of rules for every route:

- a value that does not read as its kind is a 400 invalid_request naming each bad parameter, in the shape
  of a bad body (routing.py);
- an empty value (`?class_id=`, what an empty form field sends) is the same as leaving the parameter out;
- parameters a route does not know are ignored.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from liveclass.models import FIRST_YEAR, LAST_YEAR, MAX_ID

YEARS = f"between the years {FIRST_YEAR + 1} and {LAST_YEAR - 1}"


class Query(BaseModel):
    """The base of every route's query model."""

    model_config = ConfigDict(extra="ignore")
    # Parameters whose empty value means something of its own (the question bank's `topic=`: no topic).
    keeps_empty: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != "" or k in cls.keeps_empty}
        return data


_DIGITS = re.compile(r"[0-9]{1,40}")  # ASCII only: int() also reads "²"-like digits, " 7", "+7" and "7_0"


def _digits(raw: Any) -> Any:
    if isinstance(raw, str):
        if not _DIGITS.fullmatch(raw):
            raise PydanticCustomError("whole_number", "must be a whole number")
        return int(raw)
    return raw


def _digits_capped(raw: Any) -> Any:
    # An offset past the last possible row finds nothing, as any large one does: no need to refuse it.
    value = _digits(raw)
    return min(value, MAX_ID) if isinstance(value, int) else value


# The limits go before the reader, so that they reach the OpenAPI document (pydantic builds the
# Annotated types from the left).
# A whole number written in ASCII digits; its limits are the field's (Field(ge=..., le=...)).
Whole = Annotated[int, BeforeValidator(_digits)]
# A row's id; in the path an impossible one is a 404 (routing.path_int), in a query a 400.
Id = Annotated[int, Ge(1), Le(MAX_ID), BeforeValidator(_digits)]
# How many to skip when paging; beyond the last possible row, the page is empty.
Offset = Annotated[int, Ge(0), BeforeValidator(_digits_capped)]


def _school_date(raw: Any) -> Any:
    if isinstance(raw, date):
        return raw
    try:
        value = date.fromisoformat(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not FIRST_YEAR < value.year < LAST_YEAR:
        raise PydanticCustomError("date", "must be a date like 2026-11-23, {years}", {"years": YEARS})
    return value


def _time(raw: Any) -> Any:
    if isinstance(raw, datetime):
        return raw
    try:
        value = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or value.tzinfo is None or not FIRST_YEAR < value.year < LAST_YEAR:
        raise PydanticCustomError(
            "time",
            "must be an ISO 8601 time with an offset {years}, e.g. 2026-11-24T00:00:00+07:00",
            {"years": YEARS},
        )
    return value


def _flag(raw: Any) -> Any:
    if isinstance(raw, str):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise PydanticCustomError("flag", "must be true or false")
        return raw.lower() in ("true", "1")
    return raw


def _school_year(raw: Any) -> Any:
    if isinstance(raw, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{4}", raw):
        raise PydanticCustomError("school_year", "is written 2026-2027 / Năm học ghi dạng 2026-2027")
    return raw


# A school-local date (YYYY-MM-DD).
SchoolDate = Annotated[date, BeforeValidator(_school_date)]
# An ISO 8601 time with its UTC offset (send the "+" as %2B).
Time = Annotated[datetime, BeforeValidator(_time)]
# true / false (also 1 / 0, in any case).
Flag = Annotated[bool, BeforeValidator(_flag)]
SchoolYear = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{4}$"), BeforeValidator(_school_year)]


def trimmed(limit: int | None = None, *, one_line: bool = False) -> BeforeValidator:
    """Text: the spaces around it dropped (`one_line`: every run of spaces made one), cut at `limit` characters
    (the store's column, or what a search needs) if one is given."""

    def read(raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        return (" ".join(raw.split()) if one_line else raw.strip())[:limit]

    return BeforeValidator(read)


class DateRange(Query):
    """A range of school-local dates, both included; either end may be left open."""

    from_: SchoolDate | None = Field(None, alias="from", description="first school-local date (YYYY-MM-DD)")
    to: SchoolDate | None = Field(None, description="last school-local date (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _in_order(self) -> DateRange:
        if self.from_ and self.to and self.to < self.from_:
            raise PydanticCustomError("date_range", "the date range ends before it starts (to < from)")
        return self
