"""MediaEngine with real aiortc peers over loopback (publisher -> engine -> subscribers, one process).

Covers: fan-out to 3 decoding subscribers with the pattern checked and audio flowing, a late joiner,
trickled ICE both ways, no server-side codec, a mute, a source switch without renegotiation, a
network outage healed by a keyframe, and 100 join/leave cycles leaking nothing.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import psutil
from aiortc import RTCSessionDescription
import pytest

from media import MediaEngine
from tests.media.peers import CodecCalls, Publisher, Subscriber, wait_for

AV = {"camera": "video", "microphone": "audio"}
FROM_T = {"camera": ("t", "camera"), "microphone": ("t", "microphone")}


@pytest.fixture
async def engine():
    engine = MediaEngine()
    peers: list = []
    engine.test_peers = peers  # closed after the test, before the engine
    yield engine
    for peer in peers:
        await peer.close()
    await engine.close()


async def connected(engine, peer, *args):
    engine.test_peers.append(peer)
    await peer.connect(*args)
    return peer


def frames_arrive(sub: Subscriber, slot: str, after: int, pattern: str | None = None):
    return lambda: sub.frames[slot] > after + 3 and (pattern is None or sub.last_pattern[slot] == pattern)


async def test_fan_out_to_three_subscribers_and_a_late_joiner_without_server_codecs(engine, monkeypatch):
    codecs = CodecCalls(monkeypatch)
    await connected(engine, Publisher(engine, "t", "A", trickle=True))
    subs = [Subscriber(engine, f"s{i}", AV, trickle=(i == 0)) for i in range(3)]
    engine.test_peers.extend(subs)
    await asyncio.gather(*(s.connect(FROM_T) for s in subs))
    for sub in subs:
        await wait_for(frames_arrive(sub, "camera", 30, "A"), 10, f"{sub.peer_id}'s video")
        await wait_for(lambda: sub.frames["microphone"] > 25, 5, f"{sub.peer_id}'s audio")
        assert sub.patterns_seen["camera"].count("A") >= 0.8 * len(sub.patterns_seen["camera"])

    late = Subscriber(engine, "late", AV)
    start = time.monotonic()
    await connected(engine, late, FROM_T)
    first = await wait_for(frames_arrive(late, "camera", 0, "A"), 5, "the late joiner's video")
    assert time.monotonic() - start < 3, f"late joiner's first frames took {first:.2f} s"
    await wait_for(lambda: late.frames["microphone"] > 10, 5, "the late joiner's audio")

    stats = engine.stats()
    camera = stats["tracks"]["t/camera"]
    assert camera["subscribers"] == 4 and camera["fps"] > 15 and camera["bitrate"] > 0
    for sub_id in ("s0", "s1", "s2", "late"):
        slot = stats["subscribers"][sub_id]["camera"]
        assert slot["live"] and slot["keyframes"] >= 1 and slot["packets"] > 0
    assert camera["keyframe_requests"] <= 10, "keyframe requests were not coalesced"

    # the proof: the engine created no decoder and no encoder (the clients did)
    assert codecs.on_engine(engine) == (0, 0)
    assert len(codecs.encoder_senders) >= 2 and len(codecs.decoder_queues) >= 4
    for track in engine._tracks.values():
        assert not track.tap.has_decoder()
    for subscriber in engine._subscribers.values():
        for slot in subscriber.slots.values():
            assert not slot.tap.has_encoder()


async def test_a_mute_stops_forwarding_at_once_and_resuming_starts_at_a_keyframe(engine):
    await connected(engine, Publisher(engine, "t", "A"))
    sub = await connected(engine, Subscriber(engine, "s", AV), FROM_T)
    await wait_for(frames_arrive(sub, "camera", 10, "A"), 10, "video")

    engine.set_paused("t", "camera", True)
    sent_at_pause = engine.stats()["subscribers"]["s"]["camera"]["packets"]
    await asyncio.sleep(0.3)  # frames already on the wire or in the decoder
    frames = sub.frames["camera"]
    await asyncio.sleep(1.0)  # a second muted, measured
    assert sub.frames["camera"] == frames, "video kept arriving while muted"
    assert engine.stats()["subscribers"]["s"]["camera"]["packets"] == sent_at_pause
    assert sub.frames["microphone"] > 0 and engine.stats()["tracks"]["t/camera"]["paused"]

    keyframes = engine.stats()["subscribers"]["s"]["camera"]["keyframes"]
    engine.set_paused("t", "camera", False)
    took = await wait_for(frames_arrive(sub, "camera", frames, "A"), 5, "video after resuming")
    assert took < 2
    assert engine.stats()["subscribers"]["s"]["camera"]["keyframes"] > keyframes


async def test_assign_switches_a_slot_between_publishers_without_renegotiation(engine):
    await connected(engine, Publisher(engine, "a", "A", audio=False))
    await connected(engine, Publisher(engine, "b", "B", audio=False, trickle=True))
    sub = await connected(engine, Subscriber(engine, "s", {"stage": "video"}), {"stage": ("a", "camera")})
    remote_description = sub.pc.remoteDescription.sdp
    await wait_for(frames_arrive(sub, "stage", 5, "A"), 10, "publisher a's pattern")

    for publisher, pattern in (("b", "B"), ("a", "A"), ("b", "B")):
        frames = sub.frames["stage"]
        engine.assign("s", "stage", publisher, "camera")
        took = await wait_for(frames_arrive(sub, "stage", frames, pattern), 5, f"pattern {pattern} after the switch")
        assert took < 2, f"switch to {publisher} took {took:.2f} s"

    engine.assign("s", "stage", None, None)  # an empty slot: nothing flows
    await asyncio.sleep(0.3)  # frames already on the wire or in the decoder
    frames = sub.frames["stage"]
    await asyncio.sleep(0.7)  # measured: nothing flows
    assert sub.frames["stage"] == frames
    engine.assign("s", "stage", "a", "camera")
    await wait_for(frames_arrive(sub, "stage", frames, "A"), 5, "pattern A again")
    assert sub.pc.remoteDescription.sdp == remote_description  # no renegotiation happened

    with pytest.raises(ValueError):
        engine.assign("s", "stage", "a", "microphone")


async def test_a_subscriber_whose_network_drops_recovers_through_a_keyframe(engine):
    await connected(engine, Publisher(engine, "t", "A", noise=True))
    sub = await connected(engine, Subscriber(engine, "s", AV), FROM_T)
    bystander = await connected(engine, Subscriber(engine, "other", AV), FROM_T)
    await wait_for(frames_arrive(sub, "camera", 20, "A"), 10, "video")

    slots = engine._subscribers["s"].slots.values()
    for slot in slots:  # the network eats everything the server sends to this subscriber
        slot.tap.send = lambda data: None
    keyframes = engine.stats()["subscribers"]["s"]["camera"]["keyframes"]
    await asyncio.sleep(0.5)  # frames already on the wire or in the decoder
    frames, others = sub.frames["camera"], bystander.frames["camera"]
    await asyncio.sleep(3.0)  # 3 s of outage, measured for both subscribers
    assert sub.frames["camera"] - frames <= 2
    assert bystander.frames["camera"] - others > 60, "one subscriber's outage delayed another"
    for slot in slots:
        del slot.tap.send  # the network is back

    took = await wait_for(frames_arrive(sub, "camera", sub.frames["camera"], "A"), 10, "video after the outage")
    assert engine.stats()["subscribers"]["s"]["camera"]["keyframes"] > keyframes, "recovered without a keyframe"
    await wait_for(lambda: sub.frames["microphone"] > 0, 1, "audio")
    print(f"recovered {took:.2f} s after the outage")


async def test_join_leave_cycles_leak_no_tasks_threads_or_sockets(engine):
    await connected(engine, Publisher(engine, "t", "A"))
    process = psutil.Process()

    async def cycle(i: int) -> None:
        guest = f"guest{i}"
        slots = {"camera": "video", "microphone": "audio", "guest": "audio"}
        publisher = Publisher(engine, guest, video=False)
        await publisher.connect()
        sub = Subscriber(engine, f"sub{i}", slots, decode=False)
        await sub.connect({**FROM_T, "guest": (guest, "microphone")})
        await wait_for(lambda: sub.keyframes["camera"] > 0 and sub.frames["guest"] > 0, 10, f"cycle {i}'s media")
        await engine.close_peer(sub.peer_id)
        await engine.close_peer(guest)
        await sub.close()
        await publisher.close()

    async def batch(first: int, size: int = 10) -> None:
        await asyncio.gather(*(cycle(i) for i in range(first, first + size)))

    def counts() -> dict[str, int]:
        gc.collect()
        return {
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "fds": process.num_fds(),
            "udp": len(process.net_connections(kind="udp")),
            "rss_mb": process.memory_info().rss // 2**20,
        }

    await batch(1000)  # warm-up: executor threads, caches
    await asyncio.sleep(1.0)  # its close callbacks, before the baseline
    before = counts()
    start = time.monotonic()
    for first in range(0, 100, 10):
        await batch(first)
    await asyncio.sleep(1.5)  # aiortc/aioice close callbacks
    after = counts()
    print(f"100 cycles in {time.monotonic() - start:.1f} s: before {before} after {after}")
    assert after["tasks"] <= before["tasks"] + 3
    assert after["threads"] <= before["threads"] + 2
    assert after["fds"] <= before["fds"] + 5
    assert after["udp"] <= before["udp"] + 2
    assert after["rss_mb"] <= before["rss_mb"] + 60
    assert engine.stats()["subscribers"] == {}
    assert list(engine.stats()["tracks"]) == ["t/camera", "t/microphone"]
    assert engine._tracks[("t", "camera")].slots == ()


async def test_a_reoffer_adds_slots_to_an_open_subscriber(engine):
    await connected(engine, Publisher(engine, "t", "A"))
    sub = await connected(engine, Subscriber(engine, "s", {"camera": "video"}), {"camera": ("t", "camera")})
    await wait_for(frames_arrive(sub, "camera", 5, "A"), 10, "video")

    offer = await engine.open_subscriber("s", {"camera": "video", "microphone": "audio"})
    assert offer.count("m=") == 2
    await sub.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    added = next(t for t in sub.pc.getTransceivers() if t.mid == engine.slot_mids("s")["microphone"])
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    await engine.subscriber_answer("s", sub.pc.localDescription.sdp)
    engine.assign("s", "microphone", "t", "microphone")
    frames = await added.receiver.track.recv()  # decoded audio through the new slot
    assert frames.sample_rate == 48000
    frames = sub.frames["camera"]
    await wait_for(frames_arrive(sub, "camera", frames, "A"), 5, "video continuing")


async def test_a_sink_gets_the_encoded_packets_without_any_decoding(engine):
    """The recorder's way in: raw VP8/Opus packets of a published source, starting at a keyframe."""
    from media import EncodedPacket

    publisher = Publisher(engine, "teacher", "A")
    await connected(engine, publisher)
    got: dict[str, list[EncodedPacket]] = {"camera": [], "microphone": []}
    await asyncio.sleep(2)  # past the publisher's first keyframe: the sink's start must ask for one
    assert engine.add_sink("teacher", "camera", got["camera"].append)
    assert engine.add_sink("teacher", "microphone", got["microphone"].append)
    assert not engine.add_sink("nobody", "camera", got["camera"].append)
    await wait_for(
        lambda: any(p.keyframe for p in got["camera"]) and len(got["microphone"]) > 20,
        3,
        "a keyframe (requested) and audio at the sink",
    )
    assert all(p.kind == "video" for p in got["camera"]) and all(p.kind == "audio" for p in got["microphone"])
    engine.set_paused("teacher", "camera", True)
    await asyncio.sleep(0.3)  # packets already on their way
    count = len(got["camera"])
    await asyncio.sleep(0.5)  # measured: nothing more
    assert len(got["camera"]) == count  # a mute also stops what a sink (a recording) gets
