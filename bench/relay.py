"""The baseline: the usual aiortc relay (MediaRelay + addTrack), as a tiny server of its own.

    python -m bench.relay --port P

The publisher's tracks are received as aiortc RemoteStreamTracks (decoded once) and handed to each
subscriber through MediaRelay.subscribe() + addTransceiver: every subscriber's sender re-encodes.
This is the approach the SFU exists to avoid; the bench measures it in the same run for the ratio.

POST /publish {sdp, tracks}      -> {sdp}                    (the publisher offers)
POST /subscribe                  -> {id, sdp, slots}         (the server offers one slot per track)
POST /subscribe/{id} {sdp}       -> {}
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from bench.peers import CONFIG
from media.probes import codec_preferences, offered_media

SLOT_OF_KIND = {"video": "teacher_camera", "audio": "teacher_audio"}


class RelayServer:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.connections: dict[str, RTCPeerConnection] = {}
        self.ids = itertools.count(1)

    async def publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection(CONFIG)
        self.connections["publisher"] = pc

        @pc.on("track")
        def on_track(track) -> None:
            self.tracks.setdefault(track.kind, track)

        for kind, _ in offered_media(body["sdp"]):  # VP8 / Opus only, as the SFU
            pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(codec_preferences(kind))
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def subscribe(self, request: web.Request) -> web.Response:
        sid = str(next(self.ids))
        pc = self.connections[sid] = RTCPeerConnection(CONFIG)
        slots = []
        for kind in ("video", "audio"):
            track = self.tracks.get(kind)
            if track is None:
                continue
            transceiver = pc.addTransceiver(self.relay.subscribe(track), direction="sendonly")
            transceiver.setCodecPreferences(codec_preferences(kind))
            slots.append((transceiver, kind))
        await pc.setLocalDescription(await pc.createOffer())
        return web.json_response(
            {
                "id": sid,
                "sdp": pc.localDescription.sdp,
                "slots": [{"slot": SLOT_OF_KIND[k], "kind": k, "mid": t.mid} for t, k in slots],
            }
        )

    async def answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self.connections[request.match_info["id"]].setRemoteDescription(
            RTCSessionDescription(body["sdp"], "answer")
        )
        return web.json_response({})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def close(self, app: web.Application) -> None:
        await asyncio.gather(*(pc.close() for pc in self.connections.values()), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = RelayServer()
    app = web.Application()
    app.add_routes(
        [
            web.post("/publish", server.publish),
            web.post("/subscribe", server.subscribe),
            web.post("/subscribe/{id}", server.answer),
            web.get("/healthz", server.healthz),
        ]
    )
    app.on_shutdown.append(server.close)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
