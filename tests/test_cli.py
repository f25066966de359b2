"""The `liveclass` command run for real, as an admin would run it: a subprocess with its own data directory.

What is checked is what the admin sees (exit status, one clear message, no traceback) and what people
then notice through the HTTP API (the account logs in, must change its password, ...).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bench.ports import free_port
from tests.helpers import eventually, make_settings, start_server

ADMIN_ID = "001234567890"
STRONG = "Bảo-mật-2026!"


def liveclass(
    *args: str,
    data_dir: Path | None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run `liveclass ARGS --data-dir DATA_DIR` in a clean environment (no LIVECLASS_* from the caller)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    clean.update(env or {})
    cmd = [sys.executable, "-m", "liveclass.cli", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    # cwd: never the repository, so a forgotten --data-dir cannot write into ./var there.
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=clean,
        input=input,
        timeout=timeout,
        cwd=cwd or (data_dir.parent if data_dir else None),
    )


def assert_clean_failure(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1 with one `liveclass: ...` message on stderr that names the problem; no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("liveclass: "), result.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def db_path(data_dir: Path) -> Path:
    return data_dir / "liveclass.db"


def user_row(data_dir: Path, personal_id: str):
    with sqlite3.connect(db_path(data_dir)) as db:
        return db.execute(
            "SELECT full_name, role, must_change_password, password_hash FROM users WHERE personal_id = ?",
            (personal_id,),
        ).fetchone()


def count_users(data_dir: Path) -> int:
    """Accounts in the store; 0 when the command stopped before creating it."""
    if not db_path(data_dir).exists():
        return 0
    with sqlite3.connect(db_path(data_dir)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'users'").fetchone():
            return 0
        return db.execute("SELECT count(*) FROM users").fetchone()[0]


def printed_password(stdout: str) -> str:
    match = re.search(r"shown once.*: (\S+)\s*$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


async def api_login(base_url: str, personal_id: str, password: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/api/v1/auth/login", json={"personal_id": personal_id, "password": password}
        ) as response:
            return response.status, await response.json()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "var"


# -- users add ----------------------------------------------------------------------------------------
async def test_users_add_prints_a_generated_password_once_and_it_logs_in(data_dir):
    result = liveclass(
        "users", "add", "--role", "admin", "--personal-id", ADMIN_ID, "--name", "Trần Quản Trị", data_dir=data_dir
    )
    assert result.returncode == 0, result.stderr
    assert "Trần Quản Trị" in result.stdout and ADMIN_ID in result.stdout
    password = printed_password(result.stdout)
    assert result.stdout.count(password) == 1 and password not in result.stderr
    assert user_row(data_dir, ADMIN_ID)[:3] == ("Trần Quản Trị", "admin", 1)

    server = await start_server(make_settings(data_dir))
    try:
        status, body = await api_login(server.base_url, ADMIN_ID, password)
        assert status == 200, body
        assert body["must_change_password"] is True and body["user"]["role"] == "admin"
        admin = server.person()
        response = await admin.request("POST", "/auth/login", json={"personal_id": ADMIN_ID, "password": password})
        admin.csrf = (await response.json())["csrf_token"]
        # Nothing but the password change until the generated password is replaced.
        assert (await admin.json("GET", "/users", expect=403))["error"]["code"] == "password_change_required"
        await admin.json("POST", "/auth/password", json={"current_password": password, "new_password": STRONG})
        assert (await admin.json("GET", "/me"))["must_change_password"] is False
        assert [u["personal_id"] for u in (await admin.json("GET", "/users"))["items"]] == [ADMIN_ID]
    finally:
        await server.close()


async def test_users_add_with_password_stdin(data_dir):
    result = liveclass(
        "users",
        "add",
        "--role",
        "teacher",
        "--personal-id",
        ADMIN_ID,
        "--name",
        "Nguyễn Thị Hà",
        "--password-stdin",
        data_dir=data_dir,
        input=STRONG + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert STRONG not in result.stdout + result.stderr
    assert "password" not in result.stdout.lower()  # nothing generated, nothing to show
    server = await start_server(make_settings(data_dir))
    try:
        status, body = await api_login(server.base_url, ADMIN_ID, STRONG)
        assert status == 200, body
        assert body["must_change_password"] is False and body["user"]["full_name"] == "Nguyễn Thị Hà"
        assert (await api_login(server.base_url, ADMIN_ID, STRONG + "x"))[0] == 401
    finally:
        await server.close()


@pytest.mark.parametrize("stdin, needle", [("", "no password"), ("short\n", "at least 8")])
def test_users_add_password_stdin_refuses_a_bad_password(data_dir, stdin, needle):
    result = liveclass(
        "users",
        "add",
        "--role",
        "admin",
        "--personal-id",
        ADMIN_ID,
        "--name",
        "Trần Quản Trị",
        "--password-stdin",
        data_dir=data_dir,
        input=stdin,
    )
    assert_clean_failure(result, needle)
    assert count_users(data_dir) == 0


def test_users_add_duplicate_personal_id(data_dir):
    first = liveclass(
        "users", "add", "--role", "admin", "--personal-id", ADMIN_ID, "--name", "Trần Quản Trị", data_dir=data_dir
    )
    assert first.returncode == 0, first.stderr
    again = liveclass(
        "users", "add", "--role", "student", "--personal-id", ADMIN_ID, "--name", "Người Khác", data_dir=data_dir
    )
    assert_clean_failure(again, ADMIN_ID, "already exists")
    assert again.stdout == ""
    assert count_users(data_dir) == 1
    assert user_row(data_dir, ADMIN_ID)[:2] == ("Trần Quản Trị", "admin")  # untouched


@pytest.mark.parametrize("personal_id", ["12345", "0012345678901", "00123456789A"])
def test_users_add_invalid_personal_id(data_dir, personal_id):
    result = liveclass(
        "users", "add", "--role", "admin", "--personal-id", personal_id, "--name", "Trần Quản Trị", data_dir=data_dir
    )
    assert_clean_failure(result, "personal id", "pattern")
    assert count_users(data_dir) == 0


def test_users_add_follows_a_configured_personal_id_pattern(data_dir):
    env = {"LIVECLASS_PERSONAL_ID_PATTERN": r"^HS-\d{4}$"}
    ok = liveclass(
        "users",
        "add",
        "--role",
        "student",
        "--personal-id",
        "HS-0042",
        "--name",
        "Lý Thị Mai",
        data_dir=data_dir,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    refused = liveclass(
        "users",
        "add",
        "--role",
        "student",
        "--personal-id",
        ADMIN_ID,
        "--name",
        "Lý Thị Mai",
        data_dir=data_dir,
        env=env,
    )
    assert_clean_failure(refused, "pattern")


@pytest.mark.parametrize("name", ["   ", "x" * 201])
def test_users_add_refuses_an_empty_or_overlong_name(data_dir, name):
    result = liveclass("users", "add", "--role", "admin", "--personal-id", ADMIN_ID, "--name", name, data_dir=data_dir)
    assert_clean_failure(result, "name")
    assert count_users(data_dir) == 0


def test_users_add_normalises_spaces_in_the_name(data_dir):
    result = liveclass(
        "users", "add", "--role", "admin", "--personal-id", ADMIN_ID, "--name", "  Trần   Quản Trị ", data_dir=data_dir
    )
    assert result.returncode == 0, result.stderr
    assert user_row(data_dir, ADMIN_ID)[0] == "Trần Quản Trị"


def test_users_add_unknown_role_is_a_usage_error(data_dir):
    result = liveclass(
        "users", "add", "--role", "principal", "--personal-id", ADMIN_ID, "--name", "Trần Quản Trị", data_dir=data_dir
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr
    assert count_users(data_dir) == 0


# -- users reset-password -----------------------------------------------------------------------------
async def test_users_reset_password(data_dir):
    added = liveclass(
        "users",
        "add",
        "--role",
        "teacher",
        "--personal-id",
        ADMIN_ID,
        "--name",
        "Lê Văn Bình",
        "--password-stdin",
        data_dir=data_dir,
        input=STRONG + "\n",
    )
    assert added.returncode == 0, added.stderr
    server = await start_server(make_settings(data_dir))
    try:
        teacher = server.person()
        response = await teacher.request("POST", "/auth/login", json={"personal_id": ADMIN_ID, "password": STRONG})
        assert response.status == 200
        assert (await teacher.request("GET", "/me")).status == 200

        reset = await asyncio.to_thread(liveclass, "users", "reset-password", ADMIN_ID, data_dir=data_dir)
        assert reset.returncode == 0, reset.stderr
        new_password = printed_password(reset.stdout)
        assert reset.stdout.count(new_password) == 1 and new_password not in reset.stderr

        assert (await teacher.request("GET", "/me")).status == 401  # the open login was ended
        assert (await api_login(server.base_url, ADMIN_ID, STRONG))[0] == 401
        status, body = await api_login(server.base_url, ADMIN_ID, new_password)
        assert status == 200, body
        assert body["must_change_password"] is True
    finally:
        await server.close()


def test_users_reset_password_of_unknown_account(data_dir):
    result = liveclass("users", "reset-password", ADMIN_ID, data_dir=data_dir)
    assert_clean_failure(result, "no account", ADMIN_ID)
    assert result.stdout == ""


# -- db upgrade and configuration ---------------------------------------------------------------------
def test_db_upgrade_creates_the_store_and_a_private_secret(data_dir):
    first = liveclass("db", "upgrade", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout
    with sqlite3.connect(db_path(data_dir)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"users", "classes", "enrollments", "parent_links", "periods", "sessions", "audit_log"} <= tables
    assert revision
    secret = data_dir / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = secret.read_text()
    assert len(key.strip()) >= 32

    again = liveclass("db", "upgrade", data_dir=data_dir)  # idempotent; the secret is kept
    assert again.returncode == 0, again.stderr
    assert secret.read_text() == key
    with sqlite3.connect(db_path(data_dir)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (revision,)


def test_a_secret_readable_by_others_is_refused(data_dir):
    assert liveclass("db", "upgrade", data_dir=data_dir).returncode == 0
    (data_dir / "secret_key").chmod(0o644)
    assert_clean_failure(liveclass("db", "upgrade", data_dir=data_dir), "chmod 600")


def _bad_toml(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "liveclass.toml"
    path.write_text("port = = 1\n")
    return {"LIVECLASS_CONFIG": str(path)}


def _unknown_key_toml(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "liveclass.toml"
    path.write_text("prot = 8081\n")
    return {"LIVECLASS_CONFIG": str(path)}


MISCONFIGURATIONS = {
    "port not a number": (lambda tmp: {"LIVECLASS_PORT": "notanumber"}, "port"),
    "mysql url": (lambda tmp: {"LIVECLASS_DATABASE_URL": "mysql://x"}, "database_url"),
    "bad id pattern": (lambda tmp: {"LIVECLASS_PERSONAL_ID_PATTERN": "("}, "personal_id_pattern"),
    "ice servers not json": (lambda tmp: {"LIVECLASS_ICE_SERVERS": "stun:stun.example.org"}, "ice_servers"),
    "short secret": (lambda tmp: {"LIVECLASS_SECRET_KEY": "abc"}, "secret_key"),
    "missing config file": (lambda tmp: {"LIVECLASS_CONFIG": str(tmp / "nope.toml")}, "not found"),
    "invalid toml": (_bad_toml, "not valid TOML"),
    "unknown toml key": (_unknown_key_toml, "prot"),
    "postgres unreachable": (
        lambda tmp: {"LIVECLASS_DATABASE_URL": "postgresql+asyncpg://liveclass:s3cret@127.0.0.1:1/liveclass"},
        "cannot use the database",
    ),
    "redis url not redis": (lambda tmp: {"LIVECLASS_REDIS_URL": "http://127.0.0.1:6379"}, "redis_url"),
    "node url not a url": (lambda tmp: {"LIVECLASS_NODE_URL": "node2.truong.edu.vn"}, "node_url"),
    "sqlite in a missing directory": (
        lambda tmp: {"LIVECLASS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/missing/dir/x.db"},
        "cannot use the database",
    ),
}


@pytest.mark.parametrize("case", MISCONFIGURATIONS)
def test_misconfiguration_stops_with_one_clear_message(tmp_path, case):
    make_env, needle = MISCONFIGURATIONS[case]
    result = liveclass("db", "upgrade", data_dir=tmp_path / "var", env=make_env(tmp_path), timeout=30)
    line = assert_clean_failure(result, needle)
    assert "s3cret" not in line  # a database password is never echoed


@pytest.mark.parametrize("case", ["port not a number", "postgres unreachable"])
def test_serve_stops_on_misconfiguration_before_listening(tmp_path, case):
    make_env, needle = MISCONFIGURATIONS[case]
    # No --port here: it would override LIVECLASS_PORT. A wrongly accepted config fails by timeout.
    result = liveclass("serve", data_dir=tmp_path / "var", env=make_env(tmp_path), timeout=30)
    line = assert_clean_failure(result, needle)
    assert "s3cret" not in line


@pytest.mark.parametrize(
    "env", [{}, {"LIVECLASS_REDIS_URL": "redis://127.0.0.1:6379/0"}], ids=["no redis, no postgresql", "redis on sqlite"]
)
def test_workers_without_redis_and_postgresql_stop_with_one_clear_message(tmp_path, env):
    result = liveclass("serve", "--workers", "3", data_dir=tmp_path / "var", env=env, timeout=30)
    line = assert_clean_failure(result, "--workers 3 needs LIVECLASS_REDIS_URL and a PostgreSQL")
    assert "run one worker" in line


def test_data_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_clean_failure(liveclass("db", "upgrade", data_dir=blocker / "var", cwd=tmp_path), "data directory")


# -- serve --------------------------------------------------------------------------------------------
async def wait_until_healthy(base_url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    async with aiohttp.ClientSession() as http:

        async def healthy() -> bool:
            assert process.poll() is None, f"the server exited with {process.returncode}"
            try:
                async with http.get(f"{base_url}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(healthy, timeout, "the server to answer /healthz", step=0.1)


async def test_serve_answers_probes_admin_logs_in_and_stops_cleanly_on_sigterm(tmp_path, data_dir):
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "liveclass.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base_url, process)
        assert stat.S_IMODE((data_dir / "secret_key").stat().st_mode) == 0o600
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/healthz") as response:
                assert response.status == 200 and (await response.json())["status"] == "ok"
            async with http.get(f"{base_url}/readyz") as response:
                body = await response.json()
                assert response.status == 200 and body["status"] == "ready", body

        # An admin added while the server runs (same store) logs in at once.
        added = await asyncio.to_thread(
            liveclass,
            "users",
            "add",
            "--role",
            "admin",
            "--personal-id",
            ADMIN_ID,
            "--name",
            "Trần Quản Trị",
            "--password-stdin",
            data_dir=data_dir,
            input=STRONG + "\n",
        )
        assert added.returncode == 0, added.stderr
        status, body = await api_login(base_url, ADMIN_ID, STRONG)
        assert status == 200, body
        assert body["user"]["personal_id"] == ADMIN_ID and body["must_change_password"] is False
        assert (await api_login(base_url, ADMIN_ID, "wrong password"))[0] == 401
        # Requests are logged, but never a share link's token (it opens recordings of children).
        token = "Zx9" * 10
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/api/v1/shared/{token}/recordings/3/file") as response:
                assert response.status == 401

        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, (process.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    assert f"http://127.0.0.1:{port}/" in stdout
    assert STRONG not in stdout + stderr
    assert '"GET /api/v1/shared/…/recordings/3/file" 401' in stderr and token not in stdout + stderr


async def test_json_logs_carry_each_requests_id(tmp_path, data_dir):
    """LIVECLASS_LOG_FORMAT=json: every line on stderr is one JSON object; a request's lines carry its id, which
    is the client's X-Request-Id when it is a plain token, else a new one, and comes back in the answer."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}, "LIVECLASS_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "-m", "liveclass.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base_url, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/api/v1/me", headers={"X-Request-Id": "proxy-7f3a.1"}) as response:
                assert response.status == 401 and response.headers["X-Request-Id"] == "proxy-7f3a.1"
            async with http.get(f"{base_url}/healthz", headers={"X-Request-Id": "not a token; " * 3}) as response:
                made = response.headers["X-Request-Id"]
                assert response.status == 200 and re.fullmatch(r"[0-9a-f]{32}", made), made
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # all JSON, or this raises
    assert entries and all({"time", "level", "logger", "message", "request_id"} <= set(e) for e in entries)
    by_id = {e["request_id"]: e for e in entries if e["logger"] == "aiohttp.access"}
    assert '"GET /api/v1/me" 401' in by_id["proxy-7f3a.1"]["message"]
    assert '"GET /healthz" 200' in by_id[made]["message"]


def test_serve_on_a_port_in_use(tmp_path, data_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = liveclass("serve", "--port", str(port), data_dir=data_dir, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"liveclass: Cannot serve on 127.0.0.1:{port}" in result.stderr
