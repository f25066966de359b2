"""MediaEngine: the SFU's public interface. One per process.

It knows peers by opaque string ids and nothing of classes, rooms or roles: the caller decides who
receives what by assigning subscriber slots to (publisher id, source) pairs.

Each peer has up to two connections:
- publish (the peer offers): `publish(peer, offer, {mid: source})` answers with VP8/Opus only.
  The server pre-creates one recvonly transceiver per offered m-line, with codec preferences, so the
  answer is restricted with public API; its RTP is taken before aiortc's jitter buffer and decoder.
  One REMB per publish connection, a steady cap (Chrome applies any REMB to the whole connection).
- subscribe (the server offers): `open_subscriber(peer, {slot: kind})` returns an offer with one
  sendonly transceiver per slot; `subscriber_answer` completes it. `assign` switches what a slot
  carries without renegotiation; calling `open_subscriber` again with new slot names renegotiates
  to add them (slots are never removed).
Trickled ICE candidates in either direction go through `add_candidate`; candidates that arrive
before the remote description are held until it is set.

Layers: a publisher may send a video source twice, `camera` and `camera_low` (`screen`, `screen_low`):
aiortc has no simulcast, so the browser sends a scaled-down clone as one more track. A slot is
assigned the main source; every TICK the engine chooses per subscriber which layer each slot carries
(media/links.py: from the subscriber's receiver reports and REMB; or always the low layer in data
saver mode) and switches layers at the new layer's keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from media._aiortc import add_sendonly_transceiver, use_host_addresses
from media.forwarder import EncodedPacket, PublishedTrack, Slot
from media.links import (
    AUDIO_COST,
    HIGH,
    LOW,
    MIN_PACKETS,
    OFF,
    OUTAGE,
    OUTAGE_LOSS,
    TICK,
    LinkControl,
    LinkReport,
    VideoSlot,
    allocate,
)
from media.pacer import Pacer

# "a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ host"
_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+) (\d+) typ host", re.M)

log = logging.getLogger(__name__)

#: What each source carries.
SOURCE_KINDS = {
    "camera": "video",
    "screen": "video",
    "microphone": "audio",
    "camera_low": "video",
    "screen_low": "video",
}
#: The low layer of a video source, published as a track of its own.
LOW_LAYERS = {"camera": "camera_low", "screen": "screen_low"}
#: The steady REMB cap per video source; a publish connection is sent their sum.
DEFAULT_VIDEO_BITRATES = {"camera": 1_000_000, "screen": 1_500_000, "camera_low": 150_000, "screen_low": 60_000}
#: Bytes on the wire per RTP packet beyond its payload (RTP header and extensions, SRTP tag, UDP, IP),
#: for the data a student's link used.
PACKET_OVERHEAD = 50
_RANK = {OFF: 0, LOW: 1, HIGH: 2}
PACE_HEADROOM = 1.15
FEC_LOSS_CAP = 0.2  # the most loss passed on to an audio publisher (more would only cost its bitrate)
#: A video layer costs at least this share of its nominal rate in the layer selection.
NOMINAL_SHARE = 0.8
REMB_INTERVAL = 1.0

_CODECS = {"video": "video/vp8", "audio": "audio/opus"}
#: Opus as a weak link needs it: in-band FEC (a lost packet is rebuilt from the next one) and DTX
#: (nothing sent in silence). In our answer to a publisher they ask its encoder for both; in our offer
#: to a subscriber they say its decoder may use them.
OPUS_PARAMETERS = {"minptime": 10, "useinbandfec": 1, "usedtx": 1}


def codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """VP8 (+RTX for NACK repair) for video, Opus for audio: one codec per room, never transcoded."""
    offered = RTCRtpReceiver.getCapabilities(kind)
    if offered is None:
        raise ValueError(f"no {kind} codecs")
    capabilities = offered.codecs
    preferred = [c for c in capabilities if c.mimeType.lower() == _CODECS[kind]]
    if kind == "video":
        preferred += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return preferred


def set_codecs(transceiver: Any, kind: str) -> None:
    """Codec preferences, with Opus's FEC and DTX parameters (setCodecPreferences only accepts the
    capabilities as they are, so the parameters are set on the copies it keeps)."""
    transceiver.setCodecPreferences(codec_preferences(kind))
    for codec in transceiver._codecs:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters = {**codec.parameters, **OPUS_PARAMETERS}


def offered_media(sdp: str) -> list[tuple[str, str | None]]:
    """(kind, mid) of every m-line of an SDP, in order."""
    media: list[tuple[str, str | None]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            media.append((line[2:].split(" ", 1)[0], None))
        elif line.startswith("a=mid:") and media:
            media[-1] = (media[-1][0], line[6:].strip())
    return media


def parse_candidate(candidate: dict[str, Any] | None) -> RTCIceCandidate | None:
    """A browser-style candidate dict ({"candidate", "sdpMid", "sdpMLineIndex"}) as an aiortc
    RTCIceCandidate; None (or an empty candidate string) is end-of-candidates."""
    if not candidate or not candidate.get("candidate"):
        return None
    parsed = candidate_from_sdp(re.sub(r"^(a=)?candidate:", "", candidate["candidate"]))
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    return parsed


class _Connection:
    """One RTCPeerConnection, with the trickled candidates held until the remote description."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.remote_set = False
        self.held: list[RTCIceCandidate | None] = []

    async def add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        if not self.remote_set:
            self.held.append(candidate)
            return
        try:
            await self.pc.addIceCandidate(candidate)
        except ValueError as error:  # e.g. after end-of-candidates
            log.debug("candidate ignored: %s", error)

    async def remote_description_set(self) -> None:
        self.remote_set = True
        held, self.held = self.held, []
        for candidate in held:
            await self.add_candidate(candidate)


