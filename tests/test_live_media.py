"""Media through the live room: real aiortc peers negotiate over the Socket.IO protocol (rtc:*), and
the room's rules decide who receives what."""

from __future__ import annotations

import asyncio

import pytest

from aiortc import RTCSessionDescription

from liveclass.live import LIVE_ROOMS
from liveclass.models import Enrollment
from tests.helpers import add_user
from tests.live import LiveClient, admitted, enter
from tests.media.peers import PatternTrack, wait_for
from tests.media.room_peer import RoomPeer

# Measures media over time: runs alone, before the parallel part of the suite (Makefile, `timing`).
pytestmark = pytest.mark.timing


@pytest.fixture
async def on_air(server, school, period):
    """The teacher on camera and microphone (pattern A), one admitted student subscribed:
    (session id, teacher client, student client, teacher's peer, student's peer)."""
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    teacher_peer, student_peer = RoomPeer(teacher), RoomPeer(student)
    await teacher_peer.publish("A")
    await teacher.ok("media:state", {"camera": True, "microphone": True})
    await student_peer.subscribe()
    yield session_id, teacher, student, teacher_peer, student_peer
    await teacher_peer.close()
    await student_peer.close()


async def test_teacher_media_reaches_every_student_and_the_rules_hold(server, school, period):
    session_id, teacher = period
    async with server.db() as db:
        others = [await add_user(db, "student", f"Học Sinh {i}") for i in range(2)]
        for user in others:
            db.add(Enrollment(class_id=school.school_class.id, student_id=user.id))
        await db.commit()
    students = [await admitted(teacher, await server.logged_in(u), session_id) for u in [school.student, *others]]
    observer = await enter(await server.logged_in(school.observer), session_id)
    await observer.wait_for("room:state")

    teacher_peer = RoomPeer(teacher)
    await teacher_peer.publish("A")
    await teacher.ok("media:state", {"camera": True, "microphone": True})
    peers = [RoomPeer(c) for c in [*students, observer]]
    try:
        for peer in peers:
            await peer.subscribe()
        # Everyone receives the teacher's camera (decoded: the colour pattern) and voice.
        for peer in peers:
            await wait_for(lambda p=peer: p.seen("teacher_camera", "A"), 15, "the teacher's camera")
            await wait_for(lambda p=peer: p.audio_frames.get("teacher_audio", 0) > 10, 15, "the teacher's voice")
        # Observers only watch.
        assert await observer.refused("rtc:publish", {"sdp": "v=0", "tracks": []}) == "forbidden"

        # Ánh speaks: the others hear her in an audio slot; the teacher mutes her and it stops at once.
        anh, huy = peers[0], peers[1]
        await anh.publish("B")
        await teacher_peer.subscribe()
        await students[0].ok("media:state", {"microphone": True, "camera": True})
        slots = await students[1].wait_for(
            "rtc:slots", lambda d: (d["slots"].get("audio_1") or {}).get("participant_id") == students[0].participant_id
        )
        assert slots["slots"]["audio_1"]["source"] == "microphone"
        await wait_for(lambda: huy.audio_frames.get("audio_1", 0) > 10, 15, "Ánh's voice at Huy")
        # The teacher sees every student's camera in the grid; students do not see each other's.
        await wait_for(
            lambda: any(teacher_peer.seen(s, "B") for s in teacher_peer.patterns),
            15,
            "Ánh's camera in the teacher's grid",
        )
        assert not any(huy.seen(s, "B") for s in huy.patterns)

        mark = students[1].mark()
        await teacher.ok("mod:mute", {"participant_id": students[0].participant_id, "source": "microphone"})
        await students[1].wait_for(
            "rtc:slots", lambda d: "audio_1" in d["slots"] and d["slots"]["audio_1"] is None, after=mark
        )
        heard = huy.audio_frames.get("audio_1", 0)
        await asyncio.sleep(1.0)  # a second in which almost nothing may arrive (measured)
        assert huy.audio_frames.get("audio_1", 0) - heard < 10  # forwarding stopped on the server

        # On stage: everyone sees Ánh's camera.
        since = len(huy.patterns.get("stage", []))
        await teacher.ok("mod:stage", {"participant_id": students[0].participant_id})
        await wait_for(lambda: huy.seen("stage", "B", since), 15, "Ánh on stage at Huy")
    finally:
        for peer in [teacher_peer, *peers]:
            await peer.close()


