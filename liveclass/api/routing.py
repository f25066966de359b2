"""Declarative routes: each handler states who may call it and what body it takes.

One wrapper enforces authentication (401), the account roles allowed (403), the forced password change,
CSRF, and the validation of the query and the body (each a pydantic model, handed to the handler as `query=`
and `body=`), so no handler can forget them; the OpenAPI document is built from the same declarations (see
openapi.py). A handler does its database work, and writes the audit log, through work.py's unit of work.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from liveclass.appkeys import USER, CSRF_FAILED
from liveclass.archive.filenames import content_disposition
from liveclass.errors import ApiError
from liveclass.models import MAX_ID, AccountRole, User

PUBLIC = "public"  # no login needed
ANY_USER = "any"  # any logged-in account

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    access: str | frozenset[AccountRole]
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    # Allowed before a forced password change (me, logout, change password).
    allowed_before_password_change: bool = False
    tags: list[str] = field(default_factory=list)
    query: type[BaseModel] | None = None  # its parameters (liveclass/api/query.py)
    many: bool = False  # the answer is {"items": [response, ...]}
    other_statuses: dict[int, str] = field(default_factory=dict)  # further success answers
    produces: str | None = None  # the media type of a file answer (a recording, a ZIP, a spreadsheet)


class RouteTable:
    def __init__(self, tag: str):
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        access,
        body=None,
        response=None,
        status=200,
        allowed_before_password_change=False,
        query: type[BaseModel] | None = None,
        many=False,
        other_statuses: dict[int, str] | None = None,
        produces: str | None = None,
    ):
        if isinstance(access, (set, frozenset, list, tuple)):
            access = frozenset(AccountRole(a) for a in access)

        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method,
                    path,
                    handler,
                    summary,
                    access,
                    body,
                    response,
                    status,
                    allowed_before_password_change,
                    [self.tag],
                    query,
                    many,
                    other_statuses or {},
                    produces,
                )
            )
            return handler

        return register


def current_user(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:  # the wrapper guarantees this for non-public routes
        raise ApiError(401, "not_authenticated", "Please log in.")
    return user


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


NUL_REFUSED = "Text may not contain the NUL character (\\u0000)."


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the request body as JSON (Content-Type: application/json).")
    try:
        raw = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if _has_nul(raw):  # no store keeps it (PostgreSQL refuses it in text): a clear 400, not a 500
        raise ApiError(400, "invalid_request", NUL_REFUSED)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    # A repeated parameter counts once, with its first value.
    try:
        return model.model_validate({name: request.query[name] for name in request.query})
    except ValidationError as exc:
        raise _invalid(exc, "query") from None


def _invalid(exc: ValidationError, where: str) -> ApiError:
    """400 invalid_request, with every problem as {field, message}; a rule of the whole query or body has
    the field ""."""
    details = [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in exc.errors(include_url=False)
    ]
    summary = "; ".join(f"{d['field'] or where}: {d['message']}" for d in details)
    return ApiError(400, "invalid_request", f"Invalid request: {summary}", details=details)


def _wrap(route: Route) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if route.access != PUBLIC:
            user: User | None = request.get(USER)
            if user is None:
                raise ApiError(401, "not_authenticated", "Please log in.")
            if request.get(CSRF_FAILED):
                raise ApiError(403, "csrf_failed", "Missing or wrong X-CSRF-Token header; reload the page.")
            if user.must_change_password and not route.allowed_before_password_change:
                raise ApiError(403, "password_change_required", "Change your password before continuing.")
            if route.access != ANY_USER and user.role not in route.access:
                raise ApiError(403, "forbidden", "Your account may not do this.")
        if "\x00" in request.path or any(_has_nul(v) for v in request.query.values()):
            raise ApiError(400, "invalid_request", NUL_REFUSED)
        kwargs: dict[str, Any] = {}
        if route.query is not None:
            kwargs["query"] = _parse_query(request, route.query)
        if route.body is not None:
            kwargs["body"] = await _parse_body(request, route.body)
        try:
            return await route.handler(request, **kwargs)
        except IntegrityError:  # two requests raced to create the same thing; the other one won
            raise ApiError(
                409, "conflict", "Another request changed this at the same moment; reload and try again."
            ) from None

    handler.__name__ = route.handler.__name__
    return handler


def add_routes(app: web.Application, prefix: str, tables: list[RouteTable]) -> list[Route]:
    routes = [r for t in tables for r in t.routes]
    for r in routes:
        app.router.add_route(r.method, prefix + r.path, _wrap(r))
    return routes


_ID = re.compile(r"[0-9]{1,10}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses


def parse_id(text: str) -> int | None:
    """A row id written in a URL, or None if it is not one (not ASCII digits, 0, or beyond MAX_ID)."""
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def path_int(request: web.Request, name: str) -> int:
    """The id in the path; one that cannot exist is a 404, as an unknown one is."""
    value = parse_id(request.match_info[name])
    if value is None:
        raise ApiError(404, "not_found", f"No such {name.removesuffix('_id')}.")
    return value


def dump(model: BaseModel | list[BaseModel], status: int = 200, **extra) -> web.Response:
    if isinstance(model, list):
        payload: Any = {"items": [m.model_dump(mode="json") for m in model], **extra}
    else:
        payload = model.model_dump(mode="json")
    return web.json_response(payload, status=status)


def attachment(data: bytes, content_type: str, ascii_name: str, name: str, private: bool = False) -> web.Response:
    """A file made in memory (a template, an export), downloaded as `name` (`ascii_name` for old browsers);
    `private`: personal data, never kept in a cache."""
    headers = {"Content-Type": content_type, "Content-Disposition": content_disposition(ascii_name, name)}
    if private:
        headers["Cache-Control"] = "no-store"
    return web.Response(body=data, headers=headers)
