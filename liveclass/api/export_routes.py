"""A whole session as one ZIP download (manifest, recordings, attendance, chat, events): its teacher and admins.

The export is written to the audit log before the first byte goes out, then streamed (chunked, no
Content-Length): nothing of it is held in memory or in a temporary file (liveclass.archive.export).
"""

from __future__ import annotations

import logging
from contextlib import aclosing

from aiohttp import web

from liveclass.api.routing import RouteTable, current_user, path_int
from liveclass.api.work import unit_of_work
from liveclass.appkeys import DB, SETTINGS
from liveclass.archive.access import readable_session
from liveclass.archive.export import prepare_export, stream_export
from liveclass.archive.filenames import content_disposition

log = logging.getLogger(__name__)

routes = RouteTable("records")


@routes.route(
    "GET",
    "/sessions/{session_id}/export",
    summary="The whole session as one ZIP, streamed: manifest.json, recordings/, attendance.csv, "
    "chat.csv, events.jsonl (its teacher and admins)",
    access={"admin", "teacher"},
    produces="application/zip",
)
async def export_session(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        session, period = await readable_session(work.db, user, session_id)
        export = await prepare_export(
            work.db,
            session,
            period,
            request.app[SETTINGS].recordings_dir,
            request.app[SETTINGS].handouts_dir,
            exported_by=user,
        )
        work.audit("session_exported", target=f"session:{session_id}")

    # The headers go out with prepare(): the security-headers middleware comes too late for them.
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": content_disposition(export.filename, export.unicode_filename),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async with aclosing(stream_export(export, request.app[DB])) as chunks:
            async for chunk in chunks:
                await response.write(chunk)  # waits while the client is slow: memory stays one chunk
    except Exception:
        # Headers are out: no error answer is possible any more. Cut the connection, so that the client
        # sees a broken download (no final chunk) instead of a complete-looking, truncated ZIP.
        transport = request.transport
        if transport is not None and not transport.is_closing():  # not merely a client that went away
            log.exception("the export of session %s failed while streaming", session_id)
            transport.close()
        return response
    await response.write_eof()
    return response
