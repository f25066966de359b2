"""The records archive in a real browser (Debian's chromium through Playwright): the admin finds
yesterday's period, reads its attendance and replays its recording in sync; teachers see only their
own periods; students watch what their teacher shared; expired links say so; English; a phone.

The archived period is tests/archive_seed.py's: Ánh on time (dropped once), Bảo 9 minutes late, Chi
absent, and a real 10 s recording (teacher camera + microphone, a student's microphone, a screen share
from about 3 s to 7 s).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeoutError, expect
from sqlalchemy import update

from liveclass.models import AuditEntry, RecordingShare, utcnow
from tests.archive_seed import seed_archived_session
from tests.helpers import PASSWORD
from tests.browser import SCREENSHOTS, needs_chromium, screenshot
from tests.test_web_client import open_as, run_period

pytestmark = needs_chromium

CLASS_10A1 = "10A1 (2026-2027)"

# Where the synced player stands: every file's element, its currentTime and whether it is shown.
PLAYER_STATE = """() => {
  const player = document.querySelector("[data-player]");
  const files = [...player.querySelectorAll("video, audio")].map((m) => ({
    source: m.dataset.source, kind: m.dataset.kind, time: m.currentTime, hidden: m.hidden, paused: m.paused,
    width: m.videoWidth || 0, duration: m.duration, ready: m.readyState, ended: m.ended,
    error: m.error?.code ?? null }));
  return { time: Number(player.dataset.time), state: player.dataset.state,
           end: Number(player.querySelector("input.seek").max), files };
}"""

# True once the camera video plays near `target` s on the session clock (and the master clock with it).
CAMERA_NEAR = """([target, tolerance]) => {
  const player = document.querySelector("[data-player]");
  const camera = player.querySelector('video[data-source="camera"]');
  const start = 0.015;  // the camera file's start on the session clock (start_ms 15)
  return player.dataset.state === "playing" && !camera.paused
    && Math.abs(camera.currentTime + start - target) < tolerance
    && Math.abs(Number(player.dataset.time) - target) < tolerance;
}"""

NO_HORIZONTAL_OVERFLOW = "() => document.scrollingElement.scrollWidth <= window.innerWidth"


def recording_length(lesson: dict) -> float:
    """Seconds from the recording's start to the end of its last file, as its manifest says."""
    return max(f["start_ms"] + f["duration_ms"] for f in lesson["manifest"]["files"]) / 1000


def clock(seconds: float) -> str:
    """The player's clock for a time under an hour: mm:ss, whole seconds."""
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


def watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def login_at(browser, server, user, hash_path: str, device: str | None = None):
    """Open `hash_path` (e.g. "#/shared/TOKEN") logged out, log in on the form it shows, land there."""
    pw, chromium = browser
    options = {k: v for k, v in (pw.devices[device] if device else {}).items() if k != "default_browser_type"}
    context = await chromium.new_context(**options, locale="vi-VN")
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{server.base_url}/{hash_path}")
    await page.get_by_label("Số định danh cá nhân").fill(user.personal_id)
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    return page


async def go(page, hash_path: str) -> None:
    await page.evaluate("(hash) => { location.hash = hash; }", hash_path)


async def english(page, path=None, full_page=False) -> None:
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("button", name="Tiếng Việt")).to_be_visible()
    if path:
        await page.wait_for_timeout(300)  # let the page settle for the picture (not an assertion)
        await screenshot(page, path, full_page=full_page)


async def vietnamese(page) -> None:
    await page.get_by_role("button", name="Tiếng Việt").click()
    await expect(page.get_by_role("button", name="English")).to_be_visible()


async def seed_other_teachers_period(server, school):
    """Yesterday's Văn period of 11B2, taught by another teacher (no recording)."""
    return await seed_archived_session(
        server, school, None, school_class=school.other_class, teacher=school.other_teacher, subject="Văn"
    )


