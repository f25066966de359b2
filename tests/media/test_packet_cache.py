"""NACKs answered from one packet cache per published track (media/packetcache.py, media/retransmit.py).

Unit level: a PublishedTrack and two subscriber Slots built on unconnected aiortc objects, their sends
recorded. End to end: real aiortc peers over loopback, each subscriber NACKing a packet it received.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket

from media import MediaEngine
from media._aiortc import ReceiverTap
from media.forwarder import PublishedTrack, Slot
from media.packetcache import PacketCache
from media.rtp import ABS_SEND_TIME_URI, MID_URI, parse
from tests.media.peers import Publisher, wait_for

VP8, RTX = 96, 97
KEYFRAME = b"\x10\x00" + bytes(50)  # VP8 descriptor S=1, then a key frame header (P=0)
DELTA = b"\x00\x01" + bytes(50)


def packet(sequence: int, payload: bytes, marker: int = 0) -> RtpPacket:
    return RtpPacket(payload_type=VP8, marker=marker, sequence_number=sequence, timestamp=9000, ssrc=1, payload=payload)


def ready_slot(pc: RTCPeerConnection, name: str) -> tuple[Slot, list[bytes]]:
    """A video slot whose tap is negotiated (VP8 + RTX) and records what it sends."""
    slot = Slot(name, "camera", "video", pc.addTransceiver("video", direction="sendonly").sender)
    sent: list[bytes] = []
    slot.tap.send = sent.append
    slot.tap.payload_type, slot.tap.rtx_payload_type = VP8, RTX
    slot.tap.extension_ids, slot.tap.mid = {MID_URI: 1, ABS_SEND_TIME_URI: 2}, "0"
    slot.tap.ready = True
    slot._on_ready()
    return slot, sent


async def test_a_nack_is_answered_for_each_subscriber_from_the_one_cached_copy():
    pcs = [RTCPeerConnection() for _ in range(3)]
    try:
        track = PublishedTrack("t", "camera", "video", pcs[0].addTransceiver("video", direction="recvonly").receiver)
        (a, sent_a), (b, sent_b) = ready_slot(pcs[1], "a"), ready_slot(pcs[2], "b")
        a.attach(track)
        b.attach(track)
        track.on_packet(packet(1000, KEYFRAME))
        lost = packet(1001, DELTA + b"lost", marker=1)
        track.on_packet(lost)
        track.on_packet(packet(1002, DELTA))

        answers = []
        for slot, sent in ((a, sent_a), (b, sent_b)):
            assert len(sent) == 3
            original = parse(sent[1])  # what this subscriber got as source packet 1001
            assert original.payload == lost.payload
            slot._on_nack([original.sequence])
            rtx = parse(sent[3])
            assert (rtx.payload_type, rtx.ssrc) == (RTX, slot.tap.rtx_ssrc)
            # RFC 4588: the slot's own sequence number, then the payload as forwarded
            assert int.from_bytes(rtx.payload[:2], "big") == original.sequence
            assert rtx.payload[2:] == lost.payload
            assert (rtx.timestamp, rtx.marker, rtx.extensions) == (
                original.timestamp,
                original.marker,
                original.extensions,
            )
            answers.append(original.sequence)
            assert slot.stats()["retransmitted"] == 1
        assert answers[0] != answers[1]  # each slot numbers on its own (random start)

        # One copy, the track's: the slots keep no packet, and read what the cache holds now.
        for slot in (a, b):
            assert not any(isinstance(value, (bytes, PacketCache)) for value in vars(slot.retransmissions).values())
        track.cache.put(packet(1001, DELTA + b"again", marker=1), 0)
        for slot, sent, sequence in ((a, sent_a, answers[0]), (b, sent_b, answers[1])):
            slot.retransmissions.resent_at[sequence % slot.RING] = 0.0  # (past the half round trip)
            slot._on_nack([sequence])
            assert parse(sent[-1]).payload[2:] == DELTA + b"again"
        a.close()
        b.close()
        track.close()
    finally:
        await asyncio.gather(*(pc.close() for pc in pcs))


async def test_a_nack_after_a_layer_switch_reads_the_old_layers_cache():
    """A slot's numbering runs on across a switch; a NACK for a packet of the layer before is answered
    from that layer's cache with the offsets it was forwarded with."""
    pcs = [RTCPeerConnection() for _ in range(3)]
    try:
        high = PublishedTrack("t", "camera", "video", pcs[0].addTransceiver("video", direction="recvonly").receiver)
        low = PublishedTrack("t", "camera_low", "video", pcs[0].addTransceiver("video", direction="recvonly").receiver)
        slot, sent = ready_slot(pcs[1], "a")
        slot.attach(high)
        high.on_packet(packet(5000, KEYFRAME))
        high.on_packet(packet(5001, DELTA + b"high", marker=1))
        slot.switch(low)
        low.on_packet(packet(70, KEYFRAME))  # the switch completes at the low layer's keyframe
        low.on_packet(packet(71, DELTA + b"low", marker=1))
        assert slot.track is low and len(sent) == 4
        before, after = parse(sent[1]), parse(sent[3])
        assert after.sequence == (before.sequence + 2) & 0xFFFF  # numbering continues
        slot._on_nack([before.sequence, after.sequence])
        assert [parse(data).payload[2:] for data in sent[4:]] == [DELTA + b"high", DELTA + b"low"]
        slot.close()
        high.close()
        low.close()
    finally:
        await asyncio.gather(*(pc.close() for pc in pcs))


