"""Issue 15's "done when": from a fresh install with one admin account (made by `liveclass users add`, as the
README says), the admin sets up the school in the web pages only — a teacher's account and its password slip,
a class, its roster through the page's import (bad rows named first), a teaching assignment and a week of
timetable (a weekly period, a double booking refused, the half-day warning answered with a reason, a bad
timetable file named line by line) — then the teacher and a student log in, find the period, and the student
reaches the lobby and is let in. Screenshots of the admin's new pages in vi and en."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta

from playwright.async_api import expect
from sqlalchemy import select

from liveclass.models import AuditEntry, Period
from liveclass.timetable import SCHOOL_TIMEZONE
from tests.browser import SCREENSHOTS, needs_chromium, screenshot
from tests.helpers import make_settings, start_server
from tests.test_web_a11y import axe_violations
from tests.test_web_i18n import TEXTS, catalogue, leftover, patterns, seed_data

pytestmark = needs_chromium

ADMIN_ID, TEACHER_ID = "001080000001", "001088000123"
STUDENTS = [("001209000001", "Lý Thu Trang"), ("001209000002", "Vũ Đức Long")]
NEW_PASSWORD = "Bầu-trời-xanh-Hà-Giang-2026"
PAGE_ERRORS: list[str] = []  # uncaught script errors in any page of the walk
AXE_SERIOUS: list[str] = []  # axe-core's serious or critical violations on the admin's new pages and dialogs
NOT_VIETNAMESE: list[str] = []  # text of a Vietnamese screen that is neither the catalogue's nor the school's data
VI_PATTERNS = patterns(catalogue("vi"))
# Typed by the admin in the walk, or the server's reasons about a timetable file's rows (their Vietnamese half).
TYPED = ["Bù tiết nghỉ do bão số 9", "danh-sach-10A1.csv", "tkb.csv", "Toán"]


def first_admin(data_dir) -> str:
    """`liveclass users add --role admin` on a fresh data directory: the password it prints once."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "liveclass.cli",
            "users",
            "add",
            "--role",
            "admin",
            "--personal-id",
            ADMIN_ID,
            "--name",
            "Trần Quản Trị",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
    )
    assert result.returncode == 0, result.stderr
    return re.search(r"shown once.*: (\S+)\s*$", result.stdout, re.MULTILINE).group(1)


async def log_in(browser, server, personal_id: str, password: str, change_to: str | None = NEW_PASSWORD):
    """A new browser (vi) logged in; a generated password is changed through the page, as people do."""
    pw, chromium = browser
    context = await chromium.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())  # no native dialog is expected: one would fail the flow
    page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{personal_id}: {error}"))
    await page.goto(server.base_url + "/")
    await page.get_by_label("Số định danh cá nhân").fill(personal_id)
    await page.get_by_label("Mật khẩu").fill(password)
    await page.get_by_role("button", name="Đăng nhập").click()
    if change_to:
        await expect(page.get_by_role("heading", name="Đổi mật khẩu")).to_be_visible()
        await page.get_by_label("Mật khẩu hiện tại").fill(password)
        await page.get_by_label("Mật khẩu mới", exact=True).fill(change_to)
        await page.get_by_label("Nhập lại mật khẩu mới").fill(change_to)
        await page.get_by_role("button", name="Lưu mật khẩu").click()
    await expect(page.get_by_role("heading", name="Tiết học hôm nay")).to_be_visible()
    return page


async def shoot(page, name: str, server=None, server_text: bool = False) -> None:
    """A screenshot, axe-core on what it shows and, with `server`, every text checked against the Vietnamese
    catalogue (`server_text`: the rows of a timetable file are the server's bilingual reasons, left out)."""
    await screenshot(page, SCREENSHOTS / f"{name}-vi.png", full_page=True)
    if server is not None:
        # Data too: the generated passwords on the slips, the server's address.
        passwords = [text.strip() for text in await page.locator(".slip-password").all_inner_texts()]
        data = await seed_data(server) + TYPED + passwords + [server.base_url]
        for item in await page.evaluate(TEXTS):
            if server_text and item["where"] in ("li", "strong"):  # a file's rows: the server's column and reason
                continue
            if rest := leftover(item["text"], data, VI_PATTERNS):
                NOT_VIETNAMESE.append(f'{name}: {item["where"]}: "{item["text"]}" → {rest}')
    for v in await axe_violations(page):
        if v["impact"] in ("serious", "critical"):
            AXE_SERIOUS.append(f"{name}: {v['id']} ({v['help']}): {[n['target'] for n in v['nodes'][:5]]}")


