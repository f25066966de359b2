"""Ids that cannot exist — not ASCII digits ("²" passes str.isdigit), zero, beyond the store's 32-bit
range — are answered like unknown ones (404 in a path, 400 in a query or body), never with a server
error. Found by fuzzing the API with schemathesis against its own OpenAPI document."""
from __future__ import annotations

import re

import pytest

from liveclass.models import AccountRole

from liveclass.api import (
    archive_routes, auth_routes, export_routes, handouts_routes, periods_routes, records_routes, retention_routes,
    share_routes, users_routes,
)

IMPOSSIBLE = ["²", "①", "0", str(2**31), "99999999999999999999"]
ROUTES = [r for t in (auth_routes, users_routes, periods_routes, handouts_routes, records_routes, archive_routes,
                      share_routes, export_routes, retention_routes) for r in t.routes.routes]


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


@pytest.mark.parametrize("query", ["/sessions?class_id=²", "/sessions?limit=²", "/audit?before_id=²",
                                   f"/sessions?teacher_id={2**31}", "/periods?class_id=²",
                                   "/periods?class_id=99999999999999999999"])
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
            ("POST", "/periods", {"class_id": huge, "subject": "Toán", "teacher_id": school.teacher.id,
                                  "starts_at": "2026-11-24T07:00:00+07:00", "ends_at": "2026-11-24T07:45:00+07:00"}),
            ("PATCH", f"/periods/{school.period.id}", {"teacher_id": 2**31})]:
        response = await admin.request(method, path, json=body)
        answer = await response.json()
        assert response.status == 400, (method, path, answer)
        assert answer["error"]["message"]
    assert (await admin.json("GET", f"/periods/{school.period.id}"))["teacher_id"] == school.teacher.id
    assert (await admin.json("GET", "/users?offset=9223372036854775808"))["items"] == []
