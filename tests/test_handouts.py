"""Handouts (tài liệu) with a real server and real Socket.IO clients: upload, announce, download, refuse."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import func, select

from liveclass.models import Enrollment, Handout
from tests.helpers import add_user
from tests.live import admitted, enter

PDF = (
    b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
    b"trailer <</Root 1 0 R>>\n%%EOF\n"
)
VIETNAMESE_NAME = "Bài giảng Toán 10 – Chương 1 (phương trình bậc hai).pdf"


def multipart(
    filename: str, content: bytes, *, field: str = "file", content_type: str = "application/octet-stream"
) -> tuple[bytes, dict]:
    """A body as a browser (or curl -F) sends it: the file name as raw UTF-8 in the quoted parameter."""
    boundary = "----LiveClassTestBoundary7MA4YWxkTrZu0gW"
    escaped = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{escaped}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def upload(person, session_id: int, filename: str, content: bytes, **kwargs) -> aiohttp.ClientResponse:
    body, headers = multipart(filename, content, **kwargs)
    return await person.request("POST", f"/sessions/{session_id}/handouts", data=body, headers=headers)


async def upload_formdata(person, session_id: int, filename: str, content: bytes) -> aiohttp.ClientResponse:
    """The same upload from aiohttp's FormData, which percent-encodes the file name (RFC 7578 4.2)."""
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="application/pdf")
    return await person.request("POST", f"/sessions/{session_id}/handouts", data=form)


def stored_files(settings) -> list[Path]:
    return sorted(p for p in settings.handouts_dir.rglob("*") if p.is_file())


async def handout_rows(server) -> int:
    async with server.db() as db:
        return (await db.execute(select(func.count()).select_from(Handout))).scalar_one()


