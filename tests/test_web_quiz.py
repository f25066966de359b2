"""Assessment in a real browser (Debian's chromium through Playwright): the teacher's question bank page, then
the quiz at 08:35 of ../shared/SCENARIOS.md — a quick A/B/C/D question and a 3-question quiz from the bank for
"Chương 2: Hàm số bậc hai", two students answering (one on an iPhone 13, one on a laptop), the reveal, each
student's result, and the admin finding the scores in the session's records."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from playwright.async_api import expect
from sqlalchemy import select

from liveclass.models import Enrollment, SessionEvent
from tests.browser import SCREENSHOTS, needs_chromium, screenshot
from tests.test_web_client import back_to_vietnamese, in_english, open_as

pytestmark = needs_chromium

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHAPTER = "Chương 2: Hàm số bậc hai"
Q_VERTEX = "Đỉnh của parabol y = x² − 4x + 3 có hoành độ bằng bao nhiêu?"
Q_MIN = "Giá trị nhỏ nhất của hàm số y = x² − 4x + 3 là bao nhiêu?"
Q_AXIS = "Trục đối xứng của parabol y = x² − 4x + 3 là đường thẳng nào?"
Q_OTHER = "Tập hợp A = {1; 2; 3} có bao nhiêu tập con?"
# The bank's sheet: subject, topic, kind, question, options A–F, correct, tolerance, points, explanation, shared.
QUIZ_ROWS = [
    [
        "Toán",
        CHAPTER,
        "Một đáp án",
        Q_VERTEX,
        "1",
        "2",
        "3",
        "4",
        "",
        "",
        "B",
        "",
        1,
        "Hoành độ đỉnh x = −b/(2a) = 4/2 = 2.",
        "Có",
    ],
    ["Toán", CHAPTER, "Số", Q_MIN, "", "", "", "", "", "", "-1", "", 1, "y(2) = 4 − 8 + 3 = −1.", "Không"],
    [
        "Toán",
        CHAPTER,
        "Trả lời ngắn",
        Q_AXIS,
        "",
        "",
        "",
        "",
        "",
        "",
        "x = 2|x=2",
        "",
        1,
        "Trục đối xứng đi qua đỉnh: x = 2.",
        "Không",
    ],
    [
        "Toán",
        "Chương 1: Mệnh đề và tập hợp",
        "Một đáp án",
        Q_OTHER,
        "3",
        "6",
        "8",
        "9",
        "",
        "",
        "C",
        "",
        1,
        "",
        "Không",
    ],
]


def png(width: int = 40, height: int = 24) -> bytes:
    """A small real PNG (a blue picture) for a question's image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([21, 87, 176]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


async def sheet(page, server, rows) -> bytes:
    """The bank's own template (downloaded as the teacher) with `rows` under its header."""
    response = await page.request.get(f"{server.base_url}/api/v1/questions/template.xlsx")
    assert response.ok, response.status
    book = load_workbook(io.BytesIO(await response.body()))
    questions = book["Câu hỏi"]
    for row in rows:
        questions.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def import_sheet(page, data: bytes, name: str = "cau-hoi.xlsx") -> None:
    await page.locator("[data-bank-action=import] input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": XLSX, "buffer": data}]
    )


def item(page, text: str):
    return page.locator(".bank-item", has_text=text)


