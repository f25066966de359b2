"""The pages around the room, as people use them (issue 15), in a real browser: the periods list follows
the teacher without a reload and says why there is no join button; a taught period is shown as taught;
"Đăng xuất" is not on the login page; banners close; refusals are in Vietnamese; the recordings' tracks and
the attendance chart speak Vietnamese; the attendance table reads on an iPhone 13."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import update

from liveclass.models import Recording
from tests.archive_seed import seed_archived_session
from tests.browser import SCREENSHOTS, needs_chromium, screenshot
from tests.helpers import PASSWORD
from tests.web_walk import go, later_period, log_in, new_page

pytestmark = needs_chromium


async def test_the_login_page_has_no_logout(server, school, browser):
    page = await new_page(browser, server, "iPhone 13")
    await expect(page.get_by_role("button", name="Đăng nhập")).to_be_visible()
    await expect(page.locator("#logout")).to_be_hidden()
    await expect(page.get_by_role("button", name="Đăng xuất")).to_have_count(0)
    await log_in(page, school.student)
    await expect(page.get_by_role("button", name="Đăng xuất")).to_be_visible()
    await page.get_by_role("button", name="Đăng xuất").click()
    await expect(page.get_by_role("button", name="Đăng nhập")).to_be_visible()
    await expect(page.locator("#logout")).to_be_hidden()


async def test_the_periods_list_follows_the_teacher_without_a_reload(server, school, browser):
    later = await later_period(server, school)
    student = await new_page(browser, server, "iPhone 13")
    await log_in(student, school.student)
    now_row = student.locator(f'[data-period="{school.period.id}"]')
    later_row = student.locator(f'[data-period="{later.id}"]')
    # Before: no join button, and the reason in words.
    await expect(now_row).to_contain_text("Giáo viên chưa mở tiết học.")
    await expect(now_row.get_by_role("link", name="Vào lớp")).to_have_count(0)
    starts = await later_row.locator(".period-time").inner_text()
    await expect(later_row).to_contain_text(f"Tiết học chưa bắt đầu — giáo viên sẽ mở lúc {starts.split('–')[0]}")
    await screenshot(student, SCREENSHOTS / "periods-student-waiting-iphone13-vi.png")
    await student.evaluate("() => { window.notReloaded = true; }")

    # The teacher starts the period (from her own page): the student's list shows "Vào lớp" by itself.
    teacher = await new_page(browser, server)
    await log_in(teacher, school.teacher)
    await teacher.locator(f'[data-period="{school.period.id}"]').get_by_role("button", name="Bắt đầu tiết học").click()
    await expect(teacher.locator(".room")).to_be_visible()
    await expect(now_row.get_by_role("link", name="Vào lớp")).to_be_visible(timeout=25_000)
    await expect(now_row).to_contain_text("Đang diễn ra")
    assert await student.evaluate("() => window.notReloaded === true")
    # Screen readers hear it too (a live region that was in the page before).
    await expect(student.locator("#announcer")).to_have_text("Tiết Toán · 10A1 đã bắt đầu.")
    await screenshot(student, SCREENSHOTS / "periods-student-live-iphone13-vi.png")

    # The teacher ends it: the student's join button goes, with the reason; the teacher's list says "taught".
    api = await server.logged_in(school.teacher)
    await api.json("POST", f"/periods/{school.period.id}/end")
    await expect(now_row.get_by_role("link", name="Vào lớp")).to_have_count(0, timeout=25_000)
    await expect(now_row).to_contain_text("Tiết học đã kết thúc lúc")
    assert await student.evaluate("() => window.notReloaded === true")
    await go(teacher, "#/periods", ".period")
    taught = teacher.locator(f'[data-period="{school.period.id}"]')
    await expect(taught).to_contain_text("Đã dạy")
    await expect(taught).to_contain_text("Tiết học đã dạy xong lúc")
    await expect(taught.get_by_role("button", name="Bắt đầu tiết học")).to_have_count(0)
    await expect(taught.get_by_role("button", name="Mở lại tiết học")).to_be_visible()
    # The other period of the day still offers the start.
    await expect(
        teacher.locator(f'[data-period="{later.id}"]').get_by_role("button", name="Bắt đầu tiết học")
    ).to_be_visible()
    await screenshot(teacher, SCREENSHOTS / "periods-teacher-taught-vi.png")
    await teacher.get_by_role("button", name="English").click()
    await expect(taught).to_contain_text("Taught")
    await screenshot(teacher, SCREENSHOTS / "periods-teacher-taught-en.png")


async def test_banners_close_and_refusals_are_in_vietnamese(server, school, browser):
    teacher = await new_page(browser, server)
    await log_in(teacher, school.teacher)
    # A session that does not exist: the records page says so in a banner, which closes.
    await go(teacher, "#/records/99999", "#banner:not([hidden])")
    banner = teacher.locator("#banner")
    await expect(banner).to_be_visible()
    close = banner.get_by_role("button", name="Đóng thông báo")
    await close.focus()
    await teacher.keyboard.press("Enter")
    await expect(banner).to_be_hidden()

    # A refusal with an English message from the server reaches the page in Vietnamese (by its code).
    async with server.db() as db:
        from tests.helpers import add_user

        user = await add_user(db, "teacher", "Giáo Viên Mới", must_change=True)
        await db.commit()
    page = await new_page(browser, server)
    await page.get_by_label("Số định danh cá nhân").fill(user.personal_id)
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.get_by_label("Mật khẩu hiện tại").fill("không-phải-mật-khẩu")
    await page.get_by_label("Mật khẩu mới", exact=True).fill("Trời-thu-Hà-Nội")
    await page.get_by_label("Nhập lại mật khẩu mới").fill("Trời-thu-Hà-Nội")
    await page.get_by_role("button", name="Lưu mật khẩu").click()
    await expect(page.get_by_role("alert")).to_have_text("Mật khẩu hiện tại không đúng.")
    # A code the catalogue does not know: the Vietnamese half of a bilingual message, never the English one;
    # an English-only message becomes the general words; in English, the server's own words.
    words = """([code, message]) => import("/static/js/api.js").then((api) => api.errorText(code, message))"""
    assert await page.evaluate(words, ["new_code", "Booked twice / Đã có tiết khác"]) == "Đã có tiết khác"
    assert await page.evaluate(words, ["new_code", "timeout"]) == "Đã có lỗi xảy ra. Vui lòng thử lại."
    await page.get_by_role("button", name="English").click()
    assert await page.evaluate(words, ["new_code", "Booked twice / Đã có tiết khác"]) == "Booked twice"
    assert await page.evaluate(words, ["new_code", "timeout"]) == "timeout"
    assert await page.evaluate(words, ["wrong_current_password", "x"]) == "The current password is wrong."


async def test_the_session_records_in_vietnamese_and_on_an_iphone(server, school, lesson, browser):
    archived = await seed_archived_session(server, school, lesson)
    async with server.db() as db:  # the real recorder's labels: "role: name" (signaling/recording.py)
        await db.execute(
            update(Recording).where(Recording.session_id == archived.session_id).values(label="teacher: Nguyễn Thị Hà")
        )
        await db.commit()
    admin = await new_page(browser, server, "iPhone 13")
    await log_in(admin, school.admin)
    await go(admin, f"#/records/{archived.session_id}", "[data-player]")
    tracks = admin.locator(".player-tracks")
    await admin.locator(".player-details summary").click()
    await expect(tracks).to_contain_text("Giáo viên: Nguyễn Thị Hà")
    await expect(tracks).not_to_contain_text("teacher:")
    # The chart's legend names the denied entrant's status (Dũng was turned away from the lobby).
    legend = admin.locator(".chart-figure .legend")
    for word in ("Có mặt", "Đi muộn", "Vắng", "Bị từ chối"):
        await expect(legend).to_contain_text(word)

    # The attendance table on a 390 px screen: the page does not scroll sideways, the table does, in its
    # box, and the names stay in view while it scrolls.
    box = admin.locator(".table-scroll", has=admin.locator("table.attendance"))
    await box.scroll_into_view_if_needed()
    assert await admin.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    assert await box.evaluate("(b) => b.scrollWidth > b.clientWidth")
    await screenshot(admin, SCREENSHOTS / "archive-attendance-iphone13-vi.png")
    name = box.locator("tbody th").first
    before = await name.bounding_box()
    assert await box.evaluate("(b) => { b.scrollLeft = 300; return b.scrollLeft; }") > 100
    await admin.wait_for_timeout(100)  # one frame for the sticky column to be placed
    after = await name.bounding_box()
    assert abs(after["x"] - before["x"]) < 1, (before, after)
    status = box.locator("tbody td").first  # the status column slides under the names, readable at 14 px+
    assert await status.evaluate("(c) => parseFloat(getComputedStyle(c).fontSize)") >= 14
