"""The OpenAPI document describes every answer, and the records archive's real answers match the
models that describe them (liveclass/api/archive_schemas.py, extra fields forbidden): an integrator
reading the document gets what the server sends."""

from __future__ import annotations

import json

import pytest

from liveclass.api import archive_schemas as answers
from tests.archive_seed import seed_archived_session


async def test_every_operation_documents_its_success_answer(server):
    document = await server.person(None).json("GET", "/openapi.json")
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if not any("content" in answer for status, answer in operation["responses"].items() if status.startswith("2"))
    ]
    assert undocumented == []
    zip_answer = document["paths"]["/api/v1/sessions/{session_id}/export"]["get"]["responses"]["200"]
    assert list(zip_answer["content"]) == ["application/zip"]
    attendance = document["paths"]["/api/v1/sessions/{session_id}/attendance"]["get"]["responses"]["200"]
    assert attendance["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SessionAttendance"}
    line = document["components"]["schemas"]["AttendanceLine"]
    assert line["properties"]["status"]["enum"] == ["present", "late", "absent", "denied", "not_admitted"]


@pytest.fixture
async def archived(server, school, lesson):
    return await seed_archived_session(server, school, lesson)


async def test_archive_answers_match_their_documented_models(server, school, archived):
    admin = await server.logged_in(school.admin)
    teacher = await server.logged_in(school.teacher)
    student = await server.logged_in(school.student)
    sid, class_id = archived.session_id, school.school_class.id

    def check(model, answer: dict) -> None:
        # As a JSON reader would: strict types (no "1" for 1), no field missing, none extra.
        model.model_validate_json(json.dumps(answer), strict=True)

    check(answers.SessionList, await admin.json("GET", f"/sessions?class_id={class_id}"))
    check(answers.SessionAttendance, await teacher.json("GET", f"/sessions/{sid}/attendance"))
    check(answers.ClassAttendance, await teacher.json("GET", f"/classes/{class_id}/attendance"))
    records = await teacher.json("GET", f"/sessions/{sid}/records")
    check(answers.SessionRecords, records)
    assert records["chat"] and records["lobby"] and records["moderation"] and records["recordings"]
    recordings = await teacher.json("GET", f"/sessions/{sid}/recordings")
    check(answers.RecordingList, recordings)
    check(answers.LessonVideoJob, await teacher.json("POST", f"/sessions/{sid}/lesson-video", expect=202))
    check(answers.LessonVideoJob, await teacher.json("GET", f"/sessions/{sid}/lesson-video"))

    created = await teacher.json("POST", f"/sessions/{sid}/shares", json={"days": 7}, expect=201)
    check(answers.ShareCreated, created)
    check(answers.SharedPage, await student.json("GET", f"/shared/{created['token']}"))
    check(answers.ShareList, await teacher.json("GET", f"/sessions/{sid}/shares"))
    check(answers.ShareOut, await teacher.json("DELETE", f"/sessions/{sid}/shares/{created['share_id']}"))

    check(answers.RetentionView, await admin.json("PUT", "/retention", json={"chat": 400}))
    check(answers.RetentionReport, await admin.json("POST", "/retention/run?dry_run=true"))
    check(answers.RetentionReport, await admin.json("POST", "/retention/run"))
    retention = await admin.json("GET", "/retention")
    check(answers.RetentionView, retention)
    assert retention["last_run"] is not None and retention["policies"][1]["updated_by"] is not None
    held = await admin.json("PUT", f"/sessions/{sid}/legal-hold", json={"hold": True, "reason": "Thanh tra sở"})
    check(answers.LegalHold, held)
    assert held["legal_hold_by"] is not None
    check(answers.AuditPage, await admin.json("GET", "/audit?limit=500"))


def test_a_drifted_answer_is_caught():
    """The check above is only worth something if the models refuse what they do not describe."""
    line = {
        "user_id": 1,
        "name": "Ánh",
        "personal_id": "001200010001",
        "room_role": "student",
        "enrolled": True,
        "status": "present",
        "arrived_at": None,
        "intervals": [],
        "minutes_present": 1.0,
        "minutes_late": 0.0,
        "camera_minutes": 0.0,
        "microphone_minutes": 0.0,
        "screen_minutes": 0.0,
        "hands_raised": 0,
        "messages": 0,
        "admitted_by": None,
        "denied_by": None,
        "denied_reason": None,
    }
    answers.AttendanceLine.model_validate(line)
    with pytest.raises(ValueError):
        answers.AttendanceLine.model_validate({**line, "new_field": 1})
    with pytest.raises(ValueError):
        answers.AttendanceLine.model_validate({**line, "status": "maybe"})
