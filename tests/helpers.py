"""Test helpers: a real LiveClass server on an ephemeral port, HTTP clients per person, seed data."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

from liveclass.app import create_app
from liveclass.appkeys import DB
from liveclass.config import Settings, prepare_data_dir
from liveclass.db import upgrade_database
from liveclass.models import (
    AccountRole,
    Enrollment,
    ParentLink,
    Period,
    SchoolClass,
    TeachingAssignment,
    User,
)
from liveclass.passwords import hash_generated_password

_MIGRATED: dict = {}  # per test process: a store of each kind migrated once, copied for each test server
POSTGRES_ADMIN_DSN = os.environ.get("LIVECLASS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "Mật-khẩu-2026"  # every seeded account's password


async def eventually(check, timeout: float, what: str, step: float = 0.05):
    """Wait for a condition instead of sleeping: call `check()` (sync or async) every `step` seconds until it
    returns something truthy, and return that. Fails after `timeout` seconds, naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            last = repr(value)
            last = last if len(last) <= 300 else last[:300] + "..."
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {last})")
        await asyncio.sleep(step)


async def _admin_execute(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_postgres_database(template: str | None = None) -> str:
    """A fresh PostgreSQL database for one test (empty, or a copy of `template`); returns its name."""
    name = f"lc_test_{uuid.uuid4().hex[:12]}"
    await _admin_execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


async def create_migrated_postgres_database() -> str:
    """A PostgreSQL database for one test server, already at the newest migration: a copy (CREATE DATABASE …
    TEMPLATE) of a template migrated once per test process."""
    if "postgresql" not in _MIGRATED:
        template = await create_postgres_database()
        await asyncio.to_thread(upgrade_database, postgres_url(template))
        _MIGRATED["postgresql"] = template
        atexit.register(_drop_template, template)
    return await create_postgres_database(_MIGRATED["postgresql"])


def _drop_template(name: str) -> None:
    asyncio.run(drop_postgres_database(name))


async def drop_postgres_database(name: str) -> None:
    await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url(name: str) -> str:
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def make_settings(data_dir: Path, database_url: str = "", **extra) -> Settings:
    return prepare_data_dir(Settings(data_dir=data_dir, database_url=database_url, **extra))


class Person:
    """One person's HTTP client: own cookie jar, CSRF token handled like the web client does."""

    def __init__(self, server: "LiveServer", user: User | None):
        self.server = server
        self.user = user
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None

    async def login(self, password: str = PASSWORD) -> aiohttp.ClientResponse:
        response = await self.request(
            "POST", "/auth/login", json={"personal_id": self.user.personal_id, "password": password}
        )
        if response.status == 200:
            self.csrf = (await response.json())["csrf_token"]
        return response

    async def request(self, method: str, path: str, **kwargs) -> aiohttp.ClientResponse:
        headers = kwargs.pop("headers", {})
        if self.csrf and "X-CSRF-Token" not in headers:
            headers["X-CSRF-Token"] = self.csrf
        url = path if path.startswith("http") else self.server.api(path)
        response = await self.http.request(method, url, headers=headers, **kwargs)
        await response.read()
        return response

    async def json(self, method: str, path: str, expect: int = 200, **kwargs):
        response = await self.request(method, path, **kwargs)
        body = await response.json()
        assert response.status == expect, f"{method} {path}: {response.status} {body}"
        return body

    async def close(self) -> None:
        await self.http.close()


class Clients:
    """The people and live clients a test opens against a server at `base_url`, closed together."""

    people: list[Person]
    live_clients: list

    def api(self, path: str) -> str:
        return f"{self.base_url}/api/v1{path}"

    def person(self, user: User | None = None) -> Person:
        person = Person(self, user)
        self.people.append(person)
        return person

    async def logged_in(self, user: User) -> Person:
        person = self.person(user)
        response = await person.login()
        assert response.status == 200, await response.text()
        return person

    async def close_clients(self) -> None:
        for client in self.live_clients:
            await client.close()
        for person in self.people:
            await person.close()


@dataclass
class LiveServer(Clients):
    test_server: TestServer
    settings: Settings
    people: list[Person] = field(default_factory=list)
    live_clients: list = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return str(self.test_server.make_url("")).rstrip("/")

    @property
    def db(self):
        return self.test_server.app[DB]

    async def close(self) -> None:
        await self.close_clients()
        await self.test_server.close()


def _migrated_sqlite_store() -> Path:
    """An SQLite store at the newest migration, made once per test process (running every migration for every
    test server cost a fifth of a second each)."""
    if "sqlite" not in _MIGRATED:
        path = Path(tempfile.mkdtemp(prefix="liveclass-template-")) / "liveclass.db"
        upgrade_database(f"sqlite+aiosqlite:///{path}")
        _MIGRATED["sqlite"] = path
    return _MIGRATED["sqlite"]


async def start_server(settings: Settings) -> LiveServer:
    """A real server on an ephemeral port, its store migrated first as `liveclass serve` does. A new SQLite
    store starts as a copy of a migrated one (the upgrade then finds nothing to apply)."""
    store = settings.data_dir / "liveclass.db"
    if not settings.database_url and not store.exists():
        shutil.copyfile(await asyncio.to_thread(_migrated_sqlite_store), store)
        store.chmod(0o600)
    await asyncio.to_thread(upgrade_database, settings.effective_database_url)
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await server.start_server()
    return LiveServer(server, settings)


# -- seed data ---------------------------------------------------------------------------------------
@dataclass
class School:
    admin: User
    teacher: User
    other_teacher: User
    student: User
    other_student: User  # enrolled in another class
    parent: User
    observer: User
    school_class: SchoolClass
    other_class: SchoolClass
    period: Period
    other_period: Period  # another teacher's period in another class

    def by_role(self) -> dict[str, User]:
        return {
            "admin": self.admin,
            "teacher": self.teacher,
            "student": self.student,
            "parent": self.parent,
            "observer": self.observer,
        }


_counter = iter(range(10_000, 99_999))


def new_personal_id() -> str:
    return f"0012{next(_counter):08d}"


async def add_user(db, role: str, name: str, must_change: bool = False) -> User:
    user = User(
        personal_id=new_personal_id(),
        full_name=name,
        role=AccountRole(role),
        password_hash=hash_generated_password(PASSWORD),
        must_change_password=must_change,
        active=True,
    )
    db.add(user)
    await db.flush()
    return user


async def seed_school(server: LiveServer, parents_invited: bool = False) -> School:
    now = datetime.now(timezone.utc)
    async with server.db() as db:
        admin = await add_user(db, "admin", "Trần Quản Trị")
        teacher = await add_user(db, "teacher", "Nguyễn Thị Hà")
        other_teacher = await add_user(db, "teacher", "Lê Văn Bình")
        student = await add_user(db, "student", "Phạm Ngọc Ánh")
        other_student = await add_user(db, "student", "Đỗ Minh Khôi")
        parent = await add_user(db, "parent", "Phạm Văn Cường")
        observer = await add_user(db, "observer", "Hoàng Hiệu Trưởng")
        cls = SchoolClass(name="10A1", school_year="2026-2027", homeroom_teacher_id=teacher.id)
        other_cls = SchoolClass(name="11B2", school_year="2026-2027")
        db.add_all([cls, other_cls])
        await db.flush()
        db.add_all(
            [
                Enrollment(class_id=cls.id, student_id=student.id),
                Enrollment(class_id=other_cls.id, student_id=other_student.id),
                ParentLink(parent_id=parent.id, student_id=student.id),
                TeachingAssignment(teacher_id=teacher.id, class_id=cls.id, subject="Toán"),
                TeachingAssignment(teacher_id=other_teacher.id, class_id=other_cls.id, subject="Văn"),
            ]
        )
        period = Period(
            class_id=cls.id,
            subject="Toán",
            teacher_id=teacher.id,
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(minutes=40),
            parents_invited=parents_invited,
        )
        other_period = Period(
            class_id=other_cls.id,
            subject="Văn",
            teacher_id=other_teacher.id,
            starts_at=now,
            ends_at=now + timedelta(minutes=45),
        )
        db.add_all([period, other_period])
        await db.commit()
    return School(
        admin, teacher, other_teacher, student, other_student, parent, observer, cls, other_cls, period, other_period
    )
