"""Every page of the web client, one after another, in Vietnamese: the walk the catalogue test
(tests/test_web_i18n.py) and the accessibility test (tests/test_web_a11y.py) both take.

`walk(server, school, lesson, browser, visit)` opens each screen and awaits `visit(name, page)` on it:
login, the periods list (student, teacher), the question bank, every page of the admin's navigation (found
in the page, so new admin pages are walked too), the records list, a session's records (recording, chart,
attendance, chat), the class summary, a shared recording, the live room as teacher and as student with a
quick poll open, the end's confirmation and ended screen, and the lists after the end.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from playwright.async_api import expect

from liveclass.models import Period

from tests.archive_seed import seed_archived_session
from tests.helpers import PASSWORD, add_user

# Open every <details> so that what it holds is checked too.
OPEN_DETAILS = "() => document.querySelectorAll('details').forEach((d) => { d.open = true; })"


async def new_page(browser, server, device: str | None = None):
    pw, chromium = browser
    options = {k: v for k, v in (pw.devices[device] if device else {}).items() if k != "default_browser_type"}
    context = await chromium.new_context(**options, locale="vi-VN")
    page = await context.new_page()
    await page.goto(server.base_url + "/")
    return page


async def log_in(page, user) -> None:
    await page.get_by_label("Số định danh cá nhân").fill(user.personal_id)
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page.get_by_role("button", name="Đăng xuất")).to_be_visible()


async def go(page, hash_path: str, ready: str = "main#main > *") -> None:
    await page.evaluate("(hash) => { location.hash = hash; }", hash_path)
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(ready).first).to_be_visible()
    await page.wait_for_timeout(200)


async def settled(page) -> None:
    await page.wait_for_load_state("networkidle")
    await page.evaluate(OPEN_DETAILS)
    await page.wait_for_timeout(150)


async def later_period(server, school, minutes: int = 5) -> Period:
    """A period of the student's class later today (in `minutes`): its row says when the teacher opens it."""
    now = datetime.now(timezone.utc)
    async with server.db() as db:
        period = Period(
            class_id=school.school_class.id,
            subject="Vật lí",
            teacher_id=school.teacher.id,
            starts_at=now + timedelta(minutes=minutes),
            ends_at=now + timedelta(minutes=minutes + 45),
        )
        db.add(period)
        await db.commit()
        return period


async def walk(server, school, lesson, browser, visit) -> list[str]:
    """Walks every page; returns the names of the screens visited."""
    archived = await seed_archived_session(server, school, lesson)
    await later_period(server, school)
    teacher_api = await server.logged_in(school.teacher)
    share = await teacher_api.json("POST", f"/sessions/{archived.session_id}/shares", expect=201, json={"days": 3})
    seen: list[str] = []

    async def at(name, page):
        await settled(page)
        seen.append(name)
        await visit(name, page)

    # A first login with a password the admin gave: the page asks for a new one.
    async with server.db() as db:
        newcomer = await add_user(db, "teacher", "Giáo Viên Mới", must_change=True)
        await db.commit()
    first = await new_page(browser, server)
    await first.get_by_label("Số định danh cá nhân").fill(newcomer.personal_id)
    await first.get_by_label("Mật khẩu").fill(PASSWORD)
    await first.get_by_role("button", name="Đăng nhập").click()
    await expect(first.get_by_role("heading", name="Đổi mật khẩu")).to_be_visible()
    await at("password change (first login)", first)
    await first.context.close()

    # Logged out: the login form.
    student = await new_page(browser, server, "iPhone 13")
    await expect(student.get_by_role("button", name="Đăng nhập")).to_be_visible()
    await at("login", student)
    await log_in(student, school.student)
    await expect(student.locator(".period").first).to_be_visible()
    await at("periods (student)", student)
    await go(student, f"#/shared/{share['token']}", "[data-screen=shared]")
    await at("shared recording (student)", student)

    teacher = await new_page(browser, server)
    await log_in(teacher, school.teacher)
    await expect(teacher.locator(".period").first).to_be_visible()
    await at("periods (teacher)", teacher)
    await go(teacher, "#/bank", "h1")
    await at("question bank (teacher)", teacher)
    await teacher.get_by_role("button", name="Thêm câu hỏi").first.click()
    await expect(teacher.locator("form").first).to_be_visible()
    await at("question bank: a new question (teacher)", teacher)
    await go(teacher, "#/records", "h1")
    await at("records list (teacher)", teacher)

    admin = await new_page(browser, server)
    await log_in(admin, school.admin)
    await at("periods (admin)", admin)
    await go(admin, "#/admin", "nav.admin-nav")
    links = await admin.locator("nav.admin-nav a").evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    assert len(links) >= 3, links
    for href in links:
        await go(admin, href, "nav.admin-nav")
        await at(f"admin {href}", admin)
    await go(admin, f"#/records/{archived.session_id}", "[data-player]")
    await at("session records (admin)", admin)
    await go(admin, f"#/records/class/{school.school_class.id}", "table")
    await at("class summary (admin)", admin)

    # The live room: the teacher starts the period, admits the student, opens a quick poll.
    await go(teacher, "#/periods", ".period")
    await teacher.locator(f'[data-period="{school.period.id}"]').get_by_role("button", name="Bắt đầu tiết học").click()
    await expect(teacher.locator(".room")).to_be_visible()
    await go(student, "#/periods", ".period")
    await student.get_by_role("link", name="Vào lớp").click()
    await expect(student.locator("[data-screen=lobby]")).to_be_visible()
    await at("lobby (student)", student)
    admit_all = teacher.get_by_role("button", name="Cho tất cả vào")
    if not await admit_all.is_visible():
        await teacher.get_by_role("tab", name="Người tham gia").click()
    await expect(admit_all).to_be_visible()
    await admit_all.click()
    await expect(student.locator(".room")).to_be_visible()
    await teacher.get_by_role("button", name="Câu hỏi nhanh").click()
    form = teacher.locator("[data-poll=form]")
    await expect(form).to_be_visible()
    await at("room: quick poll form (teacher)", teacher)
    await form.get_by_role("button", name="Bắt đầu").click()
    await expect(teacher.locator(".poll[data-state=open]")).to_be_visible()
    await expect(student.locator(".poll")).to_be_visible()
    await at("room with a quick poll (teacher)", teacher)
    await at("room with a quick poll (student)", student)
    # Every tab of the room's side panel, for both.
    for person, who in ((teacher, "teacher"), (student, "student")):
        tabs = person.locator(".room [role=tab]")
        for index in range(await tabs.count()):
            tab = tabs.nth(index)
            label = (await tab.inner_text()).split("(")[0].strip()
            await tab.click()
            await at(f"room tab {label} ({who})", person)

    # The end: the teacher's in-page confirmation, the student's ended screen, the teacher's list ("taught").
    await teacher.locator(".room").get_by_role("button", name="Kết thúc tiết học").click()
    dialog = teacher.locator("dialog[open]")
    await expect(dialog).to_be_visible()
    await at("room: end confirmation (teacher)", teacher)
    await dialog.locator("button[type=submit]").click()
    await expect(student.locator("[data-screen=ended]")).to_be_visible()
    await at("ended (student)", student)
    await go(teacher, "#/periods", ".period[data-state=taught]")
    await at("periods after the end (teacher)", teacher)
    await go(student, "#/periods", ".period")
    await at("periods after the end (student)", student)
    for page in (student, teacher, admin):
        await page.context.close()
    return seen
