"""Query parameters declared as pydantic models on the route table (liveclass/api/query.py): one rule for a
bad value on every route, typed in the OpenAPI document; and the unit of work's audit entries, each with the
client's address (liveclass/api/work.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from liveclass.models import AuditEntry
from tests.helpers import add_user


async def _refused(person, method: str, path: str, **kwargs) -> dict:
    response = await person.request(method, path, **kwargs)
    answer = await response.json()
    assert response.status == 400, (path, answer)
    error = answer["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith("Invalid request: "), error
    return error


@pytest.mark.parametrize(
    "method,path,field,words",
    [
        ("GET", "/users?limit=abc", "limit", "whole number"),  # a whole number
        ("GET", "/users?limit=0", "limit", "greater than or equal to 1"),  # its limits
        ("GET", "/questions?offset=-1", "offset", "whole number"),
        ("GET", "/sessions?class_id=²", "class_id", "whole number"),  # an id
        ("GET", "/audit?before_id=0", "before_id", "greater than or equal to 1"),
        ("GET", "/periods?class_id=2147483648", "class_id", "less than or equal to 2147483647"),
        ("GET", "/users?role=pupil", "role", "'admin', 'teacher'"),  # a choice
        ("GET", "/audit?from=yesterday", "from", "between the years"),  # a date
        ("GET", "/periods?to=2026-11-24T00:00:00", "to", "ISO 8601 time with an offset"),  # a time
        ("GET", "/questions?mine=maybe", "mine", "true or false"),  # a flag
        ("POST", "/retention/run?dry_run=maybe", "dry_run", "true or false"),
        ("POST", "/roster/import?school_year=2026", "school_year", "2026-2027"),  # a school year
        ("POST", "/timetable/import?school_year=26-27", "school_year", "2026-2027"),
        ("GET", "/sessions?from=2026-11-24&to=2026-11-23", "", "ends before it starts"),  # the query as a whole
        ("GET", "/classes/{class_id}/attendance?from=2020-01-01&to=2026-01-01", "", "at most 400 days"),
    ],
)
async def test_a_bad_query_value_is_a_400_naming_the_parameter(server, school, method, path, field, words):
    admin = await server.logged_in(school.admin)
    error = await _refused(admin, method, path.format(class_id=school.school_class.id), data=b"")
    assert [d["field"] for d in error["details"]] == [field], error
    assert words in error["details"][0]["message"] and words in error["message"], error


async def test_every_bad_parameter_is_listed_at_once(server, school):
    admin = await server.logged_in(school.admin)
    error = await _refused(admin, "GET", "/sessions?limit=201&teacher_id=x&from=2026-13-01&offset=7")
    assert sorted(d["field"] for d in error["details"]) == ["from", "limit", "teacher_id"]


async def test_empty_values_are_left_out_and_unknown_parameters_ignored(server, school):
    admin = await server.logged_in(school.admin)
    everything = await admin.json("GET", "/periods")
    assert await admin.json("GET", "/periods?class_id=&from=&to=&colour=blue") == everything
    assert (await admin.json("GET", "/sessions?limit=&offset=&subject=&nope=1"))["total"] == 0
    assert len((await admin.json("GET", "/users?role=&q=&limit="))["items"]) == 7
    # Beyond the last possible row an offset finds nothing, as any large one does.
    assert (await admin.json("GET", "/users?offset=99999999999999999999"))["items"] == []


async def test_the_question_banks_empty_topic_is_a_value(server, school):
    teacher = await server.logged_in(school.teacher)
    base = {"kind": "truefalse", "text": "Hàm y = 2x đồng biến trên R.", "correct": ["true"], "subject": "Toán"}
    filed = await teacher.json("POST", "/questions", expect=201, json={**base, "topic": "Chương 1"})
    loose = await teacher.json("POST", "/questions", expect=201, json={**base, "topic": ""})
    assert [q["id"] for q in (await teacher.json("GET", "/questions?topic="))["items"]] == [loose["id"]]
    assert [q["id"] for q in (await teacher.json("GET", "/questions?topic=Chương 1"))["items"]] == [filed["id"]]
    assert len((await teacher.json("GET", "/questions"))["items"]) == 2


async def test_the_openapi_document_types_each_query_parameter(server):
    spec = await server.person(None).json("GET", "/openapi.json")
    paths = spec["paths"]

    def param(path: str, method: str, name: str) -> dict:
        found = [p for p in paths[f"/api/v1{path}"][method]["parameters"] if p["name"] == name]
        assert len(found) == 1 and found[0]["in"] == "query" and found[0]["required"] is False, found
        return found[0]["schema"]

    assert param("/sessions", "get", "limit") == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    assert param("/sessions", "get", "class_id") == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    assert param("/sessions", "get", "from") == {"type": "string", "format": "date"}
    assert param("/users", "get", "role")["enum"] == ["admin", "teacher", "student", "parent", "observer"]
    assert param("/users", "get", "offset") == {"type": "integer", "minimum": 0, "default": 0}
    assert param("/periods", "get", "to") == {"type": "string", "format": "date-time"}
    assert param("/questions", "get", "mine") == {"type": "boolean", "default": False}
    assert param("/retention/run", "post", "dry_run")["type"] == "boolean"
    assert param("/roster/import", "post", "school_year")["pattern"] == "^[0-9]{4}-[0-9]{4}$"
    assert param("/audit", "get", "before_id")["type"] == "integer"
    # Every query parameter is described by its model: none is left a bare string without a word.
    for path, operations in paths.items():
        for method, operation in operations.items():
            for p in operation["parameters"]:
                if p["in"] == "query":
                    assert p["schema"].get("type") and (p.get("description") or "default" in p["schema"]), (
                        method,
                        path,
                        p,
                    )


FORWARDED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.mark.settings(trusted_proxies=["127.0.0.1"])
async def test_every_audit_entry_of_the_users_routes_carries_the_client_address(server, school):
    """Behind a trusted proxy, the address the proxy saw; once some users routes wrote none at all."""
    admin = await server.logged_in(school.admin)
    async with server.db() as db:
        before = (await db.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))).scalar_one()
        parent = await add_user(db, "parent", "Phụ Huynh Mới")
        await db.commit()
    class_id = school.school_class.id

    async def call(method: str, path: str, expect: int = 200, **kwargs):
        return await admin.json(method, path, expect=expect, headers=dict(FORWARDED), **kwargs)

    created = await call(
        "POST", "/users", 201, json={"personal_id": "001299999999", "full_name": "Học Sinh Mới", "role": "student"}
    )
    user_id = created["user"]["id"]
    await call("PATCH", f"/users/{user_id}", json={"full_name": "Học Sinh Đổi Tên"})
    await call("POST", f"/users/{user_id}/reset-password")
    await call("PUT", f"/users/{parent.id}/children/{user_id}")
    new_class = await call("POST", "/classes", 201, json={"name": "11B9", "school_year": "2026-2027"})
    await call("PATCH", f"/classes/{new_class['id']}", json={"name": "11B8"})
    await call("PUT", f"/classes/{class_id}/students/{user_id}")
    await call("DELETE", f"/classes/{class_id}/students/{user_id}")
    assignment = await call(
        "POST", f"/classes/{class_id}/assignments", 201, json={"teacher_id": school.other_teacher.id, "subject": "Lý"}
    )
    await call("DELETE", f"/classes/{class_id}/assignments/{assignment['id']}")
    roster = "personal_id,full_name,role,class,date_of_birth,parent_of\n001209000001,Lý Thu Trang,student,11B8,,\n"
    await call("POST", "/roster/import?school_year=2026-2027", data=roster.encode())

    async with server.db() as db:
        entries = (await db.execute(select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id))).scalars()
        written = [(e.action, e.address, e.actor_id) for e in entries]
    assert [action for action, _, _ in written] == [
        "user_created",
        "user_updated",
        "password_reset",
        "parent_linked",
        "class_created",
        "class_updated",
        "student_enrolled",
        "student_unenrolled",
        "teacher_assigned",
        "teacher_unassigned",
        "roster_imported",
    ]
    assert {(address, actor) for _, address, actor in written} == {("203.0.113.7", school.admin.id)}
