"""Input no store can keep, found by fuzzing the API with schemathesis against its own OpenAPI document
(on SQLite and PostgreSQL), is answered with a clear 4xx and changes nothing — never a server error:
ids that cannot exist ("²" passes str.isdigit; zero; past the store's 32-bit ids: 404 in a path, 400
in a query or body), NUL characters, dates at the calendar's edges, LIKE wildcards in a search."""

from __future__ import annotations

import re

import pytest

from liveclass.models import AccountRole

from liveclass.api import (
    archive_routes,
    auth_routes,
    export_routes,
    handouts_routes,
    periods_routes,
    records_routes,
    retention_routes,
    share_routes,
    users_routes,
)

IMPOSSIBLE = ["²", "①", "0", str(2**31), "99999999999999999999"]
ROUTES = [
    r
    for t in (
        auth_routes,
        users_routes,
        periods_routes,
        handouts_routes,
        records_routes,
        archive_routes,
        share_routes,
        export_routes,
        retention_routes,
    )
    for r in t.routes.routes
]


@pytest.mark.parametrize("impossible", IMPOSSIBLE)
async def test_an_impossible_id_in_any_path_is_not_found(server, school, impossible):
    admin, teacher = await server.logged_in(school.admin), await server.logged_in(school.teacher)
    checked = 0
    for route in ROUTES:
        if "_id}" not in route.path:
            continue
        path = re.sub(r"{\w+_id}", impossible, route.path)
        allowed = route.access if isinstance(route.access, frozenset) else {AccountRole.admin}
        person = admin if AccountRole.admin in allowed else teacher
        response = await person.request(route.method, path, json={})
        # A route that takes a body checks the (empty) body first: 400, with its own message.
        expected = {404, 400} if route.body is not None else {404}
        assert response.status in expected, (route.method, path, response.status, await response.text())
        checked += 1
    assert checked > 30


@pytest.mark.parametrize(
    "query",
    [
        "/sessions?class_id=²",
        "/sessions?limit=²",
        "/audit?before_id=²",
        f"/sessions?teacher_id={2**31}",
        "/periods?class_id=²",
        "/periods?class_id=99999999999999999999",
    ],
)
async def test_an_impossible_id_in_a_query_is_a_clear_400(server, school, query):
    admin = await server.logged_in(school.admin)
    response = await admin.request("GET", query)
    answer = await response.json()
    assert response.status == 400 and answer["error"]["code"] == "invalid_request", answer
    assert answer["error"]["message"]


async def test_an_impossible_id_in_a_body_is_a_clear_400_and_changes_nothing(server, school):
    admin = await server.logged_in(school.admin)
    huge = 99999999999999999999
    class_id = school.school_class.id
    for method, path, body in [
        ("POST", f"/classes/{class_id}/assignments", {"teacher_id": huge, "subject": "Lý"}),
        ("PATCH", f"/classes/{class_id}", {"homeroom_teacher_id": huge}),
        ("POST", "/classes", {"name": "X1", "school_year": "2026-2027", "homeroom_teacher_id": -huge}),
        (
            "POST",
            "/periods",
            {
                "class_id": huge,
                "subject": "Toán",
                "teacher_id": school.teacher.id,
                "starts_at": "2026-11-24T07:00:00+07:00",
                "ends_at": "2026-11-24T07:45:00+07:00",
            },
        ),
        ("PATCH", f"/periods/{school.period.id}", {"teacher_id": 2**31}),
    ]:
        response = await admin.request(method, path, json=body)
        answer = await response.json()
        assert response.status == 400, (method, path, answer)
        assert answer["error"]["message"]
    assert (await admin.json("GET", f"/periods/{school.period.id}"))["teacher_id"] == school.teacher.id
    assert (await admin.json("GET", "/users?offset=9223372036854775808"))["items"] == []


# -- other input no store can keep (found by the same fuzzing, on PostgreSQL) ------------------------
@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/sessions?subject=a%00b", None),
        ("GET", "/audit?action=a%00b", None),
        ("GET", "/users?q=a%00b", None),
        ("POST", "/users", {"personal_id": "001999999990", "full_name": "a\u0000b", "role": "student"}),
        ("PUT", "/retention", {"chat\u0000": 30}),
    ],
)
async def test_a_nul_character_is_refused_with_a_message(server, school, method, path, body):
    admin = await server.logged_in(school.admin)
    response = await admin.request(method, path, **({"json": body} if body is not None else {}))
    answer = await response.json()
    assert response.status == 400 and "NUL" in answer["error"]["message"], answer


async def test_a_nul_character_in_a_login_is_refused_before_the_store_is_asked(server):
    response = await server.person(None).request(
        "POST", "/auth/login", json={"personal_id": "a\u0000b", "password": "x"}
    )
    assert response.status == 400 and "NUL" in (await response.json())["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/sessions?to=9999-12-31",
        "/sessions?from=0001-01-01",
        "/audit?from=0001-01-01",
        "/classes/{class_id}/attendance?from=9999-12-31&to=9999-12-31",
        "/classes/{class_id}/attendance.xlsx?from=0001-01-01&to=0001-01-01",
        "/periods?from=0001-01-01T00:00:00%2B07:00",
        "/periods?to=9999-12-31T23:59:59-07:00",
    ],
)
async def test_dates_at_the_edges_of_the_calendar_are_a_clear_400(server, school, path):
    admin = await server.logged_in(school.admin)
    response = await admin.request("GET", path.format(class_id=school.school_class.id))
    answer = await response.json()
    assert response.status == 400 and "between the years" in answer["error"]["message"], answer


@pytest.mark.parametrize(
    "starts_at,ends_at",
    [
        ("0001-01-01T00:00:00+07:00", "2026-11-24T08:45:00+07:00"),
        ("9999-12-31T23:00:00Z", "9999-12-31T23:59:59Z"),  # once accepted: its session could not be exported
    ],
)
async def test_a_period_far_outside_the_calendar_is_refused(server, school, starts_at, ends_at):
    admin = await server.logged_in(school.admin)
    response = await admin.request(
        "POST",
        "/periods",
        json={
            "class_id": school.school_class.id,
            "subject": "Toán",
            "teacher_id": school.teacher.id,
            "starts_at": starts_at,
            "ends_at": ends_at,
        },
    )
    answer = await response.json()
    assert response.status == 400 and "between 1971 and 2099" in answer["error"]["message"], answer


async def test_the_account_search_takes_percent_and_underscore_as_written(server, school):
    admin = await server.logged_in(school.admin)
    assert (await admin.json("GET", "/users?q=%25"))["items"] == []  # "%" is not "anything"
    assert (await admin.json("GET", "/users?q=_"))["items"] == []
    found = await admin.json("GET", f"/users?q={school.student.personal_id[-6:]}")
    assert [u["id"] for u in found["items"]] == [school.student.id]
    assert [u["full_name"] for u in (await admin.json("GET", "/users?q=ngọc"))["items"]] == ["Phạm Ngọc Ánh"]