async def test_admin_finds_yesterdays_period_reads_attendance_and_replays_it(server, school, lesson, browser):
    archived = await seed_archived_session(server, school, lesson)
    await seed_other_teachers_period(server, school)
    admin = await open_as(browser, server, school.admin)
    errors = watch_errors(admin)

    # Administration → "Hồ sơ buổi học": both of yesterday's periods, newest first.
    await admin.get_by_role("link", name="Quản trị").click()
    nav = admin.get_by_role("navigation", name="Quản trị")
    await expect(nav.get_by_role("link", name="Hồ sơ buổi học")).to_have_attribute("aria-current", "page")
    for section in ("Nhật ký truy cập", "Thời hạn lưu trữ", "Tài khoản"):
        await expect(nav.get_by_role("link", name=section)).to_be_visible()
    rows = admin.locator("tr.session-row")
    await expect(rows).to_have_count(2)

    # Filter: class 10A1, yesterday (school-local) from and to.
    day = archived.day.isoformat()
    await admin.get_by_label("Lớp").select_option(label=CLASS_10A1)
    await admin.get_by_label("Từ ngày").fill(day)
    await admin.get_by_label("Đến ngày").fill(day)
    await admin.get_by_role("button", name="Tìm").click()
    await expect(rows).to_have_count(1)
    row = rows.first
    for text in ("10A1", "Toán", "Nguyễn Thị Hà", "43 phút"):  # 08:01 → 08:44
        await expect(row).to_contain_text(text)
    await expect(row.locator('td[data-label="Bản ghi hình"]')).to_have_text("4")
    await expect(row.locator('td[data-label="Người tham gia"]')).to_have_text("3")  # teacher, Ánh, Bảo
    assert f"from={day}" in admin.url and "class_id=" in admin.url  # the filters stay in the address
    await screenshot(admin, SCREENSHOTS / "archive-sessions-vi.png")
    await english(admin, SCREENSHOTS / "archive-sessions-en.png")
    await expect(admin.get_by_role("heading", name="Session records")).to_be_visible()
    await vietnamese(admin)

    # Open it: the header, and the attendance chart with one bar per student.
    await admin.locator("tr.session-row").first.click()
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    await expect(admin.locator(".facts")).to_contain_text("Nguyễn Thị Hà")
    await expect(admin.locator(".facts")).to_contain_text("08:01–08:44")
    bars = admin.locator("svg.chart g.bar-row")
    await expect(bars).to_have_count(3)
    absent = admin.locator(f'svg.chart g.bar-row[data-user="{archived.absent.id}"]')
    await expect(absent).to_have_attribute("data-minutes", "0")
    await expect(absent).to_have_attribute("data-status", "absent")
    assert await absent.locator("rect.bar").get_attribute("width") == "0"
    late_bar = admin.locator(f'svg.chart g.bar-row[data-user="{archived.late.id}"]')
    assert float(await late_bar.get_attribute("data-minutes")) == pytest.approx(33.7, abs=0.2)  # 08:10:20 → 08:44
    assert float(await late_bar.locator("rect.bar").get_attribute("width")) > 0
    # The same in the table, in words.
    table = admin.locator("table.attendance")
    await expect(table.locator(f'tr[data-user="{archived.late.id}"]')).to_contain_text("Đi muộn")
    await expect(table.locator(f'tr[data-user="{archived.absent.id}"]')).to_contain_text("Vắng")
    await expect(table.locator(f'tr[data-user="{archived.present.id}"]')).to_contain_text("Có mặt")
    await expect(table.locator(f'tr[data-user="{archived.present.id}"]')).to_contain_text("Cho vào: Nguyễn Thị Hà")
    denied = table.locator(f'tr[data-user="{archived.denied.id}"]')  # knocked, refused: in the table, no bar
    await expect(denied).to_contain_text("Bị từ chối")
    await expect(denied).to_contain_text("Từ chối: Nguyễn Thị Hà · Lý do: Không thuộc lớp này")
    await table.locator(f'tr[data-user="{archived.present.id}"] summary').click()  # Ánh's two stretches
    await expect(table.locator(f'tr[data-user="{archived.present.id}"] .intervals li')).to_have_count(2)
    await expect(table.locator(f'tr[data-user="{archived.present.id}"] .intervals')).to_contain_text("mất kết nối")
    # Chat, with the deleted message marked; the lobby decisions.
    deleted_message = admin.locator(".archive-chat li.deleted")
    await expect(deleted_message).to_have_count(1)
    await expect(deleted_message).to_contain_text("Em chào cô ạ")
    await expect(deleted_message).to_contain_text("Đã bị Nguyễn Thị Hà xóa")
    await expect(admin.locator(".lobby-log")).to_contain_text("Trần Gia Bảo")
    export = admin.get_by_role("link", name="Tải toàn bộ hồ sơ (ZIP)")
    await expect(export).to_have_attribute("href", f"/api/v1/sessions/{archived.session_id}/export")
    async with admin.expect_download() as download:
        await export.click()
    assert (await download.value).suggested_filename.endswith(".zip")
    async with admin.expect_download() as download:
        await admin.get_by_role("link", name="Tải điểm danh (Excel)").click()
    assert (await download.value).suggested_filename == (
        f"diem-danh-10A1-Toán-{archived.day.isoformat()}-session-{archived.session_id}.xlsx"
    )

    # Play: the camera moves, the screen share is not there yet.
    await admin.get_by_role("button", name="Phát").click()
    await admin.wait_for_function(CAMERA_NEAR, arg=[1.0, 0.8], timeout=15_000)
    state = await admin.evaluate(PLAYER_STATE)
    screen = admin.locator('[data-player] video[data-source="screen"]')
    await expect(screen).to_be_hidden()
    assert all(f["time"] > 0 for f in state["files"] if f["source"] != "screen"), state

    # Seek to 3.5 s: every file jumps there (the screen share to 3.5 - 3.024 s into its file) and plays on.
    # (The share lasts until 7 s: a seek far into it left a busy machine too little of it to catch up in.)
    await admin.get_by_label("Tua đến").fill("3.5")
    await admin.wait_for_function(CAMERA_NEAR, arg=[3.9, 0.4], timeout=10_000)
    await expect(screen).to_be_visible()
    await admin.wait_for_function(
        """() => {
      const screen = document.querySelector('[data-player] video[data-source="screen"]');
      const player = document.querySelector("[data-player]");
      return !screen.paused && screen.videoWidth > 0
        && Math.abs(screen.currentTime + 3.024 - Number(player.dataset.time)) < 0.4;
    }""",
        timeout=10_000,
    )
    state = await admin.evaluate(PLAYER_STATE)
    for file in state["files"]:
        if file["kind"] == "audio":  # both microphones are at the same moment as the picture
            assert abs(file["time"] + 0.013 - state["time"]) < 0.5, state
    await screenshot(admin, SCREENSHOTS / "archive-session-vi.png", full_page=True)

    # Seek to 8 s: the share is over (hidden, paused); the camera goes on from 8 s. The clock shows the
    # recording's own length: 10 s of media, less when a starved machine's peers sent less (the manifest).
    await admin.get_by_label("Tua đến").fill("8")
    await admin.wait_for_function(CAMERA_NEAR, arg=[8.3, 0.4], timeout=10_000)
    await expect(screen).to_be_hidden()
    assert await screen.evaluate("(video) => video.paused")
    length = recording_length(lesson)
    await expect(admin.locator(".player-clock")).to_have_text(re.compile(rf"00:0[89] / {clock(length)}"))
    # It plays to the end and stops there.
    await admin.wait_for_function(
        "() => document.querySelector('[data-player]').dataset.state === 'paused'", timeout=10_000
    )
    await expect(admin.get_by_role("button", name="Phát")).to_be_visible()

    # The same page in English.
    await english(admin, SCREENSHOTS / "archive-session-en.png", full_page=True)
    await expect(admin.get_by_role("heading", name="Attendance", exact=True)).to_be_visible()
    await expect(admin.locator(f'table.attendance tr[data-user="{archived.late.id}"]')).to_contain_text("Late")
    await expect(admin.locator(f'table.attendance tr[data-user="{archived.absent.id}"]')).to_contain_text("Absent")
    await expect(admin.get_by_role("button", name="Play")).to_be_visible()
    await expect(admin.get_by_role("heading", name="Share the recording with the class")).to_be_visible()
    await expect(admin.get_by_role("heading", name="Legal hold")).to_be_visible()
    await expect(admin.get_by_label("Seek")).to_be_visible()
    await vietnamese(admin)
    assert errors == []