def minimal_docx() -> bytes:
    """The smallest Word document a word processor opens: content types, package rels, the body."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as docx:
        docx.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        docx.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        docx.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            "<w:body><w:p><w:r><w:t>Bài tập về nhà</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("setup.exe", b"MZ\x90\x00" + b"\x00" * 200)
    return buffer.getvalue()


DISGUISED = {
    "elf executable": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200,
    "windows executable": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200,
    "html page": b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n",
    "zip archive": plain_zip(),
    "shell script": b"#!/bin/sh\nrm -rf ~\n",
}


async def enroll(server, school, name: str):
    async with server.db() as db:
        user = await add_user(db, "student", name)
        db.add(Enrollment(class_id=school.school_class.id, student_id=user.id))
        await db.commit()
    return user


@pytest.fixture
async def room(period):
    """A running period with its teacher in the room: (session id, teacher's HTTP person, teacher's client)."""
    session_id, teacher = period
    return session_id, teacher.person, teacher


# -- the whole story ------------------------------------------------------------------------------------
async def test_handout_is_announced_to_admitted_students_and_downloadable_by_them_only(server, school, room):
    session_id, teacher_person, teacher = room
    huy = await enroll(server, school, "Trần Gia Huy")
    never = await enroll(server, school, "Vũ Thị Lan")  # on the roster, but never let in

    anh_client = await admitted(teacher, await server.logged_in(school.student), session_id)
    huy_client = await admitted(teacher, await server.logged_in(huy), session_id)
    lan_person = await server.logged_in(never)
    lan_client = await enter(lan_person, session_id)  # waits in the lobby during the upload
    await lan_client.wait_for("lobby:waiting")

    # The teacher hands out a file while both students are in the room and one waits in the lobby.
    response = await upload(teacher_person, session_id, VIETNAMESE_NAME, PDF, content_type="application/pdf")
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["filename"] == VIETNAMESE_NAME
    assert answer["content_type"] == "application/pdf"
    assert answer["size"] == len(PDF) and answer["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert answer["url"] == f"/api/v1/sessions/{session_id}/handouts/{answer['handout_id']}"
    assert answer["announced"] is True

    for client in (anh_client, huy_client, teacher):
        message = await client.wait_for("chat:message", lambda m: m["kind"] == "handout")
        assert message["handout"]["url"] == answer["url"]
        assert message["handout"]["handout_id"] == answer["handout_id"]
        assert message["text"] == VIETNAMESE_NAME
        assert message["to"] is None and message["from"]["role"] == "teacher"
    await lan_client.call("room:sync")  # its answer, ok or not, comes after anything the announcement sent it
    assert not lan_client.events("chat:message")  # the lobby hears nothing of the room

    # An admitted student opens the link at once.
    anh = anh_client.person
    download = await anh.request("GET", server.base_url + answer["url"])
    assert download.status == 200, await download.text()
    assert await download.read() == PDF
    assert download.headers["Content-Type"].startswith("application/pdf")
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert f"filename*=UTF-8''{quote(VIETNAMESE_NAME, safe='')}" in disposition
    assert download.headers.get("X-Content-Type-Options") == "nosniff"
    listed = await huy_client.person.json("GET", f"/sessions/{session_id}/handouts")
    assert [h["handout_id"] for h in listed["items"]] == [answer["handout_id"]]

    # A student of the class who was never let in: 403, for the list and the file.
    assert (await lan_person.json("GET", answer["url"].removeprefix("/api/v1"), expect=403))["error"][
        "code"
    ] == "forbidden"
    await lan_person.json("GET", f"/sessions/{session_id}/handouts", expect=403)
    # No room role at all (another class's student, a parent of a period not open to parents,
    # another class's teacher): the session does not exist for them.
    for outsider in (school.other_student, school.parent, school.other_teacher):
        person = await server.logged_in(outsider)
        body = await person.json("GET", answer["url"].removeprefix("/api/v1"), expect=404)
        assert body["error"]["code"] == "not_found"
        await person.json("GET", f"/sessions/{session_id}/handouts", expect=404)
    # Not logged in.
    anonymous = server.person()
    for path in (answer["url"].removeprefix("/api/v1"), f"/sessions/{session_id}/handouts"):
        assert (await anonymous.json("GET", path, expect=401))["error"]["code"] == "not_authenticated"
    response = await upload(anonymous, session_id, "x.pdf", PDF)
    assert response.status == 401
    # Observer and admin accounts may read the session's material.
    for reader in (school.observer, school.admin):
        person = await server.logged_in(reader)
        assert (await person.request("GET", server.base_url + answer["url"])).status == 200
    # A handout id of another session, or none at all.
    assert (await anh.request("GET", server.api(f"/sessions/{session_id}/handouts/999999"))).status == 404

    # The admitted student stays a participant after leaving: the file is still theirs to open.
    await anh_client.ok("room:leave")
    await anh_client.wait_for("_disconnected")  # she is out of the room
    assert (await anh.request("GET", server.base_url + answer["url"])).status == 200


async def test_the_aiohttp_client_percent_encoded_file_name_is_decoded(server, school, room):
    session_id, teacher_person, _ = room
    response = await upload_formdata(teacher_person, session_id, VIETNAMESE_NAME, PDF)
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["filename"] == VIETNAMESE_NAME


async def test_only_the_periods_teacher_uploads(server, school, room):
    session_id, _, teacher = room
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    response = await upload(student.person, session_id, "bai.pdf", PDF)
    assert response.status == 403
    admin = await server.logged_in(school.admin)
    assert (await upload(admin, session_id, "bai.pdf", PDF)).status == 403
    other_teacher = await server.logged_in(school.other_teacher)
    assert (await upload(other_teacher, session_id, "bai.pdf", PDF)).status == 404
    assert stored_files(server.settings) == [] and await handout_rows(server) == 0


# -- what is accepted ---------------------------------------------------------------------------------
async def test_utf8_text_and_docx_are_accepted(server, school, room):
    session_id, teacher_person, _ = room
    text = "Bài tập về nhà: giải phương trình x² − 5x + 6 = 0.\nHạn nộp: thứ Hai.\n".encode()
    response = await upload(teacher_person, session_id, "Bài tập tuần 12.txt", text, content_type="text/plain")
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["content_type"] == "text/plain"
    download = await teacher_person.request("GET", server.base_url + answer["url"])
    assert await download.read() == text
    assert download.headers["Content-Type"].replace(" ", "").lower() == "text/plain;charset=utf-8"

    # A long text whose first 8 KiB end in the middle of a multibyte character is still valid UTF-8.
    long_text = ("a" + "ă" * 6000).encode()
    response = await upload(teacher_person, session_id, "dài.txt", long_text)
    assert response.status == 201, await response.text()

    docx = minimal_docx()
    response = await upload(teacher_person, session_id, "Đề cương ôn tập.docx", docx)
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["content_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    download = await teacher_person.request("GET", server.base_url + answer["url"])
    assert await download.read() == docx

    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    response = await upload(teacher_person, session_id, "hình.png", png)
    assert response.status == 201 and (await response.json())["content_type"] == "image/png"

    listed = await teacher_person.json("GET", f"/sessions/{session_id}/handouts")
    assert [h["filename"] for h in listed["items"]] == [
        "Bài tập tuần 12.txt",
        "dài.txt",
        "Đề cương ôn tập.docx",
        "hình.png",
    ]
    assert all("announced" not in h for h in listed["items"])
    assert len(stored_files(server.settings)) == 4 and await handout_rows(server) == 4


# -- what is refused, and nothing of it kept ----------------------------------------------------------
@pytest.mark.parametrize("kind", DISGUISED)
async def test_a_disguised_file_is_refused_and_nothing_is_kept(server, school, room, kind):
    session_id, teacher_person, teacher = room
    response = await upload(
        teacher_person, session_id, "Bài giảng.pdf", DISGUISED[kind], content_type="application/pdf"
    )
    body = await response.json()
    assert response.status == 415, body
    assert body["error"]["code"] == "file_type_not_allowed"
    assert stored_files(server.settings) == []
    assert await handout_rows(server) == 0
    assert not [m for m in teacher.events("chat:message") if m["kind"] == "handout"]


@pytest.mark.parametrize(
    "content",
    [
        b"Xin ch\xe0o c\xe1c em\n",  # Latin-1 / Windows-1258, not UTF-8
        b"Ghi ch\xc3\xba \xff\xfe trong b\xc3\xa0i\n",  # an invalid byte in the middle
        "Bài tập".encode() + b"\xff",  # an invalid byte at the very end
        "Bài tập".encode() + "ư".encode()[:1],  # a multibyte character cut off at the end of the file
        b"a" * 10_000 + b"\xc3\x28 tail",  # invalid after the first 8 KiB
    ],
    ids=["latin1", "middle", "last-byte", "truncated", "after-8k"],
)
async def test_text_that_is_not_utf8_is_refused(server, school, room, content):
    session_id, teacher_person, _ = room
    response = await upload(teacher_person, session_id, "ghi-chú.txt", content, content_type="text/plain")
    body = await response.json()
    assert response.status == 415, body
    assert body["error"]["code"] == "file_type_not_allowed"
    assert stored_files(server.settings) == [] and await handout_rows(server) == 0


async def test_text_under_another_name_is_refused(server, school, room):
    session_id, teacher_person, _ = room
    response = await upload(teacher_person, session_id, "bài.pdf", "Chỉ là chữ".encode())
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "file_type_not_allowed"


async def test_empty_file_and_missing_field(server, school, room):
    session_id, teacher_person, _ = room
    response = await upload(teacher_person, session_id, "trống.pdf", b"")
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "empty_file", body
    response = await upload(teacher_person, session_id, "bai.pdf", PDF, field="attachment")
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_request"
    response = await teacher_person.request("POST", f"/sessions/{session_id}/handouts", json={"file": "x"})
    assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"
    assert stored_files(server.settings) == [] and await handout_rows(server) == 0


async def test_a_broken_or_cut_off_upload_is_refused_with_a_message_and_nothing_kept(server, school, room):
    session_id, teacher_person, _ = room
    path = f"/sessions/{session_id}/handouts"
    body, headers = multipart("bai.pdf", PDF)
    cut_off = body[: len(body) // 2]  # the connection dropped mid-file: no closing boundary
    for data, content_type, code in [
        (b"x", "multipart/form-data", "invalid_request"),  # no boundary named
        (b"garbage", "multipart/form-data; boundary=abc", "invalid_request"),  # no part at all
        (cut_off, headers["Content-Type"], "upload_incomplete"),
        (
            body.replace(b'filename="bai.pdf"', b'filename="b\x00i.pdf"'),
            headers["Content-Type"],
            "invalid_request",
        ),  # a part header aiohttp refuses
        (
            body.replace(b'filename="bai.pdf"', b'filename="' + b"x" * 100_000 + b'.pdf"'),
            headers["Content-Type"],
            "invalid_request",
        ),
    ]:  # a part header line too long
        response = await teacher_person.request("POST", path, data=data, headers={"Content-Type": content_type})
        answer = await response.json()
        assert response.status == 400 and answer["error"]["code"] == code, answer
        assert answer["error"]["message"]
    assert stored_files(server.settings) == [] and await handout_rows(server) == 0
    assert (await upload(teacher_person, session_id, "bai.pdf", PDF)).status == 201  # the next one works


@pytest.mark.settings(handout_max_bytes=4096)
async def test_size_limit(server, room):
    limit = 4096
    session_id, teacher_person, teacher = room
    exactly = PDF + b"%" * (limit - len(PDF))
    response = await upload(teacher_person, session_id, "vừa đủ.pdf", exactly)
    assert response.status == 201, await response.text()
    for size in (limit + 1, 3 * 1024 * 1024):  # over by a byte; over by far more than one read
        response = await upload(teacher_person, session_id, "quá lớn.pdf", PDF + b"%" * (size - len(PDF)))
        body = await response.json()
        assert response.status == 413, body
        assert body["error"]["code"] == "file_too_large"
        assert "0 MB" not in body["error"]["message"]  # the limit is told as it is, not rounded to 0
    assert len(stored_files(server.settings)) == 1 and await handout_rows(server) == 1
    # The connection stays usable after a refusal.
    listed = await teacher_person.json("GET", f"/sessions/{session_id}/handouts")
    assert [h["filename"] for h in listed["items"]] == ["vừa đủ.pdf"]


# -- the session's state ------------------------------------------------------------------------------
async def test_upload_after_the_period_ended(server, school, room):
    session_id, teacher_person, teacher = room
    await teacher_person.json("POST", f"/periods/{school.period.id}/end")
    await teacher.wait_for("room:ended")
    response = await upload(teacher_person, session_id, "muộn.pdf", PDF)
    body = await response.json()
    assert response.status == 409 and body["error"]["code"] == "session_not_running", body
    assert stored_files(server.settings) == [] and await handout_rows(server) == 0


async def test_teacher_not_in_the_room_still_hands_out(server, school):
    teacher_person = await server.logged_in(school.teacher)
    session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
    # Nobody has ever connected to the room.
    response = await upload(teacher_person, session["id"], "Trước giờ học.pdf", PDF)
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["announced"] is False

    # The teacher was in the room and left it.
    teacher = await enter(teacher_person, session["id"])
    await teacher.wait_for("room:state")
    await teacher.ok("room:leave")
    response = await upload(teacher_person, session["id"], "Sau khi rời phòng.pdf", PDF)
    answer2 = await response.json()
    assert response.status == 201, answer2
    assert answer2["announced"] is False

    listed = await teacher_person.json("GET", f"/sessions/{session['id']}/handouts")
    assert [h["filename"] for h in listed["items"]] == ["Trước giờ học.pdf", "Sau khi rời phòng.pdf"]
    assert await handout_rows(server) == 2 and len(stored_files(server.settings)) == 2
    download = await teacher_person.request("GET", server.base_url + answer["url"])
    assert await download.read() == PDF


# -- file names -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sender", [upload, upload_formdata], ids=["browser", "aiohttp"])
@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\Windows\\win.ini.pdf", "win.ini.pdf"),
        ("/etc/cron.d/evil.pdf", "evil.pdf"),
        ('bài "1".pdf', "bài 1.pdf"),
    ],
)
async def test_path_traversal_in_the_file_name_is_neutralised(server, school, room, tmp_path, sender, name, expected):
    session_id, teacher_person, _ = room
    response = await sender(teacher_person, session_id, name, PDF)
    answer = await response.json()
    assert response.status == 201, answer
    if sender is upload and "\\" in name:
        # aiohttp's multipart parser reads a backslash in a quoted name as an escape and drops it before
        # the handler sees the name: nothing is left of the folders to reach, only an odd name.
        assert answer["filename"].endswith(expected) and not set(answer["filename"]) & {"/", "\\"}
    else:
        assert answer["filename"] == expected
    files = stored_files(server.settings)
    assert len(files) == 1
    stored = files[0]
    assert stored.parent == server.settings.handouts_dir / str(session_id)
    assert all(c in "0123456789abcdef" for c in stored.name)  # a random name; the teacher's name is data
    assert stored.read_bytes() == PDF
    assert not (tmp_path / "etc").exists() and not (server.settings.data_dir / "etc").exists()
    download = await teacher_person.request("GET", server.base_url + answer["url"])
    assert await download.read() == PDF
    assert "\r" not in download.headers["Content-Disposition"] and "\n" not in download.headers["Content-Disposition"]


async def test_header_breaking_characters_are_dropped_from_the_name(server, school, room):
    session_id, teacher_person, _ = room
    # As a browser sends it: `"`, CR and LF percent-encoded (aiohttp's client refuses to send them at all).
    response = await upload(teacher_person, session_id, 'a"\r\nX-Evil: 1.pdf', PDF)
    answer = await response.json()
    assert response.status == 201, answer
    assert answer["filename"] == "aX-Evil 1.pdf"
    download = await teacher_person.request("GET", server.base_url + answer["url"])
    assert "X-Evil" not in download.headers


async def test_a_student_just_let_in_opens_the_handout_at_once(server, school, room):
    """The announcement reaches a student the moment they are admitted; the link must work then, not only
    once the attendance record has been written (records are written in batches, every 0.25 s)."""
    session_id, teacher_person, teacher = room
    response = await upload(teacher_person, session_id, "Đề bài.pdf", PDF)
    answer = await response.json()
    assert response.status == 201, answer
    for name in ("Học Sinh Một", "Học Sinh Hai", "Học Sinh Ba"):
        user = await enroll(server, school, name)
        student = await enter(await server.logged_in(user), session_id)
        await student.wait_for("lobby:waiting")
        await teacher.wait_for("lobby:updated", lambda d, n=name: [e["name"] for e in d["lobby"]] == [n])
        await teacher.ok("lobby:admit", {"all": True})
        state = await student.wait_for("room:state")
        shared = next(m for m in state["chat"] if m["kind"] == "handout")  # in the chat history on entry
        download = await student.person.request("GET", server.base_url + shared["handout"]["url"])
        assert download.status == 200, (name, await download.text())
        assert await download.read() == PDF
