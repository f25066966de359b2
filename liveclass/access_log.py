"""The HTTP access log, without secrets: share-link tokens in request paths are cut out.

A share link's token opens recordings of children for the class it was made for; it travels in the
path of GET /api/v1/shared/{token}…, and a log file is read by more people than the recordings are.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from liveclass.logs import REQUEST_ID_KEY

_SHARE_TOKEN = re.compile(r"(/shared/)[^/?#]+")


def redact(path: str) -> str:
    return _SHARE_TOKEN.sub(r"\1…", path)


class AccessLog(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        request_id = request.get(REQUEST_ID_KEY)  # liveclass.logs: the handler's context is gone by now
        self.logger.info(
            '%s "%s %s" %s %s %.3fs request=%s',
            request.remote,
            request.method,
            redact(request.path_qs),
            response.status,
            response.body_length,
            time,
            request_id,
            extra={"request_id": request_id},
        )
