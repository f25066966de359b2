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
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from media._aiortc import add_sendonly_transceiver, use_host_addresses
from media.forwarder import EncodedPacket, PublishedTrack, Slot

# "a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ host"
_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+) (\d+) typ host", re.M)

log = logging.getLogger(__name__)

#: What each source carries.
SOURCE_KINDS = {"camera": "video", "screen": "video", "microphone": "audio"}
#: The steady REMB cap per video source; a publish connection is sent their sum.
DEFAULT_VIDEO_BITRATES = {"camera": 1_000_000, "screen": 1_500_000}
REMB_INTERVAL = 1.0

_CODECS = {"video": "video/vp8", "audio": "audio/opus"}


def codec_preferences(kind: str) -> list:
    """VP8 (+RTX for NACK repair) for video, Opus for audio: one codec per room, never transcoded."""
    capabilities = RTCRtpReceiver.getCapabilities(kind).codecs
    preferred = [c for c in capabilities if c.mimeType.lower() == _CODECS[kind]]
    if kind == "video":
        preferred += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return preferred


def offered_media(sdp: str) -> list[tuple[str, str | None]]:
    """(kind, mid) of every m-line of an SDP, in order."""
    media: list[tuple[str, str | None]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            media.append((line[2:].split(" ", 1)[0], None))
        elif line.startswith("a=mid:") and media:
            media[-1] = (media[-1][0], line[6:].strip())
    return media


def parse_candidate(candidate: dict | None):
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
        self.held: list = []

    async def add_candidate(self, candidate) -> None:
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
        self.remb_task: asyncio.Task | None = None


class _Subscriber(_Connection):
    def __init__(self, pc: RTCPeerConnection) -> None:
        super().__init__(pc)
        self.slots: dict[str, Slot] = {}
        self.transceivers: dict[str, Any] = {}


class MediaEngine:
    """Publish and subscribe connections by peer id; passthrough forwarding between them."""

    def __init__(self, *, ice_servers: list[dict] | None = None,
                 video_bitrates: dict[str, int] | None = None,
                 on_connection_state: Callable[[str, str, str], Any] | None = None,
                 host_addresses: list[str] | None = None, announced_address: str | None = None) -> None:
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

    # ------------------------------------------------------------------------------- publish
    async def publish(self, peer_id: str, offer_sdp: str, sources: dict[str, str]) -> str:
        """Answer a publisher's offer. `sources` maps each new audio/video mid to "camera",
        "microphone" or "screen". A later offer on the same peer renegotiates (e.g. adds a screen)."""
        publisher = self._publishers.get(peer_id)
        new_connection = publisher is None
        known_mids = set() if publisher is None else \
            {t.mid for t in publisher.pc.getTransceivers() if t.mid is not None}
        published = set() if publisher is None else set(publisher.tracks)
        added: list[tuple[str, str, str]] = []
        for kind, mid in offered_media(offer_sdp):
            if kind not in ("audio", "video") or mid in known_mids:
                continue
            source = sources.get(mid) if mid is not None else None
            if source is None:
                raise ValueError(f"offer m-line {mid!r} ({kind}) has no source")
            if SOURCE_KINDS.get(source) != kind:
                raise ValueError(f"source {source!r} cannot be a {kind} track")
            if source in published:
                raise ValueError(f"{peer_id} already publishes a {source}")
            published.add(source)
            added.append((kind, mid, source))
        if publisher is None:
            publisher = self._publishers[peer_id] = _Publisher(
                self._peer_connection(peer_id, "publish"))
        pending: list[tuple[Any, str, PublishedTrack]] = []
        try:
            for kind, mid, source in added:
                transceiver = publisher.pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(codec_preferences(kind))
                pending.append((transceiver, mid,
                                PublishedTrack(peer_id, source, kind, transceiver.receiver)))
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
            for subscriber in self._subscribers.values():
                for slot in subscriber.slots.values():
                    if slot.want == key:
                        slot.attach(track)
        await publisher.remote_description_set()
        if publisher.remb_task is None:
            publisher.remb_task = asyncio.ensure_future(self._send_remb(publisher))
        return self._announce(publisher.pc.localDescription.sdp)

    async def _send_remb(self, publisher: _Publisher) -> None:
        """One steady REMB per publish connection, covering all its video SSRCs (a cap that does
        not move: every >10 % move re-creates an aiortc publisher's encoder, i.e. a keyframe)."""
        while True:
            await asyncio.sleep(REMB_INTERVAL)
            video = [t for t in publisher.tracks.values()
                     if t.is_video and t.tap.media_ssrc is not None]
            if video:
                bitrate = sum(self._video_bitrates.get(t.source, 1_000_000) for t in video)
                try:
                    await video[0].tap.send_remb(bitrate, [t.tap.media_ssrc for t in video])
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
    async def open_subscriber(self, peer_id: str, slots: dict[str, str]) -> str:
        """The server's offer for a subscribe connection with one sendonly transceiver per slot
        (name -> "video" | "audio"). On an open connection, new slot names are added by a re-offer."""
        subscriber = self._subscribers.get(peer_id)
        new_connection = subscriber is None
        if subscriber is None:
            subscriber = _Subscriber(self._peer_connection(peer_id, "subscribe"))
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
                transceiver.setCodecPreferences(codec_preferences(kind))
                subscriber.slots[name] = Slot(peer_id, name, kind, transceiver.sender)
                subscriber.transceivers[name] = transceiver
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

    def assign(self, subscriber_id: str, slot: str, publisher_id: str | None,
               source: str | None) -> None:
        """Make a subscriber's slot carry (publisher_id, source), or nothing (None). It starts at a
        keyframe; sequence numbers and timestamps continue forward; no renegotiation. A source not
        published yet is picked up when it is."""
        target = self._subscribers[subscriber_id].slots[slot]
        if publisher_id is None or source is None:
            target.want = None
            target.attach(None)
            return
        if SOURCE_KINDS.get(source) != target.kind:
            raise ValueError(f"slot {slot!r} ({target.kind}) cannot carry a {source}")
        target.want = (publisher_id, source)
        target.attach(self._tracks.get(target.want))

    # ------------------------------------------------------------------------ both directions
    async def add_candidate(self, peer_id: str, direction: str, candidate: dict | None) -> None:
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
                track.close()
            await publisher.pc.close()
        self._paused = {key for key in self._paused if key[0] != peer_id}
        await self.close_subscriber(peer_id)

    async def close_subscriber(self, peer_id: str) -> None:
        """Close only a peer's subscribe connection (a client starting it afresh); publishing goes on."""
        subscriber = self._subscribers.pop(peer_id, None)
        if subscriber is not None:
            for slot in subscriber.slots.values():
                slot.close()
            await subscriber.pc.close()

    async def close(self) -> None:
        for peer_id in {*self._publishers, *self._subscribers}:
            await self.close_peer(peer_id)

    def stats(self) -> dict[str, Any]:
        """Per published track and per subscriber slot: packets, bytes, bitrate (bit/s), fps,
        loss (fraction), keyframes; slots also retransmissions, PLIs/NACKs received, rtt (s)."""
        return {
            "tracks": {f"{peer}/{source}": track.stats()
                       for (peer, source), track in self._tracks.items()},
            "subscribers": {peer: {name: slot.stats() for name, slot in subscriber.slots.items()}
                            for peer, subscriber in self._subscribers.items()},
        }

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
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self._ice_servers),
                                                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        callback = self._on_connection_state
        if callback is not None:
            @pc.on("connectionstatechange")
            def _state_changed() -> None:
                callback(peer_id, direction, pc.connectionState)
        return pc