async def shoot_en(page, name: str, check_text: str) -> None:
    """The same page in English (the language switch re-renders it), then back to Vietnamese."""
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("main")).to_contain_text(check_text)
    await screenshot(page, SCREENSHOTS / f"{name}-en.png", full_page=True)
    await page.get_by_role("button", name="Tiếng Việt").click()
    await expect(page.get_by_role("button", name="English")).to_be_visible()


def slots_now() -> tuple[datetime, datetime, list[tuple[str, str]]]:
    """The period of the test (started 5 minutes ago, 40 minutes to go, within today at the school) and two
    30-minute periods in the same half-day that do not overlap it."""
    now = datetime.now(SCHOOL_TIMEZONE).replace(second=0, microsecond=0)
    midnight = now.replace(hour=0, minute=0)
    start = max(midnight, now - timedelta(minutes=5 + now.minute % 5))
    end = min(start + timedelta(minutes=45), midnight + timedelta(hours=23, minutes=59))
    half_start = midnight + timedelta(hours=0 if start.hour < 12 else 12)
    free, slot = [], half_start
    while len(free) < 2:
        slot_end = slot + timedelta(minutes=30)
        if slot_end <= start or slot >= end:
            free.append((slot.strftime("%H:%M"), slot_end.strftime("%H:%M")))
        slot += timedelta(minutes=35)
    return start, end, free


async def test_admin_sets_up_the_school_then_teacher_and_student_meet(tmp_path, browser):
    data_dir = tmp_path / "var"
    settings = make_settings(data_dir)
    password = first_admin(data_dir)
    server = await start_server(settings)
    PAGE_ERRORS.clear()
    AXE_SERIOUS.clear()
    NOT_VIETNAMESE.clear()
    try:
        await _walk(server, browser, password)
    finally:
        await server.close()
    assert PAGE_ERRORS == []
    assert AXE_SERIOUS == []
    assert not NOT_VIETNAMESE, "\n".join(NOT_VIETNAMESE)


