"""Recording a period through the room: the teacher records, everyone sees it, the files are listed,
play with seeking (HTTP Range) and decode; a low disk refuses with a message."""
from __future__ import annotations

import asyncio
import io

import av
import pytest

from tests.live import admitted
from tests.test_live_media import RoomPeer


async def test_a_recorded_period_is_listed_and_plays_with_seeking(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    teacher_peer = RoomPeer(teacher)
    await teacher_peer.publish("A")
    await teacher.ok("media:state", {"camera": True, "microphone": True})
    assert await student.refused("rec:start") == "forbidden"
    started = await teacher.ok("rec:start")
    assert started["recording"] is True
    assert (await student.wait_for("rec:status"))["recording"] is True  # everyone knows
    await asyncio.sleep(4)
    stopped = await teacher.ok("rec:stop")
    assert stopped["recording"] is False
    assert (await student.wait_for("rec:status", lambda d: not d["recording"]))["recording"] is False
    await teacher_peer.close()
    await asyncio.sleep(0.6)  # the records writer

    listed = (await teacher.person.json("GET", f"/sessions/{session_id}/recordings"))["items"]
    assert {(r["kind"], r["source"]) for r in listed} == {("video", "camera"), ("audio", "microphone")}
    video = next(r for r in listed if r["kind"] == "video")
    assert 3000 <= video["duration_ms"] <= 5500 and len(video["sha256"]) == 64
    whole = await teacher.person.request("GET", video["url"].removeprefix("/api/v1"))
    body = await whole.read()
    assert whole.status == 200 and len(body) == video["size"]
    middle = await teacher.person.request("GET", video["url"].removeprefix("/api/v1"),
                                          headers={"Range": f"bytes={len(body) // 2}-{len(body) // 2 + 99}"})
    assert middle.status == 206 and await middle.read() == body[len(body) // 2: len(body) // 2 + 100]
    beyond = await teacher.person.request("GET", video["url"].removeprefix("/api/v1"),
                                          headers={"Range": f"bytes={len(body) + 10}-"})
    assert beyond.status == 416
    with av.open(io.BytesIO(body)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 60  # ~4 s of 30 fps, decoded without an error
    records = await teacher.person.json("GET", f"/sessions/{session_id}/records")
    assert len(records["recordings"]) == 2
    assert [e["type"] for e in records["events"] if e["type"].startswith("recording_")] == [
        "recording_started", "recording_stopped", "recording_saved"]
    await student.person.json("GET", f"/sessions/{session_id}/recordings", expect=403)

    # The lesson video: made offline at low priority, with progress, then it plays.
    job = await teacher.person.json("POST", f"/sessions/{session_id}/lesson-video", expect=202)
    assert job["state"] == "running"
    for _ in range(240):
        job = await teacher.person.json("GET", f"/sessions/{session_id}/lesson-video")
        if job["state"] != "running":
            break
        await asyncio.sleep(0.25)
    assert job["state"] == "done" and job["progress"] == 1.0
    lesson = await (await teacher.person.request("GET", f"/sessions/{session_id}/lesson-video/file")).read()
    with av.open(io.BytesIO(lesson)) as container:
        assert container.streams.video and container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) > 60


@pytest.mark.settings(recording_min_free_bytes=10 ** 18)
async def test_too_little_free_disk_refuses_to_record_with_a_message(server, school, period):
    session_id, teacher = period
    answer = await teacher.call("rec:start")
    assert answer["ok"] is False and answer["error"]["code"] == "low_disk_space"
    assert answer["error"]["message"]
    assert (await teacher.ok("room:sync"))["recording"] is False
