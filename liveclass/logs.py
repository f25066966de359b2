"""Logs: plain text (the default) or one JSON object per line (`LIVECLASS_LOG_FORMAT=json`, for a log
collector), and a request id on every HTTP request.

The request id is the client's `X-Request-Id` when it is a plain token (a proxy's id carries through), else a
new one; it is sent back in `X-Request-Id` and carried by every log line written while the request is handled
(the access log's line too), so one request's lines can be found together.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone

from aiohttp import web

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_KEY = web.RequestKey("request_id", str)  # on the request: the access log runs after the handler
REQUEST_ID_HEADER = "X-Request-Id"
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request being handled (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, log_format: str) -> None:
    """The root logger's one handler (stderr), as text or JSON lines."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


@web.middleware
async def request_id_middleware(request: web.Request, handler):
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _PLAIN_TOKEN.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID_KEY] = request_id
    token = REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        REQUEST_ID.reset(token)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