class RecordingSubscriber:
    """An aiortc subscriber of one video slot that keeps every payload it receives, by sequence number
    (RTX unwrapped by its ReceiverTap), and can NACK one."""

    def __init__(self, engine: MediaEngine, peer_id: str) -> None:
        self.engine, self.peer_id = engine, peer_id
        self.pc = RTCPeerConnection()
        self.payloads: dict[int, list[bytes]] = {}

    async def connect(self) -> None:
        offer = await self.engine.open_subscriber(self.peer_id, {"camera": "video"})
        self.engine.assign(self.peer_id, "camera", "t", "camera")
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        receiver = self.pc.getTransceivers()[0].receiver
        self.tap = ReceiverTap(receiver, "video", self._received)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.engine.subscriber_answer(self.peer_id, self.pc.localDescription.sdp)

    def _received(self, packet: RtpPacket) -> None:
        self.payloads.setdefault(packet.sequence_number, []).append(packet.payload)

    async def nack(self, sequence: int) -> None:
        await self.tap.receiver._send_rtcp_nack(self.tap.media_ssrc, [sequence])


async def test_real_subscribers_get_their_nacked_packet_again_over_loopback():
    """Two aiortc subscribers each NACK a packet they received; each gets it again as RTX, unwrapped by
    its receiver to its own sequence number with the same payload."""
    engine = MediaEngine()
    publisher = Publisher(engine, "t", "A", audio=False)
    subs = [RecordingSubscriber(engine, f"s{i}") for i in range(2)]
    try:
        await publisher.connect()
        for sub in subs:
            await sub.connect()
        await wait_for(lambda: all(len(sub.payloads) > 50 for sub in subs), 10, "video at both subscribers")
        for sub in subs:
            sequence = sorted(sub.payloads)[len(sub.payloads) // 2]
            await sub.nack(sequence)
            await wait_for(lambda: len(sub.payloads[sequence]) == 2, 5, f"{sub.peer_id}'s retransmission")
            assert sub.payloads[sequence][0] == sub.payloads[sequence][1]
        stats = engine.stats()["subscribers"]
        assert [stats[sub.peer_id]["camera"]["retransmitted"] for sub in subs] == [1, 1]
        assert engine.stats()["tracks"]["t/camera"]["subscribers"] == 2
    finally:
        for sub in subs:
            await sub.pc.close()
        await publisher.close()
        await engine.close()


async def test_what_is_held_for_nacks_grows_with_tracks_not_subscribers():
    """2000 packets of 1,100 bytes forwarded to 1 and to 20 slots: the track's cache holds the last 512
    (~0.6 MB) either way; each slot adds only its fixed table (allocated when it is built). With a ring
    of packets per slot, each added slot held ~73 KB more (measured with this test's method)."""

    async def held_by_forwarding(slots: int) -> int:
        pcs = [RTCPeerConnection() for _ in range(slots + 1)]
        try:
            track = PublishedTrack(
                "t", "camera", "video", pcs[0].addTransceiver("video", direction="recvonly").receiver
            )
            for i, pc in enumerate(pcs[1:]):
                slot = ready_slot(pc, f"s{i}")[0]
                slot.tap.send = lambda data: None  # (not recorded: the sent packets would be held)
                slot.attach(track)
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for i in range(2000):
                    payload = (KEYFRAME[:2] if i == 0 else DELTA[:2]) + bytes([i & 0xFF]) * 1098
                    track.on_packet(packet(1000 + i, payload, marker=int(i % 30 == 29)))
                gc.collect()
                return tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
        finally:
            await asyncio.gather(*(pc.close() for pc in pcs))

    one, twenty = await held_by_forwarding(1), await held_by_forwarding(20)
    assert 512 * 1100 <= one < 700_000, one
    assert twenty - one < 100_000, (one, twenty)  # (with a ring per slot: ~1.4 MB)
