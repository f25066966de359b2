"""A click whose press and release have a render of the room between them still clicks. The room renders
on every event (a classmate's message, a link report every few seconds, 40 students' comings and goings);
a button rebuilt or moved under the pointer would lose the click or the tap, and the teacher would press
again: the lobby's "Cho vào", a student's action menu, "Bật micro", the chat's "Gửi", the teacher's tools.
Debian's chromium through Playwright; the page's clicks are the mouse's own press and release."""

from __future__ import annotations

import re

from playwright.async_api import expect

from liveclass.live import LIVE_ROOMS
from signaling.server import NAMESPACE
from tests.browser import needs_chromium
from tests.helpers import eventually
from tests.live import LiveClient
from tests.test_web_client import open_as
from tests.test_web_weak_link import participant

pytestmark = needs_chromium


async def press(page, target) -> None:
    """The mouse goes down on `target` and stays down."""
    await target.scroll_into_view_if_needed()
    box = await target.bounding_box()
    assert box is not None, "the button is not on screen"
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()


async def report_until_shown(server, sid: str, report: dict, row) -> None:
    """A weak-link report to the teacher's page, sent again until her row shows it: the server's own reports
    (every few seconds, all good here) can arrive in between and say otherwise (seen under load)."""

    async def shown() -> bool:
        await server.test_server.app[LIVE_ROOMS].sio.emit("room:quality", report, to=sid, namespace=NAMESPACE)
        return "Kết nối yếu" in await row.inner_text()

    await eventually(shown, 15, "the weak-link report in the row", step=0.3)


async def test_a_click_held_over_a_render_is_not_lost(server, school, browser):
    teacher = await open_as(browser, server, school.teacher)
    await teacher.get_by_role("button", name="Bắt đầu tiết học").click()
    await expect(teacher.locator(".room")).to_be_visible()
    session_id = int(re.search(r"#/room/(\d+)", teacher.url).group(1))
    student = LiveClient(await server.logged_in(school.student))
    await student.connect(session_id)
    await teacher.get_by_role("tab", name="Người tham gia").click()

    # The lobby's "Cho vào" held while a link report renders the participant list.
    admit = teacher.locator(".lobby-list li", has_text="Phạm Ngọc Ánh").get_by_role("button", name="Cho vào")
    await press(teacher, admit)
    sid, hà = participant(server, "Nguyễn Thị Hà")
    report = {"participants": {hà.participant_id: {"quality": "weak", "loss": 0.08, "rtt_ms": 300}}}
    await report_until_shown(server, sid, report, teacher.locator(".people li", has_text="Nguyễn Thị Hà"))
    await teacher.mouse.up()
    await student.wait_for("room:state")
    row = teacher.locator(".people li", has_text="Phạm Ngọc Ánh")
    await expect(row).to_be_visible()

    # Her row's action menu held while a link report about her changes the row.
    await press(teacher, row.get_by_role("button", name="Thao tác"))
    _, ánh = participant(server, "Phạm Ngọc Ánh")
    report = {"participants": {ánh.participant_id: {"quality": "weak", "loss": 0.06, "rtt_ms": 280}}}
    await report_until_shown(server, sid, report, row)
    await teacher.mouse.up()
    await expect(row.get_by_role("menuitem", name="Mời lên bảng")).to_be_visible()
    await teacher.keyboard.press("Escape")
    await expect(row.get_by_role("menuitem")).to_have_count(0)

    # "Bật micro" held while a student's message renders the room.
    await press(teacher, teacher.get_by_role("button", name="Bật micro", exact=True))
    await student.ok("chat:send", {"text": "Em chào cô ạ"})
    await expect(teacher.get_by_role("tab", name=re.compile("Trò chuyện"))).to_contain_text("1")
    await teacher.mouse.up()
    await expect(teacher.get_by_role("button", name="Tắt micro", exact=True)).to_be_visible()

    # "Gửi" held while a student's message arrives in the chat.
    await teacher.get_by_role("tab", name=re.compile("Trò chuyện")).click()
    await teacher.get_by_placeholder("Nhập tin nhắn…").fill("Cả lớp mở sách trang 12")
    await press(teacher, teacher.get_by_role("button", name="Gửi"))
    await student.ok("chat:send", {"text": "Em có câu hỏi ạ"})
    await expect(teacher.locator(".chat-log")).to_contain_text("Em có câu hỏi ạ")
    await teacher.mouse.up()
    await student.wait_for("chat:message", lambda m: m["text"] == "Cả lớp mở sách trang 12")

    # "Từ ngân hàng câu hỏi" held while a student switches the microphone on (the tools count the microphones).
    await teacher.get_by_role("tab", name=re.compile("Người tham gia")).click()
    await press(teacher, teacher.get_by_role("button", name="Từ ngân hàng câu hỏi"))
    await student.ok("media:state", {"microphone": True})
    await expect(teacher.locator('.room-states [data-state="speaking"]')).to_have_text("Micro đang bật: 1")
    await teacher.mouse.up()
    await expect(teacher.locator("[data-poll=bank]")).to_be_visible()
    await student.close()
    await teacher.context.close()
