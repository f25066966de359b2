"""A participant's media as an aiortc client, over the live room's Socket.IO protocol (rtc:*)."""

from __future__ import annotations

import asyncio

from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription

from bench.layered import LayerTrack
from tests.live import LiveClient
from tests.media.peers import CONFIG, PatternTrack, which_pattern


class RoomPeer:
    """A participant's media as an aiortc client: publish (we offer), subscribe (the server offers)."""

    def __init__(self, client: LiveClient):
        self.client = client
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.slot_of_mid: dict[str, str] = {}
        self.patterns: dict[str, list[str | None]] = {}  # slot → patterns of decoded frames
        self.audio_frames: dict[str, int] = {}
        self.tasks: list[asyncio.Task] = []

    async def publish(
        self, pattern: str | None = "A", audio: bool = True, noise: bool = False, replay: bool = False
    ) -> None:
        """Camera (`pattern`, encoded live) and microphone. `replay`: the camera is the bench's pre-encoded
        640x360 loop instead (a keyframe on every request), for tests that only need a camera that plays:
        a live aiortc VP8 encoder costs about a sixth of a core."""
        pc = self.publisher = RTCPeerConnection(CONFIG)
        tracks = []
        if replay:
            camera = LayerTrack("camera")
            tracks.append((transceiver := pc.addTransceiver(camera, direction="sendonly"), "camera"))
            camera.attach(transceiver.sender)
        elif pattern:
            tracks.append((pc.addTransceiver(PatternTrack(pattern, noise=noise), direction="sendonly"), "camera"))
        if audio:
            tracks.append((pc.addTransceiver(AudioStreamTrack(), direction="sendonly"), "microphone"))
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.client.ok(
            "rtc:publish", {"sdp": pc.localDescription.sdp, "tracks": [{"mid": t.mid, "source": s} for t, s in tracks]}
        )
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def subscribe(self) -> None:
        mark = self.client.mark()
        await self.client.ok("rtc:subscribe")
        offer = await self.client.wait_for("rtc:offer", after=mark)
        self.slot_of_mid = {s["mid"]: s["slot"] for s in offer["slots"]}
        pc = self.subscriber = RTCPeerConnection(CONFIG)

        @pc.on("track")
        def on_track(track):
            slot = self.slot_of_mid[next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)]
            self.tasks.append(asyncio.ensure_future(self._read(slot, track)))

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.client.ok("rtc:answer", {"sdp": pc.localDescription.sdp})

    async def _read(self, slot: str, track) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.patterns.setdefault(slot, []).append(which_pattern(frame))
                else:
                    self.audio_frames[slot] = self.audio_frames.get(slot, 0) + 1
        except Exception:  # noqa: BLE001 - the track ended
            return

    def seen(self, slot: str, pattern: str, since: int = 0) -> bool:
        return pattern in self.patterns.get(slot, [])[since:]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for pc in (self.publisher, self.subscriber):
            if pc:
                await pc.close()