async def test_teacher_sees_own_sessions_not_another_teachers(server, school, browser):
    own = await seed_archived_session(server, school)
    other = await seed_other_teachers_period(server, school)
    teacher = await open_as(browser, server, school.teacher)
    errors = watch_errors(teacher)
    await teacher.get_by_role("link", name="Hồ sơ buổi học").click()
    rows = teacher.locator("tr.session-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Toán")
    await expect(teacher.locator("table.sessions")).not_to_contain_text("Văn")
    await expect(teacher.get_by_label("Giáo viên")).to_have_count(0)  # no teacher filter for a teacher
    # Her own period opens; the other teacher's answers "not found", as if it did not exist.
    await rows.first.get_by_role("link").click()
    await expect(teacher.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    await expect(teacher.get_by_role("heading", name="Lưu giữ theo yêu cầu pháp lý")).to_have_count(0)  # admins'
    await go(teacher, f"#/records/{other.session_id}")
    await expect(teacher.locator("#banner")).to_have_text("Không tìm thấy buổi học, hoặc bạn không có quyền xem.")
    await expect(teacher.get_by_role("heading", name="Văn · 11B2")).to_have_count(0)
    await go(teacher, f"#/records/{own.session_id}")
    await expect(teacher.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    assert errors == []


async def test_teacher_shares_the_recording_and_a_student_plays_it(server, school, lesson, browser):
    archived = await seed_archived_session(server, school, lesson)
    teacher = await open_as(browser, server, school.teacher)
    await go(teacher, f"#/records/{archived.session_id}")
    await teacher.get_by_label("Số ngày hiệu lực (1–90)").fill("3")
    await teacher.get_by_role("button", name="Tạo liên kết").click()
    link_field = teacher.get_by_label("Liên kết chia sẻ")
    link = await link_field.input_value()
    assert link.startswith(f"{server.base_url}/#/shared/") and len(link) > len(server.base_url) + 30
    await teacher.get_by_role("button", name="Sao chép").click()
    await expect(teacher.locator(".share-created")).to_contain_text("Đã sao chép.")
    await expect(teacher.locator("table.shares tbody tr")).to_have_count(1)
    await expect(teacher.locator("table.shares tbody tr")).to_contain_text("Đang hiệu lực")

    # A student of the class opens the link (logging in on the way) and plays the lesson.
    student = await login_at(browser, server, archived.present, "#" + link.split("#", 1)[1])
    errors = watch_errors(student)
    await expect(student.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    await expect(student.locator("[data-screen=shared]")).to_contain_text("Liên kết có hiệu lực đến")
    await student.get_by_role("button", name="Phát").click()
    await student.wait_for_function(CAMERA_NEAR, arg=[1.0, 0.8], timeout=15_000)
    await student.get_by_label("Tua đến").fill("4")
    await student.wait_for_function(CAMERA_NEAR, arg=[4.3, 0.4], timeout=10_000)
    await expect(student.locator('[data-player] video[data-source="screen"]')).to_be_visible()
    await screenshot(student, SCREENSHOTS / "archive-shared-vi.png")
    await english(student, SCREENSHOTS / "archive-shared-en.png")
    await expect(
        student.get_by_role("button", name="Play").or_(student.get_by_role("button", name="Pause"))
    ).to_be_visible()
    await vietnamese(student)

    # The teacher revokes it, after a question in the page (Cancel keeps the link): the student's next visit
    # is refused.
    row = teacher.locator("table.shares tbody tr")
    await row.get_by_role("button", name="Thu hồi").click()
    await expect(row.get_by_role("alertdialog")).to_contain_text("Thu hồi liên kết này?")
    await row.get_by_role("button", name="Hủy").click()
    await expect(row).to_contain_text("Đang hiệu lực")
    await row.get_by_role("button", name="Thu hồi").click()
    await row.locator("[data-share-action=confirm-revoke]").click()
    await expect(teacher.locator("table.shares tbody tr")).to_contain_text("Đã thu hồi")
    await student.reload()
    await expect(student.get_by_role("heading", level=1)).to_have_text("Liên kết đã hết hạn")
    assert errors == []


async def test_an_expired_share_link_says_so(server, school, lesson, browser):
    archived = await seed_archived_session(server, school, lesson)
    teacher = await server.logged_in(school.teacher)
    share = await teacher.json("POST", f"/sessions/{archived.session_id}/shares", expect=201, json={"days": 1})
    async with server.db() as db:
        await db.execute(
            update(RecordingShare)
            .where(RecordingShare.id == share["share_id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        await db.commit()
    student = await login_at(browser, server, archived.present, f"#/shared/{share['token']}")
    await expect(student.get_by_role("heading", level=1)).to_have_text("Liên kết đã hết hạn")
    await expect(student.locator("[data-screen=shared-error]")).to_contain_text("Hãy xin giáo viên một liên kết mới.")
    await expect(student.locator("[data-player]")).to_have_count(0)
    await english(student)
    await expect(student.get_by_role("heading", level=1)).to_have_text("The link has expired")
    # Someone outside the class gets "cannot be opened", not the expiry (nothing about the link is told).
    outsider = await login_at(browser, server, school.other_student, f"#/shared/{share['token']}")
    await expect(outsider.get_by_role("heading", level=1)).to_have_text("Không mở được liên kết")


@pytest.mark.parametrize("device", ["iPhone 13"])
async def test_the_session_page_on_a_phone(server, school, lesson, browser, device):
    archived = await seed_archived_session(server, school, lesson)
    admin = await login_at(browser, server, school.admin, f"#/records/{archived.session_id}", device=device)
    errors = watch_errors(admin)
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    await expect(admin.locator("svg.chart g.bar-row")).to_have_count(3)
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW), await admin.evaluate(
        "() => [document.scrollingElement.scrollWidth, innerWidth]"
    )
    # The controls fit and work by touch.
    await admin.get_by_role("button", name="Phát").tap()
    await admin.wait_for_function(CAMERA_NEAR, arg=[1.0, 0.8], timeout=15_000)
    shot = device.replace(" ", "").lower()
    await screenshot(admin, SCREENSHOTS / f"archive-session-{shot}-vi.png")
    await english(admin, SCREENSHOTS / f"archive-session-{shot}-en.png")
    await expect(admin.get_by_role("heading", name="Attendance", exact=True)).to_be_visible()
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW)
    await vietnamese(admin)
    # The list of sessions, the access log and the retention periods on the phone too.
    await go(admin, "#/admin/sessions")
    await expect(admin.locator("tr.session-row")).to_have_count(1)
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW)
    await go(admin, "#/admin/audit")
    await expect(admin.locator("table.audit tbody tr").first).to_be_visible()
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW)
    await go(admin, "#/admin/retention")
    await expect(admin.get_by_label("Bản ghi hình")).to_have_value("365")
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW), await admin.evaluate(
        "() => [document.scrollingElement.scrollWidth, innerWidth]"
    )
    assert errors == []


async def test_admin_audit_log_retention_and_legal_hold(server, school, browser):
    archived = await seed_archived_session(server, school)
    async with server.db() as db:  # enough old entries for two pages
        db.add_all(
            [
                AuditEntry(
                    actor_id=school.teacher.id,
                    action="records_viewed",
                    target=f"session:{archived.session_id}",
                    address="203.0.113.7",
                    at=utcnow() - timedelta(hours=1, minutes=i),
                )
                for i in reversed(range(60))
            ]
        )
        await db.commit()
    admin = await open_as(browser, server, school.admin)
    errors = watch_errors(admin)

    # The audit log: filter by action, then page with "load more".
    await go(admin, "#/admin/audit")
    await admin.get_by_label("Hành động").select_option(label="Xem hồ sơ buổi học")
    await admin.get_by_label("Mã tài khoản (ID)").fill(str(school.teacher.id))
    await admin.get_by_role("button", name="Tìm").click()
    entries = admin.locator("table.audit tbody tr")
    await expect(entries).to_have_count(50)
    await expect(entries.first).to_contain_text("Nguyễn Thị Hà")
    await expect(entries.first).to_contain_text("203.0.113.7")
    await expect(entries.first).to_contain_text(f"session:{archived.session_id}")
    await screenshot(admin, SCREENSHOTS / "archive-audit-vi.png")
    await admin.get_by_role("button", name="Xem thêm").click()
    await expect(entries).to_have_count(60)
    await expect(admin.get_by_role("button", name="Xem thêm")).to_be_hidden()
    await english(admin, SCREENSHOTS / "archive-audit-en.png")
    await expect(admin.get_by_role("heading", name="Access log")).to_be_visible()
    await vietnamese(admin)

    # Retention: defaults shown, a change saved and kept, a run now with its report.
    await admin.get_by_role("navigation", name="Quản trị").get_by_role("link", name="Thời hạn lưu trữ").click()
    keep = admin.get_by_label("Bản ghi hình")
    await expect(keep).to_have_value("365")
    await expect(admin.locator('tr[data-kind="attendance"]')).to_contain_text("1825 ngày")
    await keep.fill("400")
    await admin.get_by_role("button", name="Lưu thời hạn").click()
    await expect(admin.get_by_role("status").filter(has_text="Đã lưu thời hạn lưu trữ.")).to_be_visible()
    await admin.reload()
    await expect(admin.get_by_label("Bản ghi hình")).to_have_value("400")
    await admin.get_by_role("button", name="Chạy xóa ngay").click()
    await expect(admin.get_by_role("heading", name="Kết quả lần chạy")).to_be_visible()
    await expect(admin.locator(".run-report")).to_contain_text("Buổi học đang lưu giữ pháp lý")
    await screenshot(admin, SCREENSHOTS / "archive-retention-vi.png")
    await english(admin, SCREENSHOTS / "archive-retention-en.png")
    await expect(admin.get_by_role("heading", name="Retention periods")).to_be_visible()
    await vietnamese(admin)

    # A legal hold on the session, with its reason; the list shows the badge.
    await go(admin, f"#/records/{archived.session_id}")
    await admin.get_by_label("Lưu giữ buổi học này").check()
    await admin.get_by_label("Lý do lưu giữ").fill("Phụ huynh khiếu nại, chờ xác minh")
    await admin.get_by_role("button", name="Lưu", exact=True).click()
    await expect(admin.locator(".hold-form").locator("xpath=..")).to_contain_text(
        "Đang lưu giữ: Phụ huynh khiếu nại, chờ xác minh"
    )
    await go(admin, "#/admin/sessions")
    await expect(admin.locator("tr.session-row").first).to_contain_text("Đang lưu giữ")
    assert errors == []


async def test_session_list_filters_by_teacher_and_subject_and_pages(server, school, browser):
    for days_ago in range(1, 22):  # 21 Toán periods of 10A1, one a day
        await seed_archived_session(server, school, days_ago=days_ago)
    await seed_other_teachers_period(server, school)
    admin = await open_as(browser, server, school.admin)
    errors = watch_errors(admin)
    await go(admin, "#/admin/sessions")
    rows = admin.locator("tr.session-row")
    pager = admin.get_by_role("navigation", name="Phân trang")
    await expect(rows).to_have_count(20)
    await expect(pager).to_contain_text("1–20 trong 22 buổi học")

    await admin.get_by_label("Giáo viên").select_option(label="Lê Văn Bình")
    await admin.get_by_role("button", name="Tìm").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Văn")
    await expect(rows.first).to_contain_text("11B2")

    await admin.get_by_role("button", name="Xóa bộ lọc").click()
    await expect(pager).to_contain_text("1–20 trong 22 buổi học")
    await expect(admin.get_by_label("Giáo viên")).to_have_value("")
    await admin.get_by_label("Môn học").fill("toán")
    await admin.get_by_role("button", name="Tìm").click()
    await expect(pager).to_contain_text("1–20 trong 21 buổi học")
    await expect(pager.get_by_role("button", name="Trang trước")).to_be_disabled()
    await pager.get_by_role("button", name="Trang sau").click()
    await expect(rows).to_have_count(1)
    await expect(pager).to_contain_text("21–21 trong 21 buổi học")
    await expect(pager.get_by_role("button", name="Trang sau")).to_be_disabled()
    # The oldest comes last; back in the browser returns to the first page, filters kept.
    await admin.go_back()
    await expect(rows).to_have_count(20)
    await expect(admin.get_by_label("Môn học")).to_have_value("toán")
    assert errors == []


async def test_teacher_makes_the_lesson_video_from_the_session_page(server, school, lesson, browser):
    archived = await seed_archived_session(server, school, lesson)
    teacher = await open_as(browser, server, school.teacher)
    errors = watch_errors(teacher)
    await go(teacher, f"#/records/{archived.session_id}")
    await expect(teacher.get_by_role("heading", name="Video bài giảng")).to_be_visible()
    download = teacher.get_by_role("link", name="Tải video bài giảng (MP4)")
    await expect(download).to_be_hidden()
    await teacher.get_by_role("button", name="Tạo video bài giảng").click()
    # Rendering runs offline at low priority: the page follows its progress until the file is ready.
    await expect(download).to_be_visible(timeout=120_000)
    await expect(teacher.get_by_text("Video bài giảng đã sẵn sàng.")).to_be_visible()
    answer = await teacher.request.get(server.base_url + await download.get_attribute("href"))
    body = await answer.body()
    assert answer.status == 200 and body[4:8] == b"ftyp" and len(body) > 10_000  # an MP4 file
    assert errors == []


# -- the class attendance summary -------------------------------------------------------------------------
SUMMARY_ROWS = "table.class-attendance tbody tr"


def summary_cell(page, user, field: str):
    return page.locator(f'table.class-attendance tr[data-user="{user.id}"] td[data-field="{field}"]')


async def test_admin_reads_a_class_attendance_summary_and_downloads_it(server, school, browser):
    """Two Toán periods of 10A1 (3 days ago, yesterday). Ánh came to both; the first period's Bảo was late
    to it and, still in the class, missed the second (50 %); each period's Chi missed what she was in."""
    earlier = await seed_archived_session(server, school, days_ago=3)
    later = await seed_archived_session(server, school, days_ago=1)
    class_id = school.school_class.id
    admin = await open_as(browser, server, school.admin)
    errors = watch_errors(admin)

    # The session list: the summary link appears once a class is chosen, with the list's dates.
    await go(admin, "#/admin/sessions")
    await expect(admin.locator("tr.session-row")).to_have_count(2)
    summary_link = admin.get_by_role("link", name="Tổng hợp điểm danh lớp này")
    await expect(summary_link).to_be_hidden()
    await admin.get_by_label("Lớp").select_option(label=CLASS_10A1)
    await expect(summary_link).to_have_attribute("href", f"#/records/class/{class_id}")  # no dates: the default
    yesterday = later.day.isoformat()
    await admin.get_by_label("Từ ngày").fill(yesterday)
    await admin.get_by_label("Đến ngày").fill(yesterday)
    await admin.get_by_role("button", name="Tìm").click()
    await expect(admin.locator("tr.session-row")).to_have_count(1)
    await expect(summary_link).to_have_attribute("href", f"#/records/class/{class_id}?from={yesterday}&to={yesterday}")
    await summary_link.click()

    # The summary over yesterday alone; then over both days (a new address: "back" returns to yesterday).
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Tổng hợp điểm danh lớp")
    await expect(admin.locator(".summary-what")).to_contain_text("10A1 (2026-2027)")
    counted = admin.locator("table.counted-sessions tbody tr")
    await expect(counted).to_have_count(1)
    await expect(admin.get_by_text("Số buổi học được tính: 1")).to_be_visible()
    await expect(admin.get_by_label("Từ ngày")).to_have_value(yesterday)
    await admin.get_by_label("Từ ngày").fill(earlier.day.isoformat())
    await admin.get_by_role("button", name="Xem", exact=True).click()
    await expect(counted).to_have_count(2)
    await expect(admin.get_by_text("Số buổi học được tính: 2")).to_be_visible()
    assert admin.url.endswith(f"#/records/class/{class_id}?from={earlier.day}&to={yesterday}")
    await admin.go_back()
    await expect(counted).to_have_count(1)
    await expect(admin.get_by_label("Từ ngày")).to_have_value(yesterday)
    await admin.go_forward()
    await expect(counted).to_have_count(2)
    await expect(admin.get_by_label("Từ ngày")).to_have_value(earlier.day.isoformat())

    # Per student, as a class register orders them (by given name): Ánh 2 of 2 (100 %); the first Bảo
    # late, then absent: 50 %, marked.
    await expect(admin.locator(SUMMARY_ROWS)).to_have_count(5)
    names = await admin.locator(f"{SUMMARY_ROWS} th").all_inner_texts()
    assert names == ["Phạm Ngọc Ánh", "Trần Gia Bảo", "Trần Gia Bảo", "Lê Thị Chi", "Lê Thị Chi"]
    anh = school.student
    for field, value in (("sessions", "2"), ("attended", "2"), ("late", "0"), ("absent", "0")):
        await expect(summary_cell(admin, anh, field)).to_have_text(value)
    await expect(summary_cell(admin, anh, "attendance_rate")).to_have_text(re.compile(r"^100\s?%$"))
    await expect(admin.locator(f'tr[data-user="{anh.id}"]')).to_have_attribute("data-below", "false")
    bao = earlier.late
    for field, value in (("sessions", "2"), ("attended", "1"), ("late", "1"), ("absent", "1")):
        await expect(summary_cell(admin, bao, field)).to_have_text(value)
    await expect(summary_cell(admin, bao, "attendance_rate")).to_contain_text(re.compile(r"50\s?%"))
    await expect(summary_cell(admin, bao, "attendance_rate").locator(".badge")).to_have_text("Dưới 80%")
    await expect(admin.locator(f'tr[data-user="{bao.id}"]')).to_have_attribute("data-below", "true")
    await expect(summary_cell(admin, earlier.absent, "attendance_rate")).to_contain_text("Dưới 80%")  # 0 of 2
    # The sessions counted, oldest first.
    await expect(counted.first).to_have_attribute("data-session", str(earlier.session_id))
    for row in (counted.first, counted.last):
        await expect(row).to_contain_text("Toán")
        await expect(row).to_contain_text("Nguyễn Thị Hà")
    await screenshot(admin, SCREENSHOTS / "archive-class-summary-vi.png", full_page=True)
    await english(admin, SCREENSHOTS / "archive-class-summary-en.png", full_page=True)
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Class attendance summary")
    await expect(summary_cell(admin, bao, "attendance_rate").locator(".badge")).to_have_text("Below 80%")
    await expect(admin.get_by_role("button", name="Download (CSV)")).to_be_visible()
    await vietnamese(admin)

    # The CSV, made in the browser: UTF-8 with a BOM, Ánh's row; formulas neutralised.
    async with admin.expect_download() as waiting:
        await admin.get_by_role("button", name="Tải bảng (CSV)").click()
    download = await waiting.value
    assert download.suggested_filename == f"diem-danh-10A1-{earlier.day}-{yesterday}.csv"
    body = Path(await download.path()).read_bytes()
    assert body[:3] == b"\xef\xbb\xbf"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["STT", "Họ và tên", "Số định danh"] and len(rows) == 6
    anh_row = next(row for row in rows if "Phạm Ngọc Ánh" in row)
    assert anh_row[2:8] == [anh.personal_id, "2", "2", "0", "0", "100"], anh_row
    bao_row = next(row for row in rows if bao.personal_id in row)
    assert bao_row[7:9] == ["50", "Có"], bao_row
    cells = await admin.evaluate("""async () => {
      const { csvText } = await import("/static/js/pages/class_summary.js");
      return csvText([["=1+2", "+x", "-y", "@z", "\\tt", "a,b", 'say "hi"', "Ánh", -1, 0]]);
    }""")
    assert cells == '\ufeff\'=1+2,\'+x,\'-y,\'@z,\'\tt,"a,b","say ""hi""",Ánh,-1,0\r\n'

    # The Excel file, from the server: the personal IDs keep their leading zeros (text cells).
    async with admin.expect_download() as waiting:
        await admin.get_by_role("link", name="Tải bảng (Excel)").click()
    download = await waiting.value
    assert download.suggested_filename == f"diem-danh-10A1-{earlier.day}-{yesterday}.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(Path(await download.path()).read_bytes())).active
    anh_cells = next(row for row in sheet.iter_rows(values_only=True) if row[1] == "Phạm Ngọc Ánh")
    assert anh_cells[2] == anh.personal_id and anh.personal_id.startswith("00")
    assert anh_cells[3:5] == (2, 2) and anh_cells[8] == 100

    # A session in the list opens its page.
    await counted.last.get_by_role("link").click()
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    await expect(admin.locator(f'article[data-session="{later.session_id}"]')).to_be_visible()
    assert admin.url.endswith(f"#/records/{later.session_id}")

    # A range the API refuses: the banner says why, in the reader's language; the form stays to fix it.
    await go(admin, f"#/records/class/{class_id}?from=2020-01-01&to={yesterday}")
    await expect(admin.locator("#banner")).to_have_text("Khoảng thời gian quá dài: mỗi lần xem tối đa 400 ngày.")
    await expect(admin.get_by_label("Từ ngày")).to_have_value("2020-01-01")
    await expect(admin.locator(SUMMARY_ROWS)).to_have_count(0)
    await english(admin)
    await expect(admin.locator("#banner")).to_have_text("The date range is too long: at most 400 days at a time.")
    await vietnamese(admin)
    await admin.get_by_label("Từ ngày").fill(yesterday)
    await admin.get_by_label("Đến ngày").fill(earlier.day.isoformat())
    await admin.get_by_role("button", name="Xem", exact=True).click()
    await expect(admin.locator("#banner")).to_have_text("Ngày kết thúc phải sau ngày bắt đầu.")
    assert errors == []


async def test_class_summary_for_the_classes_teacher_not_another(server, school, browser):
    await seed_archived_session(server, school)
    class_id = school.school_class.id
    teacher = await open_as(browser, server, school.teacher)  # teaches 10A1: her periods, the default range
    await teacher.get_by_role("link", name="Hồ sơ buổi học").click()
    await teacher.get_by_label("Lớp").select_option(label=CLASS_10A1)
    await teacher.get_by_role("link", name="Tổng hợp điểm danh lớp này").click()
    await expect(teacher.locator(f'table.class-attendance tr[data-user="{school.student.id}"]')).to_contain_text(
        "Phạm Ngọc Ánh"
    )
    await expect(teacher.locator("table.counted-sessions tbody tr")).to_have_count(1)

    other = await open_as(browser, server, school.other_teacher)  # teaches 11B2 only
    errors = watch_errors(other)
    await go(other, f"#/records/class/{class_id}")
    await expect(other.locator("#banner")).to_have_text("Không tìm thấy lớp, hoặc bạn không dạy lớp này.")
    await expect(other.get_by_role("heading", level=1)).to_have_text("Tổng hợp điểm danh lớp")
    await expect(other.locator("table.class-attendance")).to_have_count(0)
    await expect(other.get_by_text("Phạm Ngọc Ánh")).to_have_count(0)
    await english(other)
    await expect(other.locator("#banner")).to_have_text("Class not found, or you do not teach it.")
    assert errors == []


async def test_class_summary_on_a_phone(server, school, browser):
    earlier = await seed_archived_session(server, school, days_ago=3)
    later = await seed_archived_session(server, school, days_ago=1)
    admin = await login_at(
        browser,
        server,
        school.admin,
        f"#/records/class/{school.school_class.id}?from={earlier.day}&to={later.day}",
        device="iPhone 13",
    )
    errors = watch_errors(admin)
    await expect(admin.locator(SUMMARY_ROWS)).to_have_count(5)
    await expect(admin.locator("table.counted-sessions tbody tr")).to_have_count(2)
    assert await admin.evaluate("() => innerWidth") == 390
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW), await admin.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    # The table scrolls sideways inside its own box, which fits the screen.
    box = admin.locator(".summary-scroll")
    assert await box.evaluate(
        "(el) => el.scrollWidth > el.clientWidth && el.getBoundingClientRect().right <= innerWidth"
    )
    await box.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
    # Scrolled to the last column, the names stay at the box's left edge.
    await admin.wait_for_function("""() => {
      const box = document.querySelector(".summary-scroll");
      const name = box.querySelector("tbody th");
      return box.scrollLeft > 0 && Math.abs(name.getBoundingClientRect().left - box.getBoundingClientRect().left) < 3;
    }""")
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW)
    await english(admin)
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Class attendance summary")
    assert await admin.evaluate(NO_HORIZONTAL_OVERFLOW)
    assert errors == []


