"""Two layers of one source through the engine: a slot carries the layer chosen for its subscriber and
switches without renegotiation; a slot with nothing to carry is silent."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import AudioStreamTrack
from aiortc.rtp import RtcpSrPacket

from media import MediaEngine
from tests.helpers import eventually
from tests.media.peers import PatternTrack, Publisher, Subscriber, wait_for


async def _publisher_with_layers(engine: MediaEngine) -> Publisher:
    """Pattern A on the camera, pattern B on its low layer (the picture tells which layer arrives)."""
    publisher = Publisher(engine, "teacher", video=False, audio=False)
    publisher._tracks = [
        ("camera", PatternTrack("A")),
        ("camera_low", PatternTrack("B")),
        ("microphone", AudioStreamTrack()),
    ]
    await publisher.connect()
    return publisher


async def test_a_slot_carries_the_layer_chosen_for_its_subscriber_and_switches_back():
    engine = MediaEngine()
    publisher = await _publisher_with_layers(engine)
    saver = Subscriber(engine, "saver", {"cam": "video"})
    normal = Subscriber(engine, "normal", {"cam": "video"})
    try:
        await saver.connect({"cam": ("teacher", "camera")})
        await normal.connect({"cam": ("teacher", "camera")})
        await wait_for(
            lambda: saver.last_pattern["cam"] == "A" and normal.last_pattern["cam"] == "A",
            15,
            "the high layer for both",
        )

        engine.set_low_only("saver", True)
        await wait_for(lambda: saver.last_pattern["cam"] == "B", 10, "the low layer for the data saver")
        seen_before = len(normal.patterns_seen["cam"])
        await asyncio.sleep(1.0)  # a second of the other subscriber's frames, checked
        assert set(normal.patterns_seen["cam"][seen_before:]) == {"A"}, "the other subscriber must not change"
        assert engine.link("saver")["layers"] == {"cam": "low"}
        assert engine.link("normal")["layers"] == {"cam": "high"}

        engine.set_low_only("saver", False)
        await wait_for(lambda: saver.last_pattern["cam"] == "A", 10, "the high layer again")
        # One stream all along: the switch rewrote SSRC and numbering, nothing was renegotiated.
        receiver = next(t.receiver for t in saver.pc.getTransceivers())
        assert len({s.source for s in receiver.getSynchronizationSources()}) <= 1
        assert engine.link("saver")["data_bytes"] > 0
    finally:
        await saver.close()
        await normal.close()
        await publisher.close()
        await engine.close()


async def test_a_low_layer_cannot_be_assigned_as_a_source_of_its_own():
    engine = MediaEngine()
    subscriber = Subscriber(engine, "s", {"cam": "video"})
    try:
        await subscriber.connect()
        try:
            engine.assign("s", "cam", "teacher", "camera_low")
        except ValueError:
            pass
        else:
            raise AssertionError("a low layer is chosen by the engine, never assigned")
    finally:
        await subscriber.close()
        await engine.close()


async def test_a_slot_that_carries_nothing_sends_no_rtcp():
    engine = MediaEngine()
    publisher = await _publisher_with_layers(engine)
    subscriber = Subscriber(engine, "s", {"cam": "video", "idle": "video"})
    reports = {"cam": 0, "idle": 0}
    try:
        await subscriber.connect({"cam": ("teacher", "camera")})
        mids = {mid: name for name, mid in engine.slot_mids("s").items()}
        for transceiver in subscriber.pc.getTransceivers():
            name, receiver = mids[transceiver.mid], transceiver.receiver
            original = receiver._handle_rtcp_packet

            async def counting(packet, name=name, original=original):
                if isinstance(packet, RtcpSrPacket):
                    reports[name] += 1
                await original(packet)

            receiver._handle_rtcp_packet = counting
        await wait_for(lambda: subscriber.last_pattern["cam"] == "A", 15, "the camera")
        await wait_for(lambda: reports["cam"] >= 3, 10, "sender reports on the live slot")
        assert reports["idle"] == 0, "an idle slot sent sender reports"
    finally:
        await subscriber.close()
        await publisher.close()
        await engine.close()


async def test_a_listener_on_a_lossy_link_makes_the_publisher_hear_of_the_loss():
    """The publisher's Opus encoder adds in-band FEC only for loss it hears of in receiver reports: the
    server passes its listeners' loss on (its own uplink here loses nothing)."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from bench.badlink import BadLink, rewrite_candidates, strip_candidates
    from tests.media.peers import CONFIG

    engine = MediaEngine()
    publisher = Publisher(engine, "teacher", video=False, audio=True)
    await publisher.connect()
    link = BadLink()
    link.down.set(loss=0.2)
    listener = RTCPeerConnection(CONFIG)
    try:
        offer = await engine.open_subscriber("student", {"voice": "audio"})
        engine.assign("student", "voice", "teacher", "microphone")
        await listener.setRemoteDescription(RTCSessionDescription(rewrite_candidates(offer, link), "offer"))
        await listener.setLocalDescription(await listener.createAnswer())
        await engine.subscriber_answer("student", strip_candidates(listener.localDescription.sdp))
        sender = publisher.pc.getSenders()[0]

        async def fraction_lost() -> float:
            stats = await sender.getStats()
            remote = [s for s in stats.values() if s.type == "remote-inbound-rtp"]
            return remote[0].fractionLost / 256 if remote else 0.0

        async def heard_loss() -> float | None:
            lost = await fraction_lost()
            return lost if lost >= 0.1 else None

        heard = await eventually(heard_loss, 15, "the publisher to hear of its listener's loss", step=0.5)
        assert heard >= 0.1, f"the publisher heard of {heard:.2f} loss, its listener loses 0.2"
        assert engine.link("student")["loss"] >= 0.1
    finally:
        await listener.close()
        await publisher.close()
        await engine.close()
        link.close()


@pytest.mark.timing  # measures the link over seconds: run in the quiet part (CPU starvation loses packets too)
async def test_after_a_network_outage_the_subscriber_stays_on_the_high_layer():
    """A 3 s outage is not congestion: when the network is back, the first receiver report counts every
    packet of the outage as lost, but the link carried the high layer before and carries it again."""
    engine = MediaEngine()
    publisher = await _publisher_with_layers(engine)
    subscriber = Subscriber(engine, "s", {"cam": "video", "mic": "audio"})
    try:
        await subscriber.connect({"cam": ("teacher", "camera"), "mic": ("teacher", "microphone")})
        await wait_for(lambda: subscriber.last_pattern["cam"] == "A", 15, "the high layer")
        await asyncio.sleep(2.0)  # a few receiver reports of a clean link

        slots = engine._subscribers["s"].slots.values()
        for slot in slots:  # the network eats everything the server sends to this subscriber
            slot.tap.send = lambda data: None
        await asyncio.sleep(3.0)
        for slot in slots:
            del slot.tap.send  # the network is back
        frames = subscriber.frames["cam"]
        await wait_for(lambda: subscriber.frames["cam"] > frames, 10, "video after the outage")

        seen = len(subscriber.patterns_seen["cam"])
        await asyncio.sleep(4.0)  # the reports that cover the outage arrive and are read
        assert engine.link("s")["layers"] == {"cam": "high"}, engine.link("s")
        assert set(subscriber.patterns_seen["cam"][seen:]) == {"A"}, "the outage was taken for congestion"
    finally:
        await subscriber.close()
        await publisher.close()
        await engine.close()
