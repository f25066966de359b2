"""Fixtures: a real server per test on SQLite, and on PostgreSQL where a test asks for both stores."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from argon2 import PasswordHasher

from liveclass import passwords

from tests.browser import ARGS, BROWSER_EXPECT_SECONDS, CHROMIUM
from tests.helpers import (
    POSTGRES_ADMIN_DSN,
    create_migrated_postgres_database,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
    postgres_url,
    seed_school,
    start_server,
)


# The first tries of the tests marked @pytest.mark.flaky that failed and ran again (pytest-rerunfailures keeps
# only their names): their failures are printed at the end of the run, so that a CI log says why.
_RERUN_FAILURES: list[pytest.TestReport] = []
RERUN_LINES = 60  # the end of each first failure, and of what it logged (the link control's last decisions)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.outcome == "rerun":
        _RERUN_FAILURES.append(report)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RERUN_FAILURES:
        return
    terminalreporter.write_sep("=", "why the tests that ran again failed the first time")
    for report in _RERUN_FAILURES:
        terminalreporter.write_sep("_", report.nodeid)
        terminalreporter.write_line("\n".join(report.longreprtext.splitlines()[-RERUN_LINES:]))
        for title, text in report.sections:
            if title.startswith("Captured log"):
                terminalreporter.write_line(f"--- {title} (its end)")
                terminalreporter.write_line("\n".join(text.splitlines()[-RERUN_LINES:]))


@pytest.fixture(autouse=True, scope="session")
def light_password_hashing():
    """The servers in this process hash and verify passwords with a light argon2id.

    The suite logs in thousands of times, and every login spends a full-cost argon2id verify (0.1-0.2 s of
    CPU) on purpose, so that the answer time tells nothing. Servers started as their own process
    (`liveclass serve`) keep the full cost; tests/test_auth.py checks the parameters a real server uses."""
    light = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", light)
        passwords._dummy_hash.cache_clear()  # made again, light, on its first use
        yield
    passwords._dummy_hash.cache_clear()


async def _postgres_available() -> bool:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def _require_postgres() -> None:
    if not await _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN}; CI must start it")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN}")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request, tmp_path):
    """The database URL of a fresh store: SQLite in the data dir, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    await _require_postgres()
    name = await create_postgres_database()
    yield postgres_url(name)
    await drop_postgres_database(name)


@pytest.fixture
async def server(request, tmp_path):
    """A real server (SQLite store) on an ephemeral port; `@pytest.mark.settings(...)` changes settings."""
    marker = request.node.get_closest_marker("settings")
    live = await start_server(make_settings(tmp_path / "var", **(marker.kwargs if marker else {})))
    yield live
    await live.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store_server(request, tmp_path):
    """A real server on each store: the test runs once on SQLite and once on PostgreSQL (a migrated copy)."""
    url, name = "", None
    if request.param == "postgresql":
        await _require_postgres()
        name = await create_migrated_postgres_database()
        url = postgres_url(name)
    live = await start_server(make_settings(tmp_path / "var", url))
    yield live
    await live.close()
    if name is not None:
        await drop_postgres_database(name)


@pytest.fixture
async def school(server):
    return await seed_school(server)


@pytest.fixture
async def period(server, school):
    """A running period with its teacher in the room: (session id, the teacher's live client)."""
    from tests.live import enter

    teacher_person = await server.logged_in(school.teacher)
    session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
    teacher = await enter(teacher_person, session["id"])
    await teacher.wait_for("room:state")
    yield session["id"], teacher
    await teacher.close()


@pytest.fixture(scope="session")
def lesson(tmp_path_factory, worker_id) -> dict:
    """A 10 s recording made by the real recorder from real aiortc peers, once per test run: teacher
    camera (flashing) + microphone (beeping in sync), a student's microphone (a hum), and the teacher's
    screen share from 3 s to 7 s (tests/recordings/conftest.py). Tests read it and copy it, never change it.

    Under pytest-xdist the first worker that needs it records it, under a lock in the run's shared temporary
    directory, and the others read what it wrote: one recording (10 s of live encoding) instead of one per
    worker."""
    from tests.recordings.conftest import _record_lesson

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the run's directory, above each worker's own
    made = shared / "lesson.json"
    with open(shared / "lesson.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the recording failed
        if not made.exists():
            directory = shared / "lesson"
            shutil.rmtree(directory, ignore_errors=True)  # what a failed try left
            directory.mkdir()
            with ThreadPoolExecutor(1) as thread:  # its own loop in its own thread, away from pytest-asyncio's
                recorded = thread.submit(asyncio.run, _record_lesson(directory)).result()
            made.write_text(json.dumps({**recorded, "path": str(recorded["path"])}))
    lesson = json.loads(made.read_text())
    return {**lesson, "path": Path(lesson["path"])}


@pytest.fixture
async def browser():
    """Debian's chromium through Playwright (tests/browser.py): yields (playwright, browser)."""
    from playwright.async_api import async_playwright, expect

    # Playwright's `expect` waits 5 s by default. The parallel part runs four workers, each with its own
    # servers and chromium, on two cores: a page can take longer than that to show what is already true.
    expect.set_options(timeout=BROWSER_EXPECT_SECONDS * 1000)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield pw, chromium
        await chromium.close()