async def test_the_question_bank_page(server, school, browser):
    teacher = await open_as(browser, server, school.teacher)
    await teacher.set_viewport_size({"width": 1280, "height": 900})
    errors: list[str] = []
    teacher.on("pageerror", lambda error: errors.append(str(error)))
    await teacher.get_by_role("link", name="Ngân hàng câu hỏi").click()
    bank = teacher.locator("[data-screen=bank]")
    await expect(bank).to_contain_text("Chưa có câu hỏi nào")

    # A question typed in the page: one answer (B), a point, an explanation, an image, shared.
    await bank.get_by_role("button", name="Thêm câu hỏi").click()
    form = teacher.locator(".bank-form")
    await form.get_by_role("button", name="Lưu câu hỏi").click()
    await expect(form.get_by_role("alert")).to_have_text("Hãy nhập môn học.")  # checked in the page, in words
    await form.get_by_label("Môn học").fill("Toán")
    await form.get_by_label("Chương / chủ đề (không bắt buộc)").fill(CHAPTER)
    await expect(form.get_by_role("radio", name="Một đáp án")).to_have_attribute("aria-checked", "true")
    await form.get_by_label("Nội dung câu hỏi").fill("Đỉnh của parabol y = x² − 4x + 3 là điểm nào?")
    for letter, text in zip("ABCD", ["(1; 0)", "(2; −1)", "(3; 0)", "(0; 3)"]):
        await form.get_by_label(f"Lựa chọn {letter}", exact=True).fill(text)
    await form.get_by_label("B là đáp án đúng").check()
    await form.get_by_label("Điểm (không bắt buộc)").fill("1")
    await form.get_by_label("Lời giải thích").fill("x = −b/(2a) = 2, y(2) = −1.")
    await form.locator("input[name=image]").set_input_files(
        files=[{"name": "parabol.png", "mimeType": "image/png", "buffer": png()}]
    )
    await expect(form.locator("img.bank-image")).to_be_visible()
    await form.get_by_label("Chia sẻ với giáo viên cùng môn").check()
    await screenshot(teacher, SCREENSHOTS / "bank-form-vi.png", full_page=True)
    await form.get_by_role("button", name="Lưu câu hỏi").click()
    await expect(teacher.locator("#banner")).to_have_text("Đã thêm câu hỏi.")
    vertex = item(teacher, "Đỉnh của parabol")
    await expect(vertex).to_contain_text("Đã chia sẻ")
    await expect(vertex.locator('[data-option="B"]')).to_contain_text("(2; −1) (Đúng) ✓")
    await expect(vertex.locator(".bank-options .correct")).to_have_count(1)
    await expect(vertex).to_contain_text("1 điểm")
    image = vertex.locator("img.bank-image")
    await expect(image).to_be_visible()
    await teacher.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 40", arg=await image.element_handle()
    )

    # Edited in place.
    await vertex.get_by_role("button", name="Sửa").click()
    editing = teacher.locator(".bank-form[data-editing]")
    await expect(editing.get_by_label("Nội dung câu hỏi")).to_have_value(
        "Đỉnh của parabol y = x² − 4x + 3 là điểm nào?"
    )
    await editing.get_by_label("Nội dung câu hỏi").fill(Q_VERTEX.replace("hoành độ", "tọa độ"))
    await editing.get_by_role("button", name="Lưu câu hỏi").click()
    await expect(teacher.locator("#banner")).to_have_text("Đã lưu câu hỏi.")
    await expect(item(teacher, "có tọa độ bằng bao nhiêu")).to_have_count(1)

    # A number question (a comma decimal is fine) and a true/false one, then the latter deleted, asked first.
    await bank.get_by_role("button", name="Thêm câu hỏi").click()
    await form.get_by_label("Môn học").fill("Toán")
    await form.get_by_label("Chương / chủ đề (không bắt buộc)").fill(CHAPTER)
    await form.get_by_role("radio", name="Số").click()
    await form.get_by_label("Nội dung câu hỏi").fill(Q_MIN)
    await form.get_by_label("Đáp án (số)").fill("-1,0")
    await form.get_by_label("Sai số cho phép (±)").fill("0,5")
    await form.get_by_role("button", name="Lưu câu hỏi").click()
    await expect(item(teacher, Q_MIN)).to_contain_text("Đáp án: -1 (± 0,5)")
    await bank.get_by_role("button", name="Thêm câu hỏi").click()
    await form.get_by_label("Môn học").fill("Toán")
    await form.get_by_role("radio", name="Đúng/Sai").click()
    await form.get_by_label("Nội dung câu hỏi").fill("Parabol y = x² luôn nằm phía trên trục hoành.")
    await form.get_by_label("Sai", exact=True).check()
    await form.get_by_role("button", name="Lưu câu hỏi").click()
    truefalse = item(teacher, "luôn nằm phía trên")
    await expect(truefalse).to_contain_text("Đáp án: Sai")
    await truefalse.get_by_role("button", name="Xóa").click()
    confirm = truefalse.locator(".bank-confirm")
    await expect(confirm).to_contain_text("Xóa câu hỏi này?")
    await confirm.get_by_role("button", name="Xóa").click()
    await expect(truefalse).to_have_count(0)
    await expect(teacher.locator("#banner")).to_have_text("Đã xóa câu hỏi.")
    await expect(teacher.locator(".bank-count")).to_have_text("2 câu hỏi")

    # An import with bad rows: nothing created, every bad row listed with its line and the reason in Vietnamese.
    bad = [
        QUIZ_ROWS[2],
        ["Toán", CHAPTER, "Không rõ", "Câu hỏi loại lạ", *[""] * 6, "", "", "", "", ""],
        QUIZ_ROWS[3],
        ["Toán", CHAPTER, "Một đáp án", "Chọn G?", "1", "2", "", "", "", "", "G", "", 1, "", ""],
    ]
    await import_sheet(teacher, await sheet(teacher, server, bad), "sai.xlsx")
    report = teacher.locator(".bank-import")
    await expect(report).to_contain_text("Chưa nhập câu nào từ sai.xlsx")
    await expect(report.locator("tr[data-line]")).to_have_count(2)
    await expect(report.locator('tr[data-line="3"]')).to_contain_text("Loại")
    await expect(report.locator('tr[data-line="5"]')).to_be_visible()
    assert "Unknown" not in await report.inner_text()  # the reasons in the page's language
    await screenshot(teacher, SCREENSHOTS / "bank-import-errors-vi.png", full_page=True)
    await expect(teacher.locator(".bank-count")).to_have_text("2 câu hỏi")
    await import_sheet(teacher, await sheet(teacher, server, [QUIZ_ROWS[2], QUIZ_ROWS[3]]), "dung.xlsx")
    await expect(teacher.locator(".bank-import")).to_contain_text("Đã nhập 2 câu hỏi từ dung.xlsx")
    await expect(teacher.locator(".bank-count")).to_have_text("4 câu hỏi")

    # Filters: by topic (the address keeps them) and by words.
    await bank.get_by_label("Môn học").select_option("Toán")
    await teacher.locator("[data-screen=bank] select[name=topic]").select_option(CHAPTER)
    await expect(teacher.locator(".bank-count")).to_have_text("3 câu hỏi")
    assert "topic=" in teacher.url
    await teacher.get_by_label("Tìm kiếm").fill("trục đối xứng")
    await teacher.get_by_role("button", name="Lọc").click()
    await expect(teacher.locator(".bank-count")).to_have_text("1 câu hỏi")
    await teacher.get_by_label("Tìm kiếm").fill("")
    await teacher.get_by_role("button", name="Lọc").click()
    await expect(teacher.locator(".bank-count")).to_have_text("3 câu hỏi")
    await screenshot(teacher, SCREENSHOTS / "bank-vi.png", full_page=True)
    await in_english(teacher, SCREENSHOTS / "bank-en.png")
    await expect(teacher.get_by_role("heading", name="Question bank")).to_be_visible()
    await back_to_vietnamese(teacher)

    # Export (of what the filters show) as XLSX, read back.
    async with teacher.expect_download() as info:
        await teacher.get_by_role("link", name="Xuất ra Excel").click()
    download = await info.value
    assert download.suggested_filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO((await download.path()).read_bytes()))
    texts = {row[3] for row in book["Câu hỏi"].iter_rows(min_row=2, values_only=True)}
    assert {Q_MIN, Q_AXIS} <= texts and Q_OTHER not in texts
    async with teacher.expect_download() as info:
        await teacher.get_by_role("link", name="Tải file mẫu").click()
    template = load_workbook(io.BytesIO((await (await info.value).path()).read_bytes()))
    assert "Câu hỏi" in template.sheetnames

    # On a phone.
    phone = await open_as(browser, server, school.teacher, device="iPhone 13")
    await phone.get_by_role("link", name="Ngân hàng câu hỏi").click()
    await expect(phone.locator(".bank-count")).to_have_text("4 câu hỏi")
    overflow = await phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow  # nothing wider than the screen
    await phone.get_by_role("button", name="Thêm câu hỏi").click()
    await expect(phone.locator(".bank-form")).to_be_visible()
    await screenshot(phone, SCREENSHOTS / "bank-iphone13-vi.png")
    assert not errors, errors
    await teacher.context.close()
    await phone.context.close()


