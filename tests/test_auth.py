"""Logins as a user meets them: cookie and bearer, CSRF, throttling, forced password change, logout."""

from __future__ import annotations

import subprocess
import sys

import pytest
from yarl import URL
from sqlalchemy import func, select

from liveclass import passwords
from liveclass.models import AuditEntry
from tests.helpers import PASSWORD, add_user, make_settings, start_server


async def test_browser_login_sets_a_strict_httponly_cookie_and_me_works(any_store_server):
    async with any_store_server.db() as db:
        user = await add_user(db, "teacher", "Nguyễn Thị Hà")
        await db.commit()
    person = any_store_server.person(user)
    response = await person.login()
    assert response.status == 200
    cookie = response.cookies["liveclass_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    body = await response.json()
    assert body["user"]["full_name"] == "Nguyễn Thị Hà" and body["access_token"] is None
    me = await person.json("GET", "/me")
    assert me["user"]["personal_id"] == user.personal_id and me["csrf_token"] == person.csrf


async def test_unsafe_request_with_cookie_needs_the_csrf_header(server):
    async with server.db() as db:
        admin = await add_user(db, "admin", "Quản Trị")
        await db.commit()
    person = await server.logged_in(admin)
    body = {"name": "10A2", "school_year": "2026-2027"}
    refused = await person.request("POST", "/classes", json=body, headers={"X-CSRF-Token": "forged"})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "csrf_failed"
    missing = await person.request("POST", "/classes", json=body, headers={"X-CSRF-Token": ""})
    assert missing.status == 403
    listed = await person.json("GET", "/classes")
    assert listed["items"] == []  # nothing was created by the refused requests
    await person.json("POST", "/classes", expect=201, json=body)


async def test_api_client_uses_a_bearer_token_without_cookie_or_csrf(server):
    async with server.db() as db:
        admin = await add_user(db, "admin", "Quản Trị")
        await db.commit()
    client = server.person(None)
    response = await client.request(
        "POST", "/auth/login", json={"personal_id": admin.personal_id, "password": PASSWORD, "issue_token": True}
    )
    body = await response.json()
    assert response.status == 200 and body["access_token"] and "liveclass_session" not in response.cookies
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    created = await client.request(
        "POST", "/classes", json={"name": "10A3", "school_year": "2026-2027"}, headers=bearer
    )
    assert created.status == 201
    wrong = await client.request("GET", "/me", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "not_authenticated"


async def test_unknown_account_and_wrong_password_get_the_same_answer(server):
    async with server.db() as db:
        user = await add_user(db, "student", "Học Sinh")
        await db.commit()
    anon = server.person(None)
    wrong = await anon.request("POST", "/auth/login", json={"personal_id": user.personal_id, "password": "nope1234"})
    unknown = await anon.request("POST", "/auth/login", json={"personal_id": "009999999999", "password": "nope1234"})
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()


async def test_a_server_is_ready_to_answer_an_unknown_account_in_the_usual_time(tmp_path):
    """The hash an unknown account's password is checked against is made when the server starts: made by
    the first such login, that answer alone would take twice as long and tell that the account is unknown."""
    passwords._dummy_hash.cache_clear()
    live = await start_server(make_settings(tmp_path / "var"))
    try:
        assert passwords._dummy_hash.cache_info().currsize == 1  # before any login
    finally:
        await live.close()


async def test_five_failures_lock_the_account_with_retry_after(server):
    async with server.db() as db:
        user = await add_user(db, "student", "Học Sinh")
        other = await add_user(db, "student", "Bạn Khác")
        await db.commit()
    anon = server.person(None)
    for _ in range(5):
        response = await anon.request("POST", "/auth/login", json={"personal_id": user.personal_id, "password": "bad"})
        assert response.status == 401
    locked = await anon.request("POST", "/auth/login", json={"personal_id": user.personal_id, "password": PASSWORD})
    assert locked.status == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert (await locked.json())["error"]["code"] == "too_many_attempts"
    # Another account from the same address is not locked by these five.
    assert (await server.person(other).login()).status == 200


@pytest.mark.settings(login_max_failures_per_address=20)
async def test_twenty_failures_from_one_address_block_that_address(server):
    async with server.db() as db:
        users = [await add_user(db, "student", f"Học Sinh {i}") for i in range(11)]
        await db.commit()
    anon = server.person(None)
    for i in range(20):  # spread over accounts: no single account reaches its own limit of 5
        response = await anon.request(
            "POST", "/auth/login", json={"personal_id": users[i % 10].personal_id, "password": "bad"}
        )
        assert response.status == 401, i
    blocked = await server.person(users[10]).login()
    assert blocked.status == 429 and "Retry-After" in blocked.headers


async def test_window_expiry_unlocks(tmp_path):
    server = await start_server(make_settings(tmp_path / "var", login_failure_window_seconds=8))
    try:
        async with server.db() as db:
            user = await add_user(db, "student", "Học Sinh")
            await db.commit()
        anon = server.person(None)
        for _ in range(5):
            await anon.request("POST", "/auth/login", json={"personal_id": user.personal_id, "password": "bad"})
        locked = await server.person(user).login()
        assert locked.status == 429
        import asyncio

        await asyncio.sleep(int(locked.headers["Retry-After"]) + 0.5)  # the lockout must expire
        assert (await server.person(user).login()).status == 200
    finally:
        await server.close()


async def test_generated_password_must_be_changed_before_anything_else(server):
    async with server.db() as db:
        user = await add_user(db, "teacher", "Giáo Viên Mới", must_change=True)
        await db.commit()
    person = server.person(user)
    login = await person.login()
    assert (await login.json())["must_change_password"] is True
    blocked = await person.request("GET", "/periods")
    assert blocked.status == 403 and (await blocked.json())["error"]["code"] == "password_change_required"
    weak = await person.request("POST", "/auth/password", json={"current_password": PASSWORD, "new_password": "123"})
    assert weak.status == 400 and (await weak.json())["error"]["code"] == "weak_password"
    await person.json("POST", "/auth/password", json={"current_password": PASSWORD, "new_password": "Hà-nội-mùa-thu"})
    assert (await person.request("GET", "/periods")).status == 200
    # The new password works, the old one does not.
    assert (await server.person(user).login("Hà-nội-mùa-thu")).status == 200
    assert (await server.person(user).login(PASSWORD)).status == 401


async def test_logout_ends_the_login(server):
    async with server.db() as db:
        user = await add_user(db, "student", "Học Sinh")
        await db.commit()
    person = await server.logged_in(user)
    token = person.http.cookie_jar.filter_cookies(URL(server.api("/me")))["liveclass_session"].value
    await person.json("POST", "/auth/logout")
    # Even a client that kept the old cookie value is no longer logged in.
    replay = await server.person(None).request("GET", "/me", headers={"Cookie": f"liveclass_session={token}"})
    assert replay.status == 401


async def test_deactivated_account_cannot_log_in_and_loses_its_logins(server):
    async with server.db() as db:
        admin = await add_user(db, "admin", "Quản Trị")
        student = await add_user(db, "student", "Học Sinh")
        await db.commit()
    admin_person = await server.logged_in(admin)
    student_person = await server.logged_in(student)
    await admin_person.json("PATCH", f"/users/{student.id}", json={"active": False})
    assert (await student_person.request("GET", "/me")).status == 401
    assert (await server.person(student).login()).status == 401


@pytest.mark.parametrize(
    "raw,content_type,status,code",
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"personal_id": "1"}', "application/json", 400, "invalid_request"),
        (b'{"personal_id": "1", "password": "x", "extra": 1}', "application/json", 400, "invalid_request"),
        (b"personal_id=1&password=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"[1, 2]", "application/json", 400, "invalid_request"),
    ],
)
async def test_bad_login_bodies_get_clear_errors(server, raw, content_type, status, code):
    response = await server.person(None).request(
        "POST", "/auth/login", data=raw, headers={"Content-Type": content_type}
    )
    body = await response.json()
    assert response.status == status and body["error"]["code"] == code and body["error"]["message"]


async def test_logins_and_failures_are_audited(server):
    async with server.db() as db:
        user = await add_user(db, "student", "Học Sinh")
        await db.commit()
    await server.person(user).login("wrong-password")
    await server.logged_in(user)
    async with server.db() as db:
        actions = (await db.execute(select(AuditEntry.action, func.count()).group_by(AuditEntry.action))).all()
    assert dict(actions) == {"login_failed": 1, "login": 1}


async def test_unknown_api_path_answers_in_the_error_shape(server):
    response = await server.person(None).request("GET", "/no/such/thing")
    assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"


async def test_behind_a_trusted_proxy_the_forwarded_address_is_throttled(tmp_path):
    server = await start_server(
        make_settings(tmp_path / "var", trusted_proxies=["127.0.0.1"], login_max_failures_per_address=3)
    )
    try:
        async with server.db() as db:
            users = [await add_user(db, "student", f"Học Sinh {i}") for i in range(4)]
            await db.commit()
        anon = server.person(None)
        for i in range(3):
            await anon.request(
                "POST",
                "/auth/login",
                json={"personal_id": users[i].personal_id, "password": "bad"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
        blocked = await anon.request(
            "POST",
            "/auth/login",
            json={"personal_id": users[3].personal_id, "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        assert blocked.status == 429
        # Another student behind the same proxy is not blocked by the first one's failures.
        other = await anon.request(
            "POST",
            "/auth/login",
            json={"personal_id": users[3].personal_id, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.20"},
        )
        assert other.status == 200
        async with server.db() as db:
            addresses = set((await db.execute(select(AuditEntry.address))).scalars())
        assert addresses == {"203.0.113.7", "198.51.100.20"}
    finally:
        await server.close()


async def test_forwarded_for_is_ignored_from_untrusted_peers(server):
    async with server.db() as db:
        user = await add_user(db, "student", "Học Sinh")
        await db.commit()
    await server.person(None).request(
        "POST",
        "/auth/login",
        json={"personal_id": user.personal_id, "password": "x"},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    async with server.db() as db:
        assert set((await db.execute(select(AuditEntry.address))).scalars()) == {"127.0.0.1"}


async def test_guessing_the_current_password_is_throttled_too(server):
    async with server.db() as db:
        user = await add_user(db, "student", "Học Sinh")
        await db.commit()
    person = await server.logged_in(user)
    for _ in range(5):
        wrong = await person.request(
            "POST", "/auth/password", json={"current_password": "guess", "new_password": "Một-mật-khẩu-mới"}
        )
        assert wrong.status == 400
    throttled = await person.request(
        "POST", "/auth/password", json={"current_password": PASSWORD, "new_password": "Một-mật-khẩu-mới"}
    )
    assert throttled.status == 429


def test_the_data_directory_is_private(tmp_path):
    settings = make_settings(tmp_path / "var")
    assert (settings.data_dir.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize(
    "password, reason",
    [
        ("Ngắn-1", "too_short"),
        ("password", "too_guessable"),
        ("aaaaaaaa", "too_guessable"),
        ("Password1", "too_guessable"),
        ("nguyenthiha2026", "built_from_name"),  # the teacher's own name, without its diacritics
        ("Hà.Nguyễn.1990", "built_from_name"),
        ("HS-{pid}-abc", "contains_personal_id"),
    ],
)
async def test_a_weak_new_password_is_refused_with_the_reason(server, password, reason):
    async with server.db() as db:
        user = await add_user(db, "teacher", "Nguyễn Thị Hà")
        await db.commit()
    person = await server.logged_in(user)
    answer = await person.request(
        "POST",
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": password.format(pid=user.personal_id)},
    )
    error = (await answer.json())["error"]
    assert answer.status == 400 and error["code"] == "weak_password", error
    assert error["details"]["reason"] == reason and error["message"]
    assert (await server.person(user).login(PASSWORD)).status == 200  # nothing changed


async def test_the_real_user_logs_in_while_an_attacker_hammers_her_account_from_elsewhere(tmp_path):
    server = await start_server(make_settings(tmp_path / "var", trusted_proxies=["127.0.0.1"]))
    try:
        async with server.db() as db:
            user = await add_user(db, "teacher", "Nguyễn Thị Hà")
            await db.commit()
        attacker = server.person(None)
        answers = []
        for i in range(12):
            response = await attacker.request(
                "POST",
                "/auth/login",
                json={"personal_id": user.personal_id, "password": f"doan-mo-{i}"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            answers.append(response.status)
        assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}  # the attacker's address is stopped
        # From her own address she still logs in (a little slower while her account is under attack).
        teacher = server.person(user)
        response = await teacher.request(
            "POST",
            "/auth/login",
            json={"personal_id": user.personal_id, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.20"},
        )
        assert response.status == 200, await response.text()
        # The attacker's counter is not wiped by her success.
        again = await attacker.request(
            "POST",
            "/auth/login",
            json={"personal_id": user.personal_id, "password": "x"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        assert again.status == 429
    finally:
        await server.close()


async def test_a_school_behind_one_address_is_not_blocked_by_a_few_mistakes(server):
    """Pupils behind one NAT address mistype their passwords: far more than 20 failures before that
    address is stopped, and each of them still logs in."""
    async with server.db() as db:
        users = [await add_user(db, "student", f"Học Sinh {i}") for i in range(15)]
        await db.commit()
    anon = server.person(None)
    for user in users:
        for _ in range(2):
            response = await anon.request(
                "POST", "/auth/login", json={"personal_id": user.personal_id, "password": "go-nham-mat-khau"}
            )
            assert response.status == 401
    for user in users:
        assert (await server.person(user).login()).status == 200


def test_a_real_server_hashes_chosen_passwords_at_full_cost_and_generated_ones_lightly():
    """The suite's own servers hash lightly (tests/conftest.py); a server process keeps argon2id's full cost
    for passwords people choose, and the light one only for generated first passwords."""
    program = (
        "from liveclass.passwords import hash_password, hash_generated_password, verify_password\n"
        "chosen = hash_password('Mật-khẩu-2026')\n"
        "generated = hash_generated_password('x')\n"
        "print(chosen.split('$')[3], generated.split('$')[3], verify_password(chosen, 'Mật-khẩu-2026'))"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["m=65536,t=3,p=4", "m=8192,t=1,p=1", "True"]