class _Publisher(_Connection):
    def __init__(self, pc: RTCPeerConnection) -> None:
        super().__init__(pc)
        self.tracks: dict[str, PublishedTrack] = {}
        self.remb_task: asyncio.Task[None] | None = None


class _Subscriber(_Connection):
    def __init__(self, pc: RTCPeerConnection, peer_id: str = "") -> None:
        super().__init__(pc)
        self.peer_id = peer_id
        self.slots: dict[str, Slot] = {}
        self.transceivers: dict[str, Any] = {}
        self.priority: list[str] = []  # video slots, most important first (who loses its video last)
        self.link = LinkControl()
        self.low_only = False  # data saver: the low layers only
        self.pacer: Pacer | None = None  # while the link has a budget: its video is paced
        # slot -> (lost, highest sequence, arrival, bytes sent, packets sent, skipped) at its last report
        self.seen: dict[str, tuple[int, int, float, int, int, int]] = {}
        self.sent_seen: dict[str, tuple[int, int, int]] = {}  # slot -> (bytes, packets, resent) at the last tick
        self.outage: tuple[float, float] | None = None  # (from, to) of the last network outage its reports told of


def _new_in_report(slot: Slot, before: tuple[int, int, float, int, int, int]) -> tuple[int, int, float] | None:
    """(expected, lost, seconds) between the slot's last counted receiver report (`before`: see
    _Subscriber.seen) and its latest; None if no new packet was reported (or `before` is the first)."""
    lost_before, highest_before, report_before, _, _, skipped_before = before
    if slot.highest_sequence == highest_before or not highest_before:
        return None
    skipped = slot.skipped - skipped_before  # numbers a cut-over left out are no loss
    expected = ((slot.highest_sequence - highest_before) & 0xFFFFFFFF) - skipped
    if not 0 < expected < 0x10000:
        return None
    lost = max(0, min(slot.packets_lost - lost_before - skipped, expected))
    return expected, lost, slot.report_at - report_before


def _spans_outage(outage: tuple[float, float] | None, start: float, end: float) -> bool:
    """Whether a report covering start..end spans the middle of the last outage (its loss is the outage's)."""
    return outage is not None and start < (outage[0] + outage[1]) / 2 <= end


