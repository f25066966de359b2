"""Assessment in a real browser (Debian's chromium through Playwright): the teacher's question bank page, then
the quiz at 08:35 of ../shared/SCENARIOS.md — a quick A/B/C/D question and a 3-question quiz from the bank for
"Chương 2: Hàm số bậc hai", two students answering (one on an iPhone 13, one on a laptop), the reveal, each
student's result, and the admin finding the scores in the session's records."""
from __future__ import annotations

import io
import struct
import zlib

from openpyxl import load_workbook
from playwright.async_api import expect
from sqlalchemy import select

from liveclass.models import Enrollment, SessionEvent
from tests.browser import SCREENSHOTS, needs_chromium
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
    ["Toán", CHAPTER, "Một đáp án", Q_VERTEX, "1", "2", "3", "4", "", "", "B", "", 1,
     "Hoành độ đỉnh x = −b/(2a) = 4/2 = 2.", "Có"],
    ["Toán", CHAPTER, "Số", Q_MIN, "", "", "", "", "", "", "-1", "", 1, "y(2) = 4 − 8 + 3 = −1.", "Không"],
    ["Toán", CHAPTER, "Trả lời ngắn", Q_AXIS, "", "", "", "", "", "", "x = 2|x=2", "", 1,
     "Trục đối xứng đi qua đỉnh: x = 2.", "Không"],
    ["Toán", "Chương 1: Mệnh đề và tập hợp", "Một đáp án", Q_OTHER, "3", "6", "8", "9", "", "", "C", "", 1, "", "Không"],
]


def png(width: int = 40, height: int = 24) -> bytes:
    """A small real PNG (a blue picture) for a question's image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes([21, 87, 176]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


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
        files=[{"name": name, "mimeType": XLSX, "buffer": data}])


def item(page, text: str):
    return page.locator(".bank-item", has_text=text)


async def test_the_question_bank_page(server, school, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
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
        files=[{"name": "parabol.png", "mimeType": "image/png", "buffer": png()}])
    await expect(form.locator("img.bank-image")).to_be_visible()
    await form.get_by_label("Chia sẻ với giáo viên cùng môn").check()
    await teacher.screenshot(path=SCREENSHOTS / "bank-form-vi.png", full_page=True)
    await form.get_by_role("button", name="Lưu câu hỏi").click()
    await expect(teacher.locator("#banner")).to_have_text("Đã thêm câu hỏi.")
    vertex = item(teacher, "Đỉnh của parabol")
    await expect(vertex).to_contain_text("Đã chia sẻ")
    await expect(vertex.locator('[data-option="B"]')).to_contain_text("(2; −1) (Đúng) ✓")
    await expect(vertex.locator(".bank-options .correct")).to_have_count(1)
    await expect(vertex).to_contain_text("1 điểm")
    image = vertex.locator("img.bank-image")
    await expect(image).to_be_visible()
    await teacher.wait_for_function("(img) => img.complete && img.naturalWidth === 40", arg=await image.element_handle())

    # Edited in place.
    await vertex.get_by_role("button", name="Sửa").click()
    editing = teacher.locator(".bank-form[data-editing]")
    await expect(editing.get_by_label("Nội dung câu hỏi")).to_have_value("Đỉnh của parabol y = x² − 4x + 3 là điểm nào?")
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
    bad = [QUIZ_ROWS[2], ["Toán", CHAPTER, "Không rõ", "Câu hỏi loại lạ", *[""] * 6, "", "", "", "", ""],
           QUIZ_ROWS[3], ["Toán", CHAPTER, "Một đáp án", "Chọn G?", "1", "2", "", "", "", "", "G", "", 1, "", ""]]
    await import_sheet(teacher, await sheet(teacher, server, bad), "sai.xlsx")
    report = teacher.locator(".bank-import")
    await expect(report).to_contain_text("Chưa nhập câu nào từ sai.xlsx")
    await expect(report.locator("tr[data-line]")).to_have_count(2)
    await expect(report.locator('tr[data-line="3"]')).to_contain_text("Loại")
    await expect(report.locator('tr[data-line="5"]')).to_be_visible()
    assert "Unknown" not in await report.inner_text()  # the reasons in the page's language
    await teacher.screenshot(path=SCREENSHOTS / "bank-import-errors-vi.png", full_page=True)
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
    await teacher.screenshot(path=SCREENSHOTS / "bank-vi.png", full_page=True)
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
    await phone.screenshot(path=SCREENSHOTS / "bank-iphone13-vi.png")
    assert not errors, errors
    await teacher.context.close()
    await phone.context.close()
