"""A quick poll in a real browser: the teacher asks, a student on a phone answers with one tap, the teacher
sees the count and reveals, the student sees whether they were right (Debian's chromium through Playwright)."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import select

from liveclass.models import SessionEvent
from tests.browser import SCREENSHOTS, needs_chromium, screenshot
from tests.test_web_client import open_as

pytestmark = needs_chromium


async def test_a_quick_poll_teacher_and_student_on_a_phone(server, school, browser):
    teacher = await open_as(browser, server, school.teacher)
    await teacher.set_viewport_size({"width": 1280, "height": 860})
    await teacher.get_by_role("button", name="Bắt đầu tiết học").click()
    await expect(teacher.locator(".room")).to_be_visible()
    student = await open_as(browser, server, school.student, device="iPhone 13")
    await student.get_by_role("link", name="Vào lớp").click()
    await expect(student.locator("[data-screen=lobby]")).to_be_visible()
    await teacher.get_by_role("tab", name="Người tham gia").click()
    await teacher.locator(".lobby-list li", has_text="Phạm Ngọc Ánh").get_by_role("button", name="Cho vào").click()
    await expect(student.locator(".room")).to_be_visible()

    # The teacher: "Câu hỏi nhanh" → A/B/C/D, correct answer B, start. Nothing to type.
    await teacher.get_by_role("button", name="Câu hỏi nhanh").click()
    form = teacher.locator("[data-poll=form]")
    await expect(form).to_be_visible()
    await form.locator('[data-correct="B"]').click()
    await expect(form.locator('[data-correct="B"]')).to_have_attribute("aria-pressed", "true")
    await screenshot(teacher, SCREENSHOTS / "poll-teacher-form-vi.png")
    await form.get_by_role("button", name="Bắt đầu").click()
    panel = teacher.locator(".poll[data-state=open]")
    await expect(panel).to_contain_text("Đã trả lời: 0/1")
    await expect(panel.locator(".poll-waiting")).to_contain_text("Phạm Ngọc Ánh")
    await expect(teacher.get_by_role("button", name="Câu hỏi nhanh")).to_be_disabled()  # one at a time

    # The student on a phone: one tap.
    choice = student.locator('.poll-choice[data-choice="B"]')
    await expect(choice).to_be_visible()
    box = await choice.bounding_box()
    assert box["height"] >= 60 and box["width"] >= 120  # a thumb-sized target on a 390 px screen
    await expect(student.locator(".poll")).not_to_contain_text("✓")  # no spoiler before the reveal
    await choice.tap()
    await expect(student.locator(".poll-mine")).to_have_text("Bạn đã chọn: B")
    await expect(choice).to_have_attribute("aria-pressed", "true")

    # The teacher sees the count at once, and nobody waiting.
    await expect(panel).to_contain_text("Đã trả lời: 1/1")
    await expect(panel.locator('[data-choice="B"] .poll-count')).to_have_attribute("data-count", "1")
    await expect(panel.locator(".poll-waiting")).to_have_count(0)
    widths = await panel.locator(".poll-fill").evaluate_all("(els) => els.map((e) => e.getBoundingClientRect().width)")
    bar = await panel.locator(".poll-bar").first.evaluate("(e) => e.getBoundingClientRect().width")
    assert widths[0] == 0 and abs(widths[1] - bar) < 1  # the bars show the shares (A 0 %, B 100 %)
    await screenshot(teacher, SCREENSHOTS / "poll-teacher-vi.png")
    await screenshot(student, SCREENSHOTS / "poll-student-iphone13-vi.png")

    # Close ("Kết thúc"), then reveal with the correct answer.
    await panel.get_by_role("button", name="Kết thúc", exact=True).click()
    closed = teacher.locator(".poll[data-state=closed]")
    await expect(closed).to_contain_text("Đã kết thúc")
    await expect(student.locator(".poll")).to_contain_text("Chờ giáo viên công bố kết quả")
    await closed.get_by_role("button", name="Công bố kết quả và đáp án").click()
    await expect(teacher.locator(".poll")).to_contain_text("Đã công bố")
    result = student.locator(".poll[data-state=revealed]")
    await expect(result.locator(".poll-verdict")).to_have_text("Bạn trả lời đúng!")
    await expect(result).to_contain_text("Đáp án đúng: B")
    await expect(result.locator('[data-choice="B"] .poll-count')).to_have_text("1 · 100%")
    await screenshot(student, SCREENSHOTS / "poll-student-result-iphone13-vi.png")
    await screenshot(teacher, SCREENSHOTS / "poll-teacher-revealed-vi.png")

    async with server.db() as db:
        types = [
            e.type
            for e in (await db.execute(select(SessionEvent).order_by(SessionEvent.id))).scalars()
            if e.type.startswith("poll_")
        ]
    assert types == ["poll_opened", "poll_answered", "poll_closed", "poll_revealed"]
    await teacher.context.close()
    await student.context.close()