class MediaEngine:
    """Publish and subscribe connections by peer id; passthrough forwarding between them."""

    def __init__(
        self,
        *,
        ice_servers: list[dict[str, Any]] | None = None,
        video_bitrates: dict[str, int] | None = None,
        on_connection_state: Callable[[str, str, str], Any] | None = None,
        host_addresses: list[str] | None = None,
        announced_address: str | None = None,
    ) -> None:
        """ice_servers: [{"urls": ..., "username": ..., "credential": ...}], default none (no STUN
        lookup inside every setLocalDescription). on_connection_state(peer_id, "publish" |
        "subscribe", state) is called on every connection state change. host_addresses: the local
        addresses to offer candidates on (default: every interface, looked up once);
        announced_address: the address clients must use instead (a server behind 1:1 NAT)."""
        self.host_addresses = use_host_addresses(host_addresses)
        self._announced = announced_address
        self._ice_servers = [RTCIceServer(**server) for server in ice_servers or []]
        self._video_bitrates = {**DEFAULT_VIDEO_BITRATES, **(video_bitrates or {})}
        self._on_connection_state = on_connection_state
        self._publishers: dict[str, _Publisher] = {}
        self._subscribers: dict[str, _Subscriber] = {}
        self._tracks: dict[tuple[str, str], PublishedTrack] = {}
        self._paused: set[tuple[str, str]] = set()
        # track -> (bytes, packets, smoothed bit/s on the wire: payloads and PACKET_OVERHEAD per packet)
        self._costs: dict[PublishedTrack, tuple[int, int, float]] = {}
        self._adapt_task: asyncio.Task[None] | None = None
        self.selection_seconds = 0.0  # CPU time spent choosing layers (the bench reports its cost)
        # Bytes of connections already closed, so that the totals only ever grow (Prometheus counters).
        self._closed_received: Counter[str] = Counter()  # by source
        self._closed_sent: Counter[str] = Counter()  # by slot name

    # ------------------------------------------------------------------------------- publish
    async def publish(self, peer_id: str, offer_sdp: str, sources: dict[str, str]) -> str:
        """Answer a publisher's offer. `sources` maps each new audio/video mid to "camera",
        "microphone" or "screen". A later offer on the same peer renegotiates (e.g. adds a screen)."""
        publisher = self._publishers.get(peer_id)
        new_connection = publisher is None
        known_mids = (
            set() if publisher is None else {t.mid for t in publisher.pc.getTransceivers() if t.mid is not None}
        )
        published = set() if publisher is None else set(publisher.tracks)
        added: list[tuple[str, str, str]] = []
        for kind, mid in offered_media(offer_sdp):
            if kind not in ("audio", "video") or mid in known_mids:
                continue
            source = sources.get(mid) if mid is not None else None
            if mid is None or source is None:
                raise ValueError(f"offer m-line {mid!r} ({kind}) has no source")
            if SOURCE_KINDS.get(source) != kind:
                raise ValueError(f"source {source!r} cannot be a {kind} track")
            if source in published:
                raise ValueError(f"{peer_id} already publishes a {source}")
            published.add(source)
            added.append((kind, mid, source))
        if publisher is None:
            publisher = self._publishers[peer_id] = _Publisher(self._peer_connection(peer_id, "publish"))
        pending: list[tuple[Any, str, PublishedTrack]] = []
        try:
            for kind, mid, source in added:
                transceiver = publisher.pc.addTransceiver(kind, direction="recvonly")
                set_codecs(transceiver, kind)
                pending.append((transceiver, mid, PublishedTrack(peer_id, source, kind, transceiver.receiver)))
            await publisher.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            for transceiver, mid, _ in pending:
                if transceiver.mid != mid:
                    raise ValueError(f"m-line {mid!r} did not match its transceiver")
            await publisher.pc.setLocalDescription(await publisher.pc.createAnswer())
        except Exception:
            for _, _, track in pending:
                track.close()
            if new_connection:
                self._publishers.pop(peer_id, None)
                await publisher.pc.close()
            raise
        for _, _, track in pending:
            key = (peer_id, track.source)
            publisher.tracks[track.source] = track
            self._tracks[key] = track
            track.set_paused(key in self._paused)
        self._resolve_publisher(peer_id)
        await publisher.remote_description_set()
        if publisher.remb_task is None:
            publisher.remb_task = asyncio.ensure_future(self._send_remb(publisher))
        return self._announce(publisher.pc.localDescription.sdp)

    async def _send_remb(self, publisher: _Publisher) -> None:
        """One steady REMB per publish connection, covering all its video SSRCs (a cap that does
        not move: every >10 % move re-creates an aiortc publisher's encoder, i.e. a keyframe)."""
        while True:
            await asyncio.sleep(REMB_INTERVAL)
            video = {
                t: t.tap.media_ssrc for t in publisher.tracks.values() if t.is_video and t.tap.media_ssrc is not None
            }
            if video:
                bitrate = sum(self._video_bitrates.get(t.source, 1_000_000) for t in video)
                try:
                    await next(iter(video)).tap.send_remb(bitrate, list(video.values()))
                except ConnectionError:
                    pass

    def set_paused(self, publisher_id: str, source: str, paused: bool) -> None:
        """Stop (a mute, a revoked permission) or resume forwarding a source, at once. Remembered
        until the publisher's close_peer, so it also applies to a track not published yet."""
        key = (publisher_id, source)
        if paused:
            self._paused.add(key)
        else:
            self._paused.discard(key)
        track = self._tracks.get(key)
        if track is not None:
            track.set_paused(paused)

    # ----------------------------------------------------------------------------------- sinks
    def add_sink(self, publisher_id: str, source: str, sink: Callable[[EncodedPacket], None]) -> bool:
        """Give `sink` every packet of a published source while it is forwarded (not while paused);
        video starts with a keyframe request. False if that source is not published."""
        track = self._tracks.get((publisher_id, source))
        if track is None:
            return False
        track.add_sink(sink)
        return True

    def remove_sink(self, publisher_id: str, source: str, sink: Callable[[EncodedPacket], None]) -> None:
        track = self._tracks.get((publisher_id, source))
        if track is not None:
            track.remove_sink(sink)

    def request_keyframe(self, publisher_id: str, source: str) -> None:
        track = self._tracks.get((publisher_id, source))
        if track is not None and track.keyframes is not None:
            track.keyframes.request()

    # ----------------------------------------------------------------------------- subscribe
    async def open_subscriber(self, peer_id: str, slots: dict[str, str], priority: list[str] | None = None) -> str:
        """The server's offer for a subscribe connection with one sendonly transceiver per slot
        (name -> "video" | "audio"). On an open connection, new slot names are added by a re-offer.
        `priority`: the video slots in the order they keep their video on a weak link (default: as given)."""
        subscriber = self._subscribers.get(peer_id)
        new_connection = subscriber is None
        if subscriber is None:
            subscriber = _Subscriber(self._peer_connection(peer_id, "subscribe"), peer_id)
        for name, kind in slots.items():
            if kind not in ("audio", "video"):
                raise ValueError(f"slot {name!r}: kind must be 'audio' or 'video', not {kind!r}")
            if name in subscriber.slots and subscriber.slots[name].kind != kind:
                raise ValueError(f"slot {name!r} is already a {subscriber.slots[name].kind} slot")
        if new_connection:
            self._subscribers[peer_id] = subscriber
        for name, kind in slots.items():
            if name not in subscriber.slots:
                transceiver = add_sendonly_transceiver(subscriber.pc, kind)
                set_codecs(transceiver, kind)
                subscriber.slots[name] = Slot(peer_id, name, kind, transceiver.sender)
                subscriber.transceivers[name] = transceiver
        video = [name for name, slot in subscriber.slots.items() if slot.kind == "video"]
        subscriber.priority = [n for n in priority or [] if n in video] + [
            n for n in video if n not in (priority or [])
        ]
        if self._adapt_task is None:
            self._adapt_task = asyncio.ensure_future(self._adapt())
        await subscriber.pc.setLocalDescription(await subscriber.pc.createOffer())
        return self._announce(subscriber.pc.localDescription.sdp)

    def slot_mids(self, peer_id: str) -> dict[str, str]:
        """Slot name -> mid of its m-line in the subscribe offer (for the client to tell slots apart)."""
        subscriber = self._subscribers[peer_id]
        return {name: transceiver.mid for name, transceiver in subscriber.transceivers.items()}

    async def subscriber_answer(self, peer_id: str, answer_sdp: str) -> None:
        subscriber = self._subscribers[peer_id]
        await subscriber.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        await subscriber.remote_description_set()

    def assign(self, subscriber_id: str, slot: str, publisher_id: str | None, source: str | None) -> None:
        """Make a subscriber's slot carry (publisher_id, source), or nothing (None). It starts at a
        keyframe; sequence numbers and timestamps continue forward; no renegotiation. A source not
        published yet is picked up when it is."""
        target = self._subscribers[subscriber_id].slots[slot]
        if publisher_id is None or source is None:
            target.want = None
            target.attach(None)
            return
        if SOURCE_KINDS.get(source) != target.kind or source in LOW_LAYERS.values():
            raise ValueError(f"slot {slot!r} ({target.kind}) cannot carry a {source}")
        target.want = (publisher_id, source)
        target.attach(self._layer_track(target))

    def set_low_only(self, subscriber_id: str, low_only: bool) -> None:
        """Data saver: the subscriber's slots carry low layers only (where a source has one)."""
        subscriber = self._subscribers.get(subscriber_id)
        if subscriber is None or subscriber.low_only == low_only:
            return
        subscriber.low_only = low_only
        self._choose_layers(subscriber)

    def link(self, subscriber_id: str) -> dict[str, Any] | None:
        """What a subscriber's link gets now: each video slot's layer, the loss seen, the budget (bit/s,
        None: unlimited) and the data its subscribe connection used (bytes, headers included)."""
        subscriber = self._subscribers.get(subscriber_id)
        if subscriber is None:
            return None
        layers = {
            name: slot.layer
            for name, slot in subscriber.slots.items()
            if slot.kind == "video" and slot.want is not None and self._layers(slot) != (None, None)
        }
        data = sum(slot.meter.bytes + PACKET_OVERHEAD * slot.meter.packets for slot in subscriber.slots.values())
        return {
            "layers": layers,
            "loss": round(subscriber.link.loss, 4),
            "budget": subscriber.link.budget,
            "low_only": subscriber.low_only,
            "data_bytes": data,
        }

    def published_bytes(self, publisher_id: str) -> int:
        """Bytes a publisher has sent us (headers included)."""
        publisher = self._publishers.get(publisher_id)
        if publisher is None:
            return 0
        return sum(t.meter.bytes + PACKET_OVERHEAD * t.meter.packets for t in publisher.tracks.values())

    # ---------------------------------------------------------------------------------- layers
    def _layers(self, slot: Slot) -> tuple[PublishedTrack | None, PublishedTrack | None]:
        """(high, low) tracks of what a slot is assigned; either may be missing."""
        if slot.want is None:
            return None, None
        publisher, source = slot.want
        low = LOW_LAYERS.get(source)
        return self._tracks.get(slot.want), self._tracks.get((publisher, low)) if low else None

    def _layer_track(self, slot: Slot) -> PublishedTrack | None:
        high, low = self._layers(slot)
        if slot.layer == OFF:
            return None
        return (low or high) if slot.layer == LOW else (high or low)

    def _resolve_publisher(self, publisher_id: str) -> None:
        for subscriber in self._subscribers.values():
            for slot in subscriber.slots.values():
                if slot.want is not None and slot.want[0] == publisher_id:
                    slot.switch(self._layer_track(slot))

    def _choose_layers(self, subscriber: _Subscriber, report: LinkReport | None = None) -> None:
        """Update the subscriber's link control with this tick's report (if any) and give each video
        slot the layer that fits."""
        slots: list[VideoSlot] = []
        for name in subscriber.priority:
            slot = subscriber.slots[name]
            high, low = self._layers(slot)
            if high is not None or low is not None:
                slots.append(VideoSlot(name, self._cost(high), self._cost(low)))
        audio = sum(
            max(self._cost(s.track) or 0.0, 0.0) for s in subscriber.slots.values() if s.kind == "audio" and s.live
        )
        if report is not None:
            subscriber.link.update(time.monotonic(), report, audio, slots)
            log.debug(
                "link of %s: %d/%d lost, sent %.0f bit/s, delivered %s, remb %s, budget %s",
                subscriber.peer_id,
                report.lost,
                report.expected,
                report.sent_bitrate,
                report.delivered,
                report.remb,
                subscriber.link.budget,
            )
        keep = {name: subscriber.slots[name].layer for name in subscriber.priority}
        choice = allocate(subscriber.link.budget, audio, slots, subscriber.low_only, keep)
        if report is not None and subscriber.link.budget is not None and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "layers of %s: %s; audio %.0f, costs %s",
                subscriber.peer_id,
                {
                    name: (layer, subscriber.slots[name].live, subscriber.slots[name].pending is not None)
                    for name, layer in choice.items()
                },
                audio,
                slots,
            )
        congested = subscriber.link.budget is not None
        for name, layer in choice.items():
            slot = subscriber.slots[name]
            if slot.layer != layer:
                down = _RANK[layer] < _RANK[slot.layer]
                slot.layer = layer
                if down and congested:
                    slot.cut_over(self._layer_track(slot))  # at once: the old layer overflows the link
                else:
                    slot.switch(self._layer_track(slot))  # without a gap, at the new layer's keyframe
        self._pace(subscriber)

    def _pace(self, subscriber: _Subscriber) -> None:
        """Video at PACE_HEADROOM times what the chosen layers send: the layer choice keeps the average
        within the link, the pacer spreads a keyframe's burst over the next half second instead of
        letting it overflow the link's queue. No pacer on a link without a budget."""
        budget = subscriber.link.budget
        if budget is None:
            if subscriber.pacer is not None:
                subscriber.pacer.close()
                subscriber.pacer = None
                for slot in subscriber.slots.values():
                    slot.pacer = None
            return
        video = sum(
            self._cost(slot.track) or 0.0
            for slot in subscriber.slots.values()
            if slot.kind == "video" and slot.track is not None
        )
        rate = max(PACE_HEADROOM * video, 50_000.0)
        if subscriber.pacer is None:
            subscriber.pacer = Pacer(rate)
            for slot in subscriber.slots.values():
                if slot.kind == "video":
                    slot.pacer = subscriber.pacer
        else:
            subscriber.pacer.set_rate(rate)

    def _cost(self, track: PublishedTrack | None) -> float | None:
        """What forwarding a track costs a link, bit/s: smoothed over several seconds, and a video track
        between most of its nominal rate and that rate (a still slide costs little until the slide
        changes; keyframes we ask for double a low layer's rate for a while: a slot must not flap
        with either)."""
        if track is None:
            return None
        smoothed = self._costs.get(track, (0, 0, 0.0))[2]
        if track.kind == "audio":
            return smoothed or AUDIO_COST
        nominal = self._video_bitrates.get(track.source, 1_000_000)
        # Above its nominal rate only while we ask it for keyframes (a subscriber starting again).
        return min(max(smoothed, NOMINAL_SHARE * nominal), 1.1 * nominal)

    def _report_audio_loss(self) -> None:
        """Tell each audio publisher the worst loss among its listeners (at most FEC_LOSS_CAP), in the
        receiver reports we send it: a browser's Opus encoder then adds in-band FEC for them."""
        worst: dict[PublishedTrack, float] = {}
        for subscriber in self._subscribers.values():
            for slot in subscriber.slots.values():
                track = slot.track
                if slot.kind == "audio" and track is not None:
                    worst[track] = max(worst.get(track, 0.0), subscriber.link.loss)
        for track in self._tracks.values():
            if track.kind == "audio":
                track.tap.downstream_loss = min(worst.get(track, 0.0), FEC_LOSS_CAP)

    def _measure_costs(self, elapsed: float) -> None:
        costs = {}
        for track in self._tracks.values():
            meter = track.meter
            bytes_before, packets_before, smoothed = self._costs.get(track, (meter.bytes, meter.packets, 0.0))
            wire = (meter.bytes - bytes_before) + PACKET_OVERHEAD * (meter.packets - packets_before)
            rate = 8 * wire / elapsed if elapsed > 0 else 0.0
            costs[track] = (meter.bytes, meter.packets, rate if not smoothed else 0.8 * smoothed + 0.2 * rate)
        self._costs = costs

    def _report(self, subscriber: _Subscriber, elapsed: float) -> LinkReport:
        """What the subscriber's receiver reports said since the last tick, and what we sent."""
        report = LinkReport()
        sent_bits = 0.0
        delivered = 0.0
        remb_groups: dict[tuple[int, ...], tuple[int, float]] = {}
        windows = {
            name: _new_in_report(slot, subscriber.seen[name])
            for name, slot in subscriber.slots.items()
            if name in subscriber.seen
        }
        self._note_outage(subscriber, windows)
        for name, slot in subscriber.slots.items():
            meter = slot.meter
            before = subscriber.seen.get(
                name,
                (slot.packets_lost, slot.highest_sequence, slot.report_at, meter.bytes, meter.packets, slot.skipped),
            )
            _, highest_before, report_before, bytes_before, packets_before, _ = before
            window = windows.get(name)
            if window is not None and not _spans_outage(subscriber.outage, report_before, slot.report_at):
                expected, lost, span = window
                report.expected += expected
                report.lost += lost
                packets, size = meter.packets - packets_before, meter.bytes - bytes_before
                mean = size / packets if packets else (meter.bytes / meter.packets if meter.packets else 0)
                if span > 0.2:  # received packets between two reports, over the time between them
                    delivered += (expected - lost) * (mean + PACKET_OVERHEAD) * 8 / span
            bytes_then, packets_then, resent_then = subscriber.sent_seen.get(
                name, (meter.bytes, meter.packets, slot.retransmissions.retransmitted)
            )
            subscriber.sent_seen[name] = (meter.bytes, meter.packets, slot.retransmissions.retransmitted)
            sent = 8 * (meter.bytes - bytes_then)
            sent_bits += sent
            if slot.kind == "video":
                report.sent_packets += meter.packets - packets_then
                report.resent += slot.retransmissions.retransmitted - resent_then
            if slot.remb is not None and slot.remb_fresh:
                slot.remb_fresh = False
                bitrate, bits = remb_groups.get(slot.remb_ssrcs, (slot.remb, 0.0))
                remb_groups[slot.remb_ssrcs] = (bitrate, bits + sent)
            if slot.highest_sequence != highest_before or name not in subscriber.seen:
                subscriber.seen[name] = (
                    slot.packets_lost,
                    slot.highest_sequence,
                    slot.report_at,
                    meter.bytes,
                    meter.packets,
                    slot.skipped,
                )
        if report.expected >= MIN_PACKETS:
            report.delivered = delivered
        if elapsed > 0:
            report.sent_bitrate = sent_bits / elapsed
            ratios = [remb / (bits / elapsed) for remb, bits in remb_groups.values() if bits > 0]
            if ratios:  # a REMB covers the streams it lists: scale the shortest one to the whole link
                report.remb = report.sent_bitrate * min(ratios)
        return report

    @staticmethod
    def _note_outage(subscriber: _Subscriber, windows: dict[str, tuple[int, int, float] | None]) -> None:
        """A slot's new report that covers over OUTAGE seconds and lost most of them tells of a network
        outage (now over), not of congestion: its reports, and those of the other slots that span it, are
        read as a new baseline. Any slot may tell first: under load, the microphone's report can come a tick
        before the camera's, and a starved camera sends too few packets in an outage to tell. `windows`:
        each slot's new report (_new_in_report)."""
        for name, window in windows.items():
            if window is None:
                continue
            expected, lost, span = window
            if span > OUTAGE and expected >= MIN_PACKETS and lost > OUTAGE_LOSS * expected:
                log.debug(
                    "link of %s: %.1f s without packets (%d/%d lost): an outage",
                    subscriber.peer_id,
                    span,
                    lost,
                    expected,
                )
                at = subscriber.slots[name].report_at
                subscriber.outage = (at - span, at)

    async def _adapt(self) -> None:
        """Every TICK: measure what each track costs, and choose every subscriber's layers."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            elapsed, last = now - last, now
            started = time.process_time()
            try:
                self._measure_costs(elapsed)
                for subscriber in list(self._subscribers.values()):
                    self._choose_layers(subscriber, self._report(subscriber, elapsed))
                self._report_audio_loss()
            except Exception:  # noqa: BLE001 - a bad report must not end layer selection for everyone
                log.exception("layer selection failed this tick")
            self.selection_seconds += time.process_time() - started

    # ------------------------------------------------------------------------ both directions
    async def add_candidate(self, peer_id: str, direction: str, candidate: dict[str, Any] | None) -> None:
        """A trickled ICE candidate of the peer's "publish" or "subscribe" connection (None or an
        empty candidate: end-of-candidates). Candidates of unknown connections are ignored."""
        if direction not in ("publish", "subscribe"):
            raise ValueError(f"direction must be 'publish' or 'subscribe', not {direction!r}")
        connections = self._publishers if direction == "publish" else self._subscribers
        connection = connections.get(peer_id)
        if connection is None:
            log.debug("candidate for unknown %s connection of %s ignored", direction, peer_id)
            return
        await connection.add_candidate(parse_candidate(candidate))

    async def close_peer(self, peer_id: str) -> None:
        """Close both connections of a peer and everything they run. Slots of other subscribers
        assigned to its sources keep the assignment and resume if the peer publishes again."""
        publisher = self._publishers.pop(peer_id, None)
        if publisher is not None:
            if publisher.remb_task is not None:
                publisher.remb_task.cancel()
            for source, track in publisher.tracks.items():
                self._tracks.pop((peer_id, source), None)
                self._closed_received[source] += track.meter.bytes
                track.close()
            await publisher.pc.close()
        self._paused = {key for key in self._paused if key[0] != peer_id}
        await self.close_subscriber(peer_id)

    async def close_subscriber(self, peer_id: str) -> None:
        """Close only a peer's subscribe connection (a client starting it afresh); publishing goes on."""
        subscriber = self._subscribers.pop(peer_id, None)
        if subscriber is not None:
            if subscriber.pacer is not None:
                subscriber.pacer.close()
            for slot in subscriber.slots.values():
                self._closed_sent[slot.name] += slot.meter.bytes
                slot.close()
            await subscriber.pc.close()

    async def close(self) -> None:
        if self._adapt_task is not None:
            self._adapt_task.cancel()
            self._adapt_task = None
        for peer_id in {*self._publishers, *self._subscribers}:
            await self.close_peer(peer_id)

    def stats(self) -> dict[str, Any]:
        """Per published track and per subscriber slot: packets, bytes, bitrate (bit/s), fps,
        loss (fraction), keyframes; slots also retransmissions, PLIs/NACKs received, rtt (s)."""
        return {
            "selection_seconds": round(self.selection_seconds, 3),
            "tracks": {f"{peer}/{source}": track.stats() for (peer, source), track in self._tracks.items()},
            "subscribers": {
                peer: {name: slot.stats() for name, slot in subscriber.slots.items()}
                for peer, subscriber in self._subscribers.items()
            },
        }

    def totals(self) -> dict[str, dict[str, int]]:
        """Bytes received per source and sent per slot name since the engine started, closed connections
        included: they only grow, and their labels are bounded (sources and slot names, not peers)."""
        received, sent = Counter(self._closed_received), Counter(self._closed_sent)
        for (_, source), track in self._tracks.items():
            received[source] += track.meter.bytes
        for subscriber in self._subscribers.values():
            for name, slot in subscriber.slots.items():
                sent[name] += slot.meter.bytes
        return {"received_bytes": dict(received), "sent_bytes": dict(sent)}

    # ------------------------------------------------------------------------------- helpers
    def _announce(self, sdp: str) -> str:
        """Host candidates carry the announced address, if one is configured (like mediasoup's
        announcedIp): clients reach the server through its public address, the port is the same."""
        if not self._announced:
            return sdp
        return _HOST_CANDIDATE.sub(lambda m: f"{m.group(1)}{self._announced} {m.group(3)} typ host", sdp)

    def _peer_connection(self, peer_id: str, direction: str) -> RTCPeerConnection:
        # max-bundle: with aiortc's default ("balanced"), a second transceiver of a kind is bound to
        # the first one's transport, which the answer's BUNDLE then discards: its media never flows.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=list(self._ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        callback = self._on_connection_state
        if callback is not None:

            @pc.on("connectionstatechange")
            def _state_changed() -> None:
                callback(peer_id, direction, pc.connectionState)

        return pc