async def _walk(server, browser, admin_password: str) -> None:
    admin = await log_in(browser, server, ADMIN_ID, admin_password)
    await admin.get_by_role("link", name="Quản trị").click()
    nav = admin.get_by_role("navigation", name="Quản trị")

    # -- the teacher's account, its password on a slip that prints alone --------------------------------
    await nav.get_by_role("link", name="Tài khoản").click()
    create = admin.locator("details", has_text="Tạo tài khoản").first
    await create.get_by_label("Họ và tên").fill("Nguyễn Thị Hà")
    await create.get_by_label("Số định danh cá nhân").fill(TEACHER_ID)
    await create.get_by_label("Vai trò").select_option("teacher")
    await create.get_by_role("button", name="Tạo tài khoản").click()
    slip = admin.locator(f'.slip[data-personal-id="{TEACHER_ID}"]')
    await expect(slip).to_contain_text("Nguyễn Thị Hà")
    teacher_password = (await slip.locator(".slip-password").inner_text()).strip()
    assert len(teacher_password) >= 10
    await shoot(admin, "admin-password-slip", server)
    await admin.emulate_media(media="print")  # the slip alone is printed: no top bar, no page behind it
    await expect(admin.locator(".topbar")).to_be_hidden()
    await expect(admin.locator("#main")).to_be_hidden()
    await expect(admin.get_by_role("button", name="In phiếu")).to_be_hidden()
    await expect(slip.locator(".slip-password")).to_be_visible()
    await admin.emulate_media(media="screen")
    await admin.get_by_role("button", name="Đóng").click()
    await expect(slip).to_have_count(0)  # shown once: gone when closed
    teacher_row = admin.locator(f'tr[data-personal-id="{TEACHER_ID}"]')
    await expect(teacher_row).to_contain_text("Giáo viên")
    await expect(teacher_row).to_contain_text("Đang hoạt động")

    # -- the class ------------------------------------------------------------------------------------
    await nav.get_by_role("link", name="Lớp học").click()
    await admin.get_by_label("Tên lớp").fill("10A1")
    await admin.get_by_label("Giáo viên chủ nhiệm").select_option(label=f"Nguyễn Thị Hà ({TEACHER_ID})")
    await admin.get_by_role("button", name="Tạo lớp").click()
    await expect(admin.get_by_role("heading", name=re.compile(r"Lớp 10A1 · năm học"))).to_be_visible()

    # -- the roster through the page's import: the bad rows named by line, then the good file -----------
    await nav.get_by_role("link", name="Tài khoản").click()
    roster = admin.locator("details", has_text="Nhập danh sách từ tệp CSV")
    await roster.locator("summary").click()
    header = "personal_id,full_name,role,class,date_of_birth,parent_of\n"
    bad = header + f"{STUDENTS[0][0]},{STUDENTS[0][1]},student,10A1,06/05/2011,\n{STUDENTS[1][0]},,pupil,10A1,,\n"
    await roster.get_by_label("Tệp danh sách (CSV)").set_input_files(
        {"name": "danh-sach-10A1.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    await roster.get_by_role("button", name="Nhập danh sách").click()
    problems = roster.locator(".row-problems")
    await expect(roster.get_by_role("alert")).to_contain_text("Chưa nhập gì: 1 dòng có lỗi")
    await expect(problems.locator('li[data-line="3"]')).to_contain_text("Dòng 3")
    await expect(problems.locator('li[data-line="3"]')).to_contain_text("thiếu họ tên")
    await expect(problems.locator('li[data-line="3"]')).to_contain_text("vai trò “pupil” không hợp lệ")
    await expect(admin.locator(f'tr[data-personal-id="{STUDENTS[0][0]}"]')).to_have_count(0)  # nothing imported
    await shoot(admin, "admin-roster-errors", server)
    good = header + "".join(f"{pid},{name},student,10A1,,\n" for pid, name in STUDENTS)
    await roster.get_by_label("Tệp danh sách (CSV)").set_input_files(
        {"name": "danh-sach-10A1.csv", "mimeType": "text/csv", "buffer": good.encode()}
    )
    await roster.get_by_role("button", name="Nhập danh sách").click()
    await expect(admin.locator(".slip")).to_have_count(2)
    student_password = (
        await admin.locator(f'.slip[data-personal-id="{STUDENTS[0][0]}"] .slip-password').inner_text()
    ).strip()
    await admin.get_by_role("button", name="Đóng").click()
    await expect(admin.locator(".school-status")).to_contain_text("2 tài khoản mới")
    await expect(admin.locator(f'tr[data-personal-id="{STUDENTS[0][0]}"]')).to_contain_text("Học sinh")
    await shoot(admin, "admin-accounts", server)
    await shoot_en(admin, "admin-accounts", "Accounts")

    # An account edited, given a new password on a slip, deactivated after an in-page question (Cancel cancels).
    row = admin.locator(f'tr[data-personal-id="{STUDENTS[1][0]}"]')
    await row.get_by_role("button", name="Sửa").click()
    await row.get_by_label("Họ và tên").fill("Vũ Đức Long Anh")
    await row.get_by_role("button", name="Lưu").click()
    await expect(row).to_contain_text("Vũ Đức Long Anh")
    await row.get_by_role("button", name="Cấp lại mật khẩu").click()
    question = admin.get_by_role("dialog")
    await expect(question).to_contain_text("Cấp mật khẩu mới cho Vũ Đức Long Anh?")
    await question.get_by_role("button", name="Cấp lại mật khẩu").click()
    await expect(admin.locator(f'.slip[data-personal-id="{STUDENTS[1][0]}"] .slip-password')).to_have_text(
        re.compile(r"^\S{10,}$")
    )
    await admin.get_by_role("button", name="Đóng").click()
    await row.get_by_role("button", name="Khóa tài khoản").click()
    await admin.get_by_role("dialog").get_by_role("button", name="Hủy").click()
    await expect(admin.get_by_role("dialog")).to_have_count(0)
    await expect(row).to_contain_text("Đang hoạt động")
    await row.get_by_role("button", name="Khóa tài khoản").click()
    await admin.get_by_role("dialog").get_by_role("button", name="Khóa tài khoản").click()
    await expect(row).to_contain_text("Đã khóa")
    await expect(admin.locator(".school-status")).to_contain_text("Đã khóa tài khoản của Vũ Đức Long Anh.")
    await expect(
        admin.locator(f'tr[data-personal-id="{ADMIN_ID}"]').get_by_role("button", name="Khóa tài khoản")
    ).to_have_count(0)

    # -- the teaching assignment; the class's roster is there -------------------------------------------
    await nav.get_by_role("link", name="Lớp học").click()
    await admin.get_by_role("link", name="10A1").click()
    detail = admin.locator(".class-detail")
    await expect(detail.locator(".roster li")).to_have_count(2)
    await expect(detail.locator(".roster")).to_contain_text("Lý Thu Trang")
    await expect(detail.locator(".roster")).to_contain_text("Vũ Đức Long Anh")
    await detail.get_by_label("Giáo viên", exact=True).select_option(label=f"Nguyễn Thị Hà ({TEACHER_ID})")
    await detail.get_by_label("Môn học").fill("Toán")
    await detail.get_by_role("button", name="Phân công").click()
    await expect(admin.locator(".class-detail .assignments")).to_contain_text("Toán · Nguyễn Thị Hà")
    await shoot(admin, "admin-class", server)
    await shoot_en(admin, "admin-class", "Teaching assignments")

    # -- a week of timetable: every day of this week, at the time of the test ---------------------------
    start, end, free = slots_now()
    today = start.date()
    monday = today - timedelta(days=today.weekday())
    await nav.get_by_role("link", name="Thời khóa biểu").click()
    form = admin.locator("form.timetable-form")
    await form.get_by_label("Lớp · môn · giáo viên").select_option(label="10A1 · Toán · Nguyễn Thị Hà")
    await form.get_by_label("Hằng tuần").check()
    for day in ["Thứ 2", "Thứ 3", "Thứ 4", "Thứ 5", "Thứ 6", "Thứ 7", "Chủ nhật"]:
        await form.get_by_label(day, exact=True).check()
    await form.get_by_label("Từ ngày").fill(monday.isoformat())
    await form.get_by_label("Đến ngày").fill((monday + timedelta(days=6)).isoformat())
    await expect(form).to_contain_text("Sẽ tạo 7 tiết học.")
    await form.get_by_label("Bắt đầu").fill(start.strftime("%H:%M"))
    await form.get_by_label("Kết thúc").fill(end.strftime("%H:%M"))
    await form.get_by_role("button", name="Thêm vào thời khóa biểu").click()
    await expect(admin.locator(".school .notice")).to_have_text("Đã thêm 7 tiết học.")
    when = f"{start:%H:%M}–{end:%H:%M}"
    for offset in range(7):
        day = admin.locator(f'.week-day[data-day="{(monday + timedelta(days=offset)).isoformat()}"]')
        await expect(day).to_contain_text(when)
        await expect(day).to_contain_text("Toán · 10A1")

    async def single(slot: tuple[str, str]) -> None:
        form = admin.locator("form.timetable-form")
        await form.get_by_label("Lớp · môn · giáo viên").select_option(label="10A1 · Toán · Nguyễn Thị Hà")
        await form.get_by_label("Ngày", exact=True).fill(today.isoformat())
        await form.get_by_label("Bắt đầu").fill(slot[0])
        await form.get_by_label("Kết thúc").fill(slot[1])
        await form.get_by_role("button", name="Thêm vào thời khóa biểu").click()

    # The teacher (and the class) booked twice: refused, naming the other period.
    # (inside the period: after 23:15 it ends at 23:59, and a clash running past midnight would end before it began)
    clash_start, clash_end = (start + (end - start) / 3).strftime("%H:%M"), end.strftime("%H:%M")
    await single((clash_start, clash_end))
    refusal = admin.locator(".check-box.refused")
    await expect(refusal).to_contain_text("Chưa thêm tiết nào: 1 tiết bị trùng giờ.")
    await expect(refusal).to_contain_text("giáo viên Nguyễn Thị Hà đã có tiết vào giờ này: Toán · 10A1")
    await expect(refusal).to_contain_text(f"{today:%d/%m/%Y} {when}")
    await expect(refusal).to_contain_text("tiết số")
    await shoot(admin, "admin-timetable-conflict", server)
    # The same refusal in English: the page's language, the server's reason in it.
    await admin.get_by_role("button", name="English").click()
    await expect(admin.get_by_role("heading", name="Timetable", exact=True)).to_be_visible()
    form = admin.locator("form.timetable-form")
    await form.get_by_label("Class · subject · teacher").select_option(label="10A1 · Toán · Nguyễn Thị Hà")
    await form.get_by_label("Date", exact=True).fill(today.isoformat())
    await form.get_by_label("Start").fill(clash_start)
    await form.get_by_label("End").fill(clash_end)
    await form.get_by_role("button", name="Add to the timetable").click()
    await expect(refusal).to_contain_text("Nothing was added: 1 period(s) clash with another.")
    await expect(refusal).to_contain_text("the teacher Nguyễn Thị Hà already teaches then: Toán · 10A1")
    await screenshot(admin, SCREENSHOTS / "admin-timetable-conflict-en.png", full_page=True)
    await admin.get_by_role("button", name="Tiếng Việt").click()
    await expect(admin.get_by_role("heading", name="Thời khóa biểu", exact=True)).to_be_visible()

    # A second online period in the half-day goes in; a third warns and needs a reason.
    await single(free[0])
    await expect(admin.locator(".school .notice")).to_have_text("Đã thêm 1 tiết học.")
    await single(free[1])
    warning = admin.locator(".check-box.warning")
    half = "buổi sáng" if start.hour < 12 else "buổi chiều"
    await expect(warning).to_contain_text("Quá 2 tiết trực tuyến hoàn toàn trong một buổi")
    await expect(warning).to_contain_text(f"Lớp 10A1 sẽ có 3 tiết trực tuyến hoàn toàn vào {half} {today:%d/%m/%Y}")
    await warning.get_by_role("button", name="Vẫn xếp và ghi lý do").click()
    await expect(warning).to_contain_text("Hãy ghi lý do để tiếp tục.")  # no reason, no period
    await shoot(admin, "admin-timetable-half-day", server)
    await warning.get_by_label("Lý do").fill("Bù tiết nghỉ do bão số 9")
    await warning.get_by_role("button", name="Vẫn xếp và ghi lý do").click()
    await expect(admin.locator(".school .notice")).to_have_text("Đã thêm 1 tiết học.")
    today_box = admin.locator(f'.week-day[data-day="{today.isoformat()}"] li')
    await expect(today_box).to_have_count(3)
    async with server.db() as db:
        entry = (
            await db.execute(select(AuditEntry).where(AuditEntry.action == "online_limit_overridden"))
        ).scalar_one()
        assert entry.details["reason"] == "Bù tiết nghỉ do bão số 9"
        assert len((await db.execute(select(Period))).all()) == 9

    # A timetable file with a wrong row: every bad row with its line; the templates are offered.
    importer = admin.locator("details", has_text="Nhập thời khóa biểu từ tệp")
    await importer.locator("summary").click()
    async with admin.expect_download() as download:
        await importer.get_by_role("link", name="Tải mẫu Excel").click()
    assert (await download.value).suggested_filename == "mẫu-thời-khóa-biểu.xlsx"
    csv_file = (
        "Lớp,Môn,Số định danh giáo viên,Thứ,Bắt đầu,Kết thúc,Từ ngày,Đến ngày,Hình thức\n"
        f"10A9,Toán,{TEACHER_ID},2,07:00,07:45,{monday:%d/%m/%Y},,Trực tuyến\n"
        f"10A1,Toán,{TEACHER_ID},Thứ 9,07:00,06:00,{monday:%d/%m/%Y},,\n"
    )
    await importer.get_by_label("Tệp thời khóa biểu (.xlsx hoặc .csv)").set_input_files(
        {"name": "tkb.csv", "mimeType": "text/csv", "buffer": csv_file.encode()}
    )
    await importer.get_by_role("button", name="Nhập thời khóa biểu").click()
    rows = importer.locator(".row-problems")
    await expect(importer.get_by_role("alert")).to_contain_text("Chưa nhập gì: 2 dòng có lỗi.")
    await expect(rows.locator('li[data-line="2"]')).to_contain_text("Dòng 2 (Lớp): Không có lớp 10A9")
    await expect(rows.locator('li[data-line="3"]').first).to_contain_text("Dòng 3 (Thứ)")
    await shoot(admin, "admin-timetable-import-errors", server, server_text=True)
    await shoot_en(admin, "admin-timetable", "Timetable")

    # -- the teacher finds the period and starts it; the student finds it and waits in the lobby -------------
    teacher = await log_in(browser, server, TEACHER_ID, teacher_password)
    period = teacher.locator("li", has_text=when).filter(has_text="10A1")
    await period.get_by_role("button", name="Bắt đầu tiết học").click()
    await expect(teacher.locator(".room")).to_be_visible()

    student = await log_in(browser, server, STUDENTS[0][0], student_password)
    await student.locator("li", has_text=when).get_by_role("link", name="Vào lớp").click()
    await expect(student.locator("[data-screen=lobby]")).to_contain_text("Phòng chờ")
    tab = teacher.get_by_role("tab", name="Người tham gia")
    if await tab.count():
        await tab.click()
    await teacher.locator(".lobby-list li", has_text=STUDENTS[0][1]).get_by_role("button", name="Cho vào").click()
    await expect(student.locator(".room")).to_be_visible()
    await expect(student.locator("[data-screen=lobby]")).to_have_count(0)
