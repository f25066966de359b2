"""The web client when its class moves to another server (Debian's chromium, several real nodes): the
teacher and a student stay in the room, told what happens, and the recording goes on."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.browser import needs_chromium
from tests.cluster import Cluster
from tests.test_web_client import open_as

pytestmark = needs_chromium


@pytest.fixture
async def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    await cluster.close()


async def test_a_drained_node_moves_the_class_and_the_pages_follow(cluster, browser):
    school = await cluster.start(nodes=2, cross_origin=True)
    try:
        session = await (await cluster.front.logged_in(school.teacher)).json(
            "POST", f"/periods/{school.period.id}/start", expect=201
        )
        hosting = cluster.node(session["node"])
        pages_from = next(n for n in cluster.nodes if n is not hosting)  # the pages outlive the drained node

        teacher = await open_as(browser, pages_from, school.teacher)
        await teacher.get_by_role("link", name="Vào lớp").click()
        await expect(teacher.locator(".room")).to_be_visible()
        await teacher.get_by_role("tab", name="Người tham gia").click()
        student = await open_as(browser, pages_from, school.student)
        await student.get_by_role("link", name="Vào lớp").click()
        await teacher.locator(".lobby-list li", has_text="Phạm Ngọc Ánh").get_by_role("button", name="Cho vào").click()
        await expect(student.locator(".room")).to_be_visible()
        await teacher.get_by_role("button", name="Ghi hình", exact=True).click()
        await expect(student.locator(".stage .rec:visible")).to_have_text("Đang ghi hình")

        admin = await pages_from.logged_in(school.admin)
        await admin.json("POST", f"/nodes/{hosting.node_id}/drain", expect=202)
        await expect(student.locator("#banner")).to_have_text("Đang chuyển lớp sang máy chủ khác…", timeout=10000)
        # Back in the room on the other node: no lobby, the recording going on as a new recording.
        await expect(teacher.locator("#banner")).to_have_text(
            "Lớp đã chuyển sang máy chủ khác; việc ghi hình tiếp tục thành bản ghi mới.", timeout=20000
        )
        await expect(student.locator(".room")).to_be_visible()
        await expect(student.locator(".stage .rec:visible")).to_have_text("Đang ghi hình", timeout=10000)
        await expect(teacher.locator(".lobby-list li")).to_have_count(0)
        await expect(teacher.locator(".people li", has_text="Phạm Ngọc Ánh")).not_to_contain_text("Đang kết nối lại…")
        assert await asyncio.to_thread(hosting.process.wait, 30) == 0
        nodes = (await admin.json("GET", "/nodes"))["items"]
        assert [(n["node_id"], n["sessions"]) for n in nodes] == [(pages_from.node_id, [session["id"]])]
    except BaseException:
        print(cluster.logs())
        raise