async def enter_room(browser, server, user, device=None):
    student = await open_as(browser, server, user, device=device)
    await student.get_by_role("link", name="Vào lớp").click()
    await expect(student.locator("[data-screen=lobby]")).to_be_visible()
    return student


async def test_a_quick_question_and_a_quiz_from_the_bank(server, school, browser):
    """The issue's "Done when": a quick poll and a 3-question quiz from the bank, two students (phone and
    desktop), the reveal, each student's result, and the scores in the admin's records."""
    async with server.db() as db:  # Khôi joins 10A1 for this period
        db.add(Enrollment(class_id=school.school_class.id, student_id=school.other_student.id))
        await db.commit()
    teacher = await open_as(browser, server, school.teacher)
    await teacher.set_viewport_size({"width": 1280, "height": 900})
    errors: list[str] = []
    teacher.on("pageerror", lambda error: errors.append(str(error)))

    # Before the period: Cô Hà imports her questions for Chương 2 (and one of Chương 1) into the bank.
    await teacher.get_by_role("link", name="Ngân hàng câu hỏi").click()
    await import_sheet(teacher, await sheet(teacher, server, QUIZ_ROWS))
    await expect(teacher.locator(".bank-import")).to_contain_text("Đã nhập 4 câu hỏi")
    await teacher.locator(".brand").click()
    await teacher.get_by_role("button", name="Bắt đầu tiết học").click()
    await expect(teacher.locator(".room")).to_be_visible()

    anh = await enter_room(browser, server, school.student, device="iPhone 13")  # on her phone
    khoi = await enter_room(browser, server, school.other_student)  # on a laptop
    await khoi.set_viewport_size({"width": 1280, "height": 860})
    for page in (anh, khoi):
        page.on("pageerror", lambda error: errors.append(str(error)))
    await teacher.get_by_role("tab", name="Người tham gia").click()
    await expect(teacher.locator(".lobby-list li")).to_have_count(2)
    await teacher.get_by_role("button", name="Cho tất cả vào").click()
    await expect(anh.locator(".room")).to_be_visible()
    await expect(khoi.locator(".room")).to_be_visible()

    # 08:35, a quick A/B/C/D question, B correct; still as it was.
    await teacher.get_by_role("button", name="Câu hỏi nhanh").click()
    form = teacher.locator("[data-poll=form]")
    await form.locator('[data-correct="B"]').click()
    await form.get_by_role("button", name="Bắt đầu").click()
    quick = teacher.locator(".poll[data-state=open]")
    await expect(quick).to_contain_text("Đã trả lời: 0/2")
    await expect(teacher.get_by_role("button", name="Từ ngân hàng câu hỏi")).to_be_disabled()  # one at a time
    await anh.locator('.poll-choice[data-choice="B"]').tap()
    await khoi.locator('.poll-choice[data-choice="C"]').click()
    await expect(anh.locator(".poll-mine")).to_have_text("Bạn đã chọn: B")
    await expect(quick).to_contain_text("Đã trả lời: 2/2")
    await quick.get_by_role("button", name="Công bố kết quả và đáp án").click()
    await expect(anh.locator(".poll[data-state=revealed] .poll-verdict")).to_have_text("Bạn trả lời đúng!")
    await expect(khoi.locator(".poll[data-state=revealed] .poll-verdict")).to_have_text("Bạn trả lời chưa đúng.")

    # Then a quiz from the bank: Chương 2, three questions ticked, 10 minutes for the whole quiz, named.
    await teacher.get_by_role("button", name="Từ ngân hàng câu hỏi").click()
    picker = teacher.locator("[data-poll=bank]")
    await expect(picker.locator("select[name=quiz-subject]")).to_have_value("Toán")
    await expect(picker.locator(".quiz-pick-list li")).to_have_count(4)
    await picker.locator("select[name=quiz-topic]").select_option(CHAPTER)
    await expect(picker.locator(".quiz-pick-list li")).to_have_count(3)
    for text in (Q_VERTEX, Q_MIN, Q_AXIS):
        await picker.get_by_role("checkbox", name=text).check()
    await expect(picker.locator(".quiz-chosen")).to_have_text("Bài kiểm tra gồm 3 câu.")
    await picker.get_by_label("Cả bài:").check()
    await picker.get_by_label("phút").fill("10")
    await expect(picker.get_by_label("Cho phép đổi câu trả lời đến khi kết thúc")).to_be_checked()
    await screenshot(teacher, SCREENSHOTS / "quiz-teacher-picker-vi.png")
    await picker.locator("[data-poll-action=launch]").click()
    quiz = teacher.locator(".poll.quiz[data-state=open]")
    await expect(quiz.locator("h2")).to_contain_text(CHAPTER)
    await expect(quiz.locator(".poll-countdown")).to_contain_text("Còn lại 9:")
    await expect(quiz).to_contain_text("Đã trả lời: 0/2")
    await expect(quiz.locator(".poll-waiting")).to_contain_text("Phạm Ngọc Ánh")

    # Ánh on her phone: one tap for the choice, a number and a text typed and sent; all right.
    mine = anh.locator(".poll.quiz[data-state=open]")
    await expect(mine.locator(".quiz-question")).to_have_count(3)
    choice = mine.locator('[data-question="0"] .quiz-choice[data-choice="B"]')
    box = await choice.bounding_box()
    assert box["height"] >= 56 and box["width"] >= 300  # a whole-width, thumb-sized target on a 390 px screen
    await expect(mine).not_to_contain_text("Hoành độ đỉnh x = −b/(2a)")  # no explanation before the reveal
    await choice.tap()
    await expect(mine.locator('[data-question="0"] .quiz-sent')).to_have_text("Đã gửi: B")
    await mine.locator('[data-question="1"] input').fill("-1")
    await mine.locator('[data-question="1"]').get_by_role("button", name="Gửi").tap()
    await expect(mine.locator('[data-question="1"] .quiz-sent')).to_have_text("Đã gửi: -1")
    await screenshot(anh, SCREENSHOTS / "quiz-student-iphone13-vi.png")
    await mine.locator('[data-question="2"] input').fill("x = 2")
    await mine.locator('[data-question="2"]').get_by_role("button", name="Gửi").tap()
    await expect(mine.locator('[data-question="2"] .quiz-sent')).to_have_text("Đã gửi: x = 2")
    overflow = await anh.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow

    # Khôi on the laptop: A (wrong), "-1,0" (right: a comma decimal), then a not-a-number refused in words.
    his = khoi.locator(".poll.quiz[data-state=open]")
    await his.locator('[data-question="0"] .quiz-choice[data-choice="A"]').click()
    await expect(his.locator('[data-question="0"] .quiz-sent')).to_have_text("Đã gửi: A")
    await his.locator('[data-question="1"] input').fill("âm một")
    await his.locator('[data-question="1"]').get_by_role("button", name="Gửi").click()
    await expect(khoi.locator("#banner")).to_have_text("Hãy nhập một số (ví dụ 3,5).")
    await his.locator('[data-question="1"] input').fill("-1,0")
    await his.locator('[data-question="1"] input').press("Enter")
    await expect(his.locator('[data-question="1"] .quiz-sent')).to_have_text("Đã gửi: -1,0")
    await screenshot(khoi, SCREENSHOTS / "quiz-student-desktop-vi.png", full_page=True)

    # The teacher: bars and typed answers fill, who has not finished, each student's score so far.
    await expect(quiz).to_contain_text("Đã trả lời: 2/2 · Làm hết bài: 1")
    await expect(quiz.locator('[data-question="0"] [data-choice="B"] .poll-count')).to_have_attribute("data-count", "1")
    await expect(quiz.locator('[data-question="0"] [data-choice="A"] .poll-count')).to_have_attribute("data-count", "1")
    await expect(quiz.locator('[data-question="1"] [data-choice="-1"] .poll-count')).to_have_attribute(
        "data-count", "2"
    )
    await expect(quiz.locator('[data-question="2"] .poll-chart')).to_contain_text("x = 2 ✓")
    scores = quiz.locator(".quiz-scores")
    await expect(scores.locator("tr", has_text="Phạm Ngọc Ánh")).to_contain_text("3/3")
    await expect(scores.locator("tr", has_text="Đỗ Minh Khôi")).to_contain_text("1/3")
    await screenshot(teacher, SCREENSHOTS / "quiz-teacher-vi.png", full_page=True)
    await in_english(teacher, SCREENSHOTS / "quiz-teacher-en.png")
    await expect(teacher.locator(".poll.quiz")).to_contain_text("Scores per student")
    await in_english(anh, SCREENSHOTS / "quiz-student-iphone13-en.png")
    await expect(anh.locator(".poll.quiz")).to_contain_text("Sent: B")
    await in_english(khoi, SCREENSHOTS / "quiz-student-desktop-en.png")
    for page in (teacher, anh, khoi):
        await back_to_vietnamese(page)
    await expect(khoi.locator('.poll.quiz [data-question="2"] input')).to_be_visible()
    await khoi.locator('.poll.quiz [data-question="2"] input').fill("x = 3")
    await khoi.locator('.poll.quiz [data-question="2"]').get_by_role("button", name="Gửi").click()
    await expect(khoi.locator('.poll.quiz [data-question="2"] .quiz-sent')).to_have_text("Đã gửi: x = 3")

    # The reveal, with the answers: each student sees their own result, score and the explanations.
    await expect(quiz).to_contain_text("Làm hết bài: 2")
    await teacher.locator(".poll.quiz").get_by_role("button", name="Công bố kết quả và đáp án").click()
    await expect(teacher.locator(".poll.quiz")).to_contain_text("Đã công bố")
    result = anh.locator(".poll.quiz[data-state=revealed]")
    await expect(result.locator(".quiz-score")).to_have_text("Điểm của bạn: 3/3 · Đúng 3/3 câu")
    await expect(result.locator('[data-question="0"] .poll-verdict')).to_contain_text("Bạn trả lời đúng!")
    await expect(result.locator('[data-question="0"]')).to_contain_text("Hoành độ đỉnh x = −b/(2a) = 4/2 = 2.")
    await expect(result.locator('[data-question="2"]')).to_contain_text("Đáp án đúng: x = 2 / x=2")
    his = khoi.locator(".poll.quiz[data-state=revealed]")
    await expect(his.locator(".quiz-score")).to_have_text("Điểm của bạn: 1/3 · Đúng 1/3 câu")
    await expect(his.locator('[data-question="0"] .poll-verdict')).to_contain_text("Bạn trả lời chưa đúng.")
    await expect(his.locator('[data-question="1"] .poll-verdict')).to_contain_text("Bạn trả lời đúng!")
    await expect(his.locator('[data-question="0"]')).to_contain_text("Đáp án đúng: B")
    await screenshot(anh, SCREENSHOTS / "quiz-student-result-iphone13-vi.png")
    await screenshot(khoi, SCREENSHOTS / "quiz-student-result-desktop-vi.png", full_page=True)
    await in_english(anh, SCREENSHOTS / "quiz-student-result-iphone13-en.png")
    await expect(result.locator(".quiz-score")).to_have_text("Your score: 3/3 · 3/3 right")
    await back_to_vietnamese(anh)

    async with server.db() as db:
        answered = [
            e.data
            for e in (await db.execute(select(SessionEvent).order_by(SessionEvent.id))).scalars()
            if e.type == "poll_answered"
        ]
    polls: dict[str, list[dict]] = {}
    for a in answered:
        polls.setdefault(a["poll_id"], []).append(a)
    assert [len(given) for given in polls.values()] == [2, 6]  # Khôi's refused "âm một" is not an answer
    quiz_answers = list(polls.values())[1]
    assert sum(a["points"] for a in quiz_answers) == 4  # Ánh 3, Khôi 1
    assert {"question": 1, "text": "-1,0", "correct": True} in [
        {k: a[k] for k in ("question", "text", "correct")} for a in quiz_answers
    ]

    # One question at a time (30 s each), anonymous, answers final: the teacher moves on with "Câu tiếp theo".
    await teacher.locator(".poll.quiz").get_by_role("button", name="Bài mới").click()
    picker = teacher.locator("[data-poll=bank]")
    await expect(picker.locator(".quiz-pick-list li")).to_have_count(4)
    for text in (Q_OTHER, Q_VERTEX):
        await picker.get_by_role("checkbox", name=text).check()
    await picker.get_by_label("Theo từng câu:").check()
    await picker.get_by_label("giây").fill("30")
    await picker.get_by_label("Ẩn danh").check()
    await picker.get_by_label("Cho phép đổi câu trả lời đến khi kết thúc").uncheck()
    await picker.locator("[data-poll-action=launch]").click()
    paced = teacher.locator(".poll.quiz[data-state=open]")
    await expect(paced.locator(".poll-countdown")).to_contain_text("Câu này còn 0:")
    await expect(paced.locator('.quiz-question[data-open="true"]')).to_have_attribute("data-question", "0")
    asked = anh.locator(".poll.quiz[data-state=open] .quiz-question")
    await expect(asked).to_have_count(1)  # only the question being asked
    await expect(asked).to_have_attribute("data-question", "0")
    await expect(anh.locator(".poll.quiz")).to_contain_text("câu trả lời đã gửi không sửa được")
    await asked.locator(".quiz-choice").first.tap()
    await expect(asked.locator(".quiz-sent")).to_have_text("Đã gửi: A")
    await expect(asked.locator(".quiz-choice").first).to_be_disabled()  # final
    await expect(paced).to_contain_text("Đã trả lời: 1/2")
    await expect(paced.locator(".quiz-scores")).to_have_count(0)  # anonymous: counts only
    await paced.get_by_role("button", name="Câu tiếp theo").click()
    await expect(asked).to_have_attribute("data-question", "1")
    await expect(paced.locator('.quiz-question[data-open="true"]')).to_have_attribute("data-question", "1")
    await expect(paced).to_contain_text("Đây là câu cuối")
    await screenshot(teacher, SCREENSHOTS / "quiz-teacher-one-at-a-time-vi.png")
    await paced.get_by_role("button", name="Kết thúc", exact=True).click()
    await expect(anh.locator(".poll.quiz[data-state=closed]")).to_contain_text("Chờ giáo viên công bố kết quả")

    # The period ends; the admin finds the quiz and the scores in the session's records.
    await teacher.get_by_role("button", name="Kết thúc tiết học").click()
    await teacher.get_by_role("dialog").get_by_role("button", name="Kết thúc tiết học").click()
    await expect(anh.locator("[data-screen=ended]")).to_be_visible()
    admin = await open_as(browser, server, school.admin)
    await admin.get_by_role("link", name="Quản trị").click()
    await admin.locator("tr.session-row").first.click()
    await expect(admin.get_by_role("heading", level=1)).to_have_text("Toán · 10A1")
    section = admin.locator("section", has=admin.get_by_role("heading", name="Câu hỏi và bài kiểm tra"))
    await expect(section.locator(".poll-record")).to_have_count(3)  # the quick question and the two quizzes
    quiz_record = section.locator(".poll-record", has_text=Q_AXIS).first
    await expect(quiz_record).to_contain_text(Q_VERTEX)
    await expect(quiz_record.locator(".poll-scores tr", has_text="Phạm Ngọc Ánh")).to_contain_text("3/3")
    await expect(quiz_record.locator(".poll-scores tr", has_text="Đỗ Minh Khôi")).to_contain_text("1/3")
    # ... and in the class summary, each student's score beside the attendance (quiz 3 + 2 one at a time).
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    await admin.goto(
        f"{server.base_url}/#/records/class/{school.school_class.id}"
        f"?from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    )
    for name, score in (("Phạm Ngọc Ánh", "3/5"), ("Đỗ Minh Khôi", "1/5")):
        await expect(admin.locator("tr", has_text=name).locator("[data-field=score]")).to_have_text(score)
    assert not errors, errors
    for page in (teacher, anh, khoi, admin):
        await page.context.close()


async def test_a_bank_question_with_its_image_in_the_room(server, school, browser):
    """The image reaches the class through the bank's signed link (the room only passes the link on)."""
    person = await server.logged_in(school.teacher)
    made = await person.json(
        "POST",
        "/questions",
        expect=201,
        json={
            "subject": "Toán",
            "topic": CHAPTER,
            "kind": "truefalse",
            "text": "Hình vẽ là đồ thị của một hàm số bậc hai.",
            "options": [],
            "correct": ["true"],
            "points": 1,
            "shared": False,
        },
    )
    await person.json("PUT", f"/questions/{made['id']}/image", data=png(), headers={"Content-Type": "image/png"})
    teacher = await open_as(browser, server, school.teacher)
    await teacher.get_by_role("button", name="Bắt đầu tiết học").click()
    student = await enter_room(browser, server, school.student, device="iPhone 13")
    await teacher.get_by_role("tab", name="Người tham gia").click()
    await teacher.get_by_role("button", name="Cho tất cả vào").click()
    await expect(student.locator(".room")).to_be_visible()
    await teacher.get_by_role("button", name="Từ ngân hàng câu hỏi").click()
    picker = teacher.locator("[data-poll=bank]")
    await picker.get_by_role("checkbox", name="Hình vẽ là đồ thị").check()
    await picker.locator("[data-poll-action=launch]").click()
    image = student.locator(".poll.quiz img.quiz-image")
    await expect(image).to_be_visible()
    await student.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 40", arg=await image.element_handle()
    )
    await student.locator('.quiz-choice[data-choice="true"]').tap()
    await expect(student.locator(".quiz-sent")).to_have_text("Đã gửi: Đúng")

    # The principal observing: no answer controls, the question and, after the reveal, the results only.
    observer = await open_as(browser, server, school.observer)
    await observer.get_by_role("link", name="Vào lớp").click()
    watching = observer.locator(".poll.quiz")
    await expect(watching).to_contain_text("Cả lớp đang làm bài.")
    await expect(watching).to_contain_text("Hình vẽ là đồ thị")
    await expect(watching.locator("button.quiz-choice, input")).to_have_count(0)
    await teacher.locator(".poll.quiz").get_by_role("button", name="Công bố kết quả và đáp án").click()
    await expect(watching.locator('[data-choice="true"] .poll-count')).to_have_text("1 · 100%")
    await expect(watching).to_contain_text("Đáp án đúng: Đúng")
    await expect(watching.locator(".quiz-sent, .poll-verdict, .quiz-score")).to_have_count(0)
    await expect(student.locator(".quiz-score")).to_have_text("Điểm của bạn: 1/1 · Đúng 1/1 câu")