async def test_a_period_taught_live_is_in_the_archive_at_once(server, school, browser):
    """No seeding: a real period in the browser (camera, microphone, recording with a pause, chat, a hand,
    a student's screen share, a mute), then the admin finds it among today's records and replays it."""
    await run_period(server, school, browser)
    admin = await open_as(browser, server, school.admin)
    errors = watch_errors(admin)
    await admin.get_by_role("link", name="Quản trị").click()
    rows = admin.locator("tr.session-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Toán")
    await rows.first.get_by_role("link").click()
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")

    # Attendance: Ánh came as soon as the teacher opened the room; the chat and the mute are on record.
    line = admin.locator(f'table.attendance tr[data-user="{school.student.id}"]')
    await expect(line).to_contain_text("Có mặt")
    await expect(admin.locator(".archive-chat")).to_contain_text("Em chào cô ạ")
    await expect(admin.locator(".archive-chat")).to_contain_text("hàm số bậc hai")
    await expect(admin.locator(".moderation-log")).to_contain_text("Phạm Ngọc Ánh")

    # The recording is short (the browser teaches fast: ~1.3 s between "Ghi hình" and the end, with a
    # pause), but it is there: the teacher's camera (a new file after the pause, once its keyframe
    # came), the student's screen share; Chromium decodes every file; the player plays to the end.
    assert await admin.locator('[data-player] video[data-source="camera"]').count() >= 1
    await expect(admin.locator('[data-player] video[data-source="screen"]')).to_have_count(1)
    await admin.wait_for_function(
        """() => [...document.querySelectorAll("[data-player] video")]
      .every((video) => video.videoWidth > 0)""",
        timeout=20_000,
    )
    await admin.get_by_role("button", name="Phát").click()
    try:
        await admin.wait_for_function(
            """() => {
      const player = document.querySelector("[data-player]");
      const end = Number(player.querySelector("input.seek").max);
      return player.dataset.state === "paused" && end > 0.5 && Number(player.dataset.time) >= end - 0.1;
    }""",
            timeout=20_000,
        )
    except PlaywrightTimeoutError:  # say where the player stood (seen twice under load, cause not known yet)
        raise AssertionError(f"the player did not play to the end: {await admin.evaluate(PLAYER_STATE)}") from None
    assert errors == []