async def test_leaving_closes_the_media_connections(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    peer = RoomPeer(student)
    await peer.publish("B")
    await peer.subscribe()
    engine = server.test_server.app[LIVE_ROOMS].media_engine
    peer_id = f"{session_id}/{student.participant_id}"

    def has_connections() -> bool:
        stats = engine.stats()
        return peer_id in stats["subscribers"] or any(k.startswith(peer_id + "/") for k in stats["tracks"])

    await wait_for(has_connections, 10, "the student's connections")
    await student.ok("room:leave")
    await wait_for(lambda: not has_connections(), 10, "the server to close the student's connections")
    await peer.close()


@pytest.mark.settings(quality_report_seconds=0.3)
async def test_the_teacher_hears_of_each_students_connection_quality(on_air):
    session_id, teacher, student, teacher_peer, student_peer = on_air
    report = await teacher.wait_for(
        "room:quality",
        lambda d: (
            student.participant_id in d["participants"]
            and d["participants"][student.participant_id]["receiving_kbps"] > 0
        ),
        20,
    )
    entry = report["participants"][student.participant_id]
    assert entry["quality"] == "good" and entry["loss"] < 0.03  # loopback: no loss
    assert not student.events("room:quality")  # only teachers get the report


async def test_prometheus_metrics_show_rooms_and_forwarding(server, on_air):
    session_id, teacher, student, teacher_peer, student_peer = on_air
    await wait_for(lambda: student_peer.seen("teacher_camera", "A"), 15, "the teacher's camera")
    text = await (await server.person(None).request("GET", server.base_url + "/metrics")).text()
    assert "liveclass_rooms 1.0" in text
    assert 'liveclass_participants{role="student",state="admitted"} 1.0' in text
    sent = [
        line
        for line in text.splitlines()
        if line.startswith("liveclass_media_sent_bytes_total") and 'slot="teacher_camera"' in line
    ]
    assert sent and float(sent[0].split()[-1]) > 0


def _samples(text: str, name: str) -> dict[str, float]:
    """A metric's samples from a /metrics page: {label text: value}."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key[len(name) :]] = float(value)
    return out


async def test_metrics_name_no_person_and_their_byte_counts_only_grow(server, on_air):
    """Bounded labels (sources, slots, layers, route patterns; never a peer), counters that do not fall when
    someone leaves, the process' own metrics and the HTTP requests by route."""
    session_id, teacher, student, teacher_peer, student_peer = on_air
    await wait_for(lambda: student_peer.seen("teacher_camera", "A"), 15, "the teacher's camera")
    anon = server.person(None)
    await anon.request("GET", server.base_url + "/api/v1/sessions/123456789/nowhere")  # a 404
    text = await (await anon.request("GET", server.base_url + "/metrics")).text()
    for who in (teacher.participant_id, student.participant_id, f"/sessions/{session_id}/", "123456789"):
        assert who not in text, who
    assert "peer=" not in text
    sent = _samples(text, "liveclass_media_sent_bytes_total")
    assert sent['{slot="teacher_camera"}'] > 0 and sent['{slot="teacher_audio"}'] > 0
    assert _samples(text, "liveclass_media_received_bytes_total")['{source="camera"}'] > 0
    assert _samples(text, "liveclass_media_tracks") == {'{source="camera"}': 1.0, '{source="microphone"}': 1.0}
    assert _samples(text, "liveclass_media_video_slots")['{layer="high"}'] >= 1
    assert _samples(text, "liveclass_media_slot_loss_ratio_gcount")[""] >= 2
    assert _samples(text, "process_resident_memory_bytes")[""] > 10_000_000
    joins = _samples(text, "liveclass_http_request_duration_seconds_count")
    assert joins['{method="POST",route="/api/v1/sessions/{session_id}/join",status="200"}'] >= 2
    assert joins['{method="GET",route="unmatched",status="404"}'] == 1

    await student.ok("room:leave")  # the student's connections close: what was sent to them still counts
    engine = server.test_server.app[LIVE_ROOMS].media_engine
    await wait_for(lambda: not engine.stats()["subscribers"], 10, "the student's subscribe connection closed")
    later = await (await anon.request("GET", server.base_url + "/metrics")).text()
    assert (
        _samples(later, "liveclass_media_sent_bytes_total")['{slot="teacher_camera"}']
        >= sent['{slot="teacher_camera"}']
    )


@pytest.mark.settings(media_host_addresses=["127.0.0.1"], media_announced_address="203.0.113.10")
async def test_server_candidates_come_from_the_configuration(server, school, period):
    """Only the configured address is offered, and the announced one replaces it in the SDP."""
    session_id, teacher = period
    await teacher.ok("rtc:subscribe")
    offer = await teacher.wait_for("rtc:offer")
    hosts = [
        line.split()[4] for line in offer["sdp"].splitlines() if line.startswith("a=candidate:") and "typ host" in line
    ]
    assert hosts and set(hosts) == {"203.0.113.10"}


async def test_subscribing_again_keeps_publishing_and_a_later_offer_adds_a_source(on_air):
    session_id, teacher, student, teacher_peer, student_peer = on_air
    await teacher_peer.subscribe()
    await teacher_peer.subscribe()  # the teacher's client restarts its subscribe connection
    await wait_for(lambda: student_peer.seen("teacher_camera", "A"), 15, "the camera after a second subscribe")
    # The teacher adds a screen share by a new offer on the same publish connection: camera goes on.
    pc = teacher_peer.publisher
    screen = pc.addTransceiver(PatternTrack("B"), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await teacher.ok(
        "rtc:publish", {"sdp": pc.localDescription.sdp, "tracks": [{"mid": screen.mid, "source": "screen"}]}
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await teacher.ok("media:state", {"screen": True})
    await wait_for(lambda: student_peer.seen("screen", "B"), 15, "the screen share")
    since = len(student_peer.patterns["teacher_camera"])
    await wait_for(lambda: student_peer.seen("teacher_camera", "A", since), 10, "the camera still coming")


async def test_the_stage_empties_for_everyone_when_its_student_leaves(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await teacher.ok("mod:stage", {"participant_id": student.participant_id})
    await teacher.wait_for("room:stage", lambda d: d["participant_id"] == student.participant_id)
    mark = teacher.mark()
    await student.ok("room:leave")
    assert (await teacher.wait_for("room:stage", after=mark))["participant_id"] is None


async def test_metrics_through_a_proxy_need_the_token(server, school):
    anon = server.person(None)
    refused = await anon.request("GET", server.base_url + "/metrics", headers={"X-Forwarded-For": "198.51.100.1"})
    assert refused.status == 403


async def test_after_a_drop_and_resume_the_teachers_camera_comes_back(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    teacher_peer, student_peer = RoomPeer(teacher), RoomPeer(student)
    await teacher_peer.publish("A")
    await teacher.ok("media:state", {"camera": True})
    await student_peer.subscribe()
    await wait_for(lambda: student_peer.seen("teacher_camera", "A"), 15, "the camera")
    await teacher.drop()  # the teacher's network goes away ...
    await teacher_peer.close()
    mark = student.mark()
    back = LiveClient(teacher.person)
    back.resume_token = teacher.resume_token
    await back.connect(session_id, resume=True)  # ... and comes back within the grace period
    await back.wait_for("room:state")
    resumed = RoomPeer(back)
    await resumed.subscribe()
    await resumed.publish("A")
    await back.ok("media:state", {"camera": True})
    await student.wait_for("rtc:slots", lambda d: d["slots"].get("teacher_camera") is not None, after=mark)
    since = len(student_peer.patterns["teacher_camera"])
    await wait_for(lambda: student_peer.seen("teacher_camera", "A", since), 15, "the camera after the resume")
    await resumed.close()
    await student_peer.close()


async def test_the_camera_keeps_its_bitrate_while_the_screen_is_shared(server, school, period):
    """One coherent bandwidth estimate per publish connection: a second video track (the screen)
    must not squeeze the camera (Chrome applies every REMB to the whole connection: docs/benchmarks.md and
    media/engine.py)."""
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    engine = server.test_server.app[LIVE_ROOMS].media_engine
    camera_key = f"{session_id}/{teacher.participant_id}/camera"
    teacher_peer, student_peer = RoomPeer(teacher), RoomPeer(student)
    await teacher_peer.publish("A", audio=False, noise=True)
    await teacher.ok("media:state", {"camera": True})
    await student_peer.subscribe()
    await wait_for(lambda: student_peer.seen("teacher_camera", "A"), 15, "the camera")

    async def camera_bitrate(seconds: float = 4.0) -> float:
        engine.stats()  # starts a fresh measuring window
        await asyncio.sleep(seconds)
        return engine.stats()["tracks"][camera_key]["bitrate"]

    await asyncio.sleep(2)  # the bandwidth estimate ramps up before the measurement
    alone = await camera_bitrate()
    pc = teacher_peer.publisher
    screen = pc.addTransceiver(PatternTrack("B", noise=True), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await teacher.ok(
        "rtc:publish", {"sdp": pc.localDescription.sdp, "tracks": [{"mid": screen.mid, "source": "screen"}]}
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await teacher.ok("media:state", {"screen": True})
    await wait_for(lambda: student_peer.seen("screen", "B"), 15, "the screen share")
    await asyncio.sleep(1)  # the estimate settles with the second track before the measurement
    shared = await camera_bitrate()
    print(f"camera bitrate alone {alone / 1000:.0f} kbit/s, with the screen {shared / 1000:.0f} kbit/s")
    assert alone > 200_000 and shared > 0.7 * alone
    # Stopping the share empties the student's screen slot; the camera goes on.
    mark = student.mark()
    await teacher.ok("media:state", {"screen": False})
    await student.wait_for("rtc:slots", lambda d: "screen" in d["slots"] and d["slots"]["screen"] is None, after=mark)
    since = len(student_peer.patterns["teacher_camera"])
    await wait_for(lambda: student_peer.seen("teacher_camera", "A", since), 10, "the camera after the share")
    await teacher_peer.close()
    await student_peer.close()
