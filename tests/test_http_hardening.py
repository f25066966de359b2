"""HTTP details an auditor checks: security headers on every answer (404s included), handouts whose
name and content disagree refused, and the data directory readable by the server's user only."""

from __future__ import annotations

import stat

import pytest

from tests.test_handouts import handout_rows, stored_files, upload

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.mark.parametrize(
    "path, api",
    [
        ("/", False),
        ("/no-such-page", False),
        ("/static/no-such.js", False),
        ("/api/v1/no-such-route", True),
        ("/api/v1/me", True),
    ],
)
async def test_every_answer_carries_the_security_headers(server, path, api):
    response = await server.person(None).request("GET", server.base_url + path)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    if api:
        assert response.headers["Cache-Control"] == "no-store"
    else:
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_a_handout_whose_name_lies_about_its_content_is_refused(server, period):
    session_id, teacher = period
    response = await upload(teacher.person, session_id, "Đáp án.pdf", PNG)  # a picture named as a PDF
    body = await response.json()
    assert response.status == 415 and body["error"]["code"] == "file_name_mismatch", body
    assert ".png" in body["error"]["message"]
    assert stored_files(server.settings) == [] and await handout_rows(server) == 0


async def test_the_store_and_its_folders_are_the_servers_own(server, period):
    data = server.settings.data_dir
    for path in (data / "liveclass.db", data / "liveclass.db-wal"):
        assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (server.settings.handouts_dir, server.settings.recordings_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
