"""Connects a room to the node's media engine: negotiation requests, and the room's plan applied as it changes.

The room decides who receives what (media_plan.py); this module turns each change into the engine's
slot assignments and forwarding switches, and tells subscribers which slot now shows whom (rtc:slots).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from media import offered_media
from signaling import protocol as proto
from signaling.media_plan import TrackRef, plan, slot_layout, slot_priority
from signaling.protocol import RoomError
from signaling.room import Participant, Room

log = logging.getLogger(__name__)


class Engine(Protocol):  # media.engine.MediaEngine, as this module uses it
    async def publish(self, peer_id: str, offer_sdp: str, sources: dict[str, str]) -> str: ...
    async def open_subscriber(self, peer_id: str, slots: dict[str, str], priority: list[str] | None = None) -> str: ...
    async def subscriber_answer(self, peer_id: str, answer_sdp: str) -> None: ...
    def assign(self, subscriber_id: str, slot: str, publisher_id: str | None, source: str | None) -> None: ...
    def set_paused(self, publisher_id: str, source: str, paused: bool) -> None: ...
    async def add_candidate(self, peer_id: str, direction: str, candidate: dict[str, Any] | None) -> None: ...
    async def close_peer(self, peer_id: str) -> None: ...
    async def close_subscriber(self, peer_id: str) -> None: ...
    def set_low_only(self, subscriber_id: str, low_only: bool) -> None: ...
    def link(self, subscriber_id: str) -> dict[str, Any] | None: ...
    def published_bytes(self, publisher_id: str) -> int: ...
    def stats(self) -> dict[str, Any]: ...


def _mids(sdp: str) -> list[str]:
    """The mids of an SDP's media sections, in order (the media plane's own SDP reading)."""
    return [mid for _, mid in offered_media(sdp) if mid is not None]


def rate_connection(loss: float, rtt: float | None) -> str:
    """good / weak / bad, as a teacher needs to know it (Kết nối yếu)."""
    rtt = rtt or 0.0
    if loss > 0.10 or rtt > 0.6:
        return "bad"
    if loss > 0.03 or rtt > 0.3:
        return "weak"
    return "good"


def slot_group(slot: str) -> str:
    """teacher_camera, screen, stage, or grid for every classmate's camera slot (as people see them)."""
    return "grid" if slot.startswith("grid_") else slot


def peer_id(room: Room, participant_id: str) -> str:
    """The media engine's id of a participant's connections."""
    return f"{room.session_id}/{participant_id}"


class RoomMedia:
    """One room's media: its negotiation requests, and the room's plan applied to the node's engine as the
    room changes. What it tracks (connections, slots, switches) belongs to this room alone."""

    def __init__(self, engine: Engine, room: Room):
        self.engine = engine
        self.room = room
        self._subscribed: dict[str, dict[str, str]] = {}  # peer → slot layout
        self._published: set[str] = set()
        self._slots: dict[str, dict[str, TrackRef | None]] = {}  # peer → what each slot carries now
        self._forwarding: dict[TrackRef, bool] = {}  # switches applied
        self._epochs: dict[str, int] = {}  # peer → the participant's media epoch its connections belong to
        self._data_before: dict[str, int] = {}  # participant → bytes used by its connections already closed

    def peer(self, participant_id: str) -> str:
        return peer_id(self.room, participant_id)

    # -- requests ------------------------------------------------------------------------------------
    async def publish(self, p: Participant, payload: proto.PublishRequest) -> dict[str, Any]:
        sources: dict[str, str] = {t.mid: t.source for t in payload.tracks}
        if not sources or len(set(sources.values())) != len(sources):
            raise RoomError("invalid_payload", "Publish each source (camera, microphone, screen) once, at least one.")
        offered_mids = set(_mids(payload.sdp))
        if not set(sources) <= offered_mids:
            raise RoomError(
                "invalid_sdp", f"The offer has no m-line for mid(s) {', '.join(sorted(set(sources) - offered_mids))}."
            )
        try:
            answer = await self.engine.publish(self.peer(p.participant_id), payload.sdp, sources)
        except Exception as exc:  # noqa: BLE001 - aiortc's parser raises many kinds on a bad offer
            log.info("publish offer refused: %r", exc)
            raise RoomError("invalid_sdp", "The offer could not be used.") from None
        self._published.add(self.peer(p.participant_id))
        self.room.add_published(p, set(sources.values()))  # a later offer adds sources (e.g. the screen)
        return {"sdp": answer}

    async def subscribe(self, p: Participant) -> dict[str, Any]:
        peer = self.peer(p.participant_id)
        if peer in self._subscribed:  # a fresh start: the old subscribe connection is replaced
            await self.engine.close_subscriber(peer)
            self._subscribed.pop(peer, None)
            self._slots.pop(peer, None)
        layout = slot_layout(p.role, self.room.sees_classmates)
        offer = await self.engine.open_subscriber(peer, layout, slot_priority(layout))
        self._subscribed[peer] = layout
        self._slots[peer] = {}
        # The offer's m-lines follow the slots in order: tell the client which mid is which slot.
        mids = _mids(offer)
        return {
            "sdp": offer,
            "slots": [{"slot": name, "kind": kind, "mid": mid} for (name, kind), mid in zip(layout.items(), mids)],
        }

    async def answer(self, p: Participant, payload: proto.AnswerRequest) -> None:
        peer = self.peer(p.participant_id)
        if peer not in self._subscribed:
            raise RoomError("not_subscribed", "Ask for the subscribe offer first (rtc:subscribe).")
        if not _mids(payload.sdp):
            raise RoomError("invalid_sdp", "The answer has no media sections.")
        try:
            await self.engine.subscriber_answer(peer, payload.sdp)
        except Exception as exc:  # noqa: BLE001 - aiortc's parser raises many kinds on a bad answer
            log.info("subscribe answer refused: %r", exc)
            raise RoomError("invalid_sdp", "The answer could not be used.") from None

    async def candidate(self, p: Participant, payload: proto.CandidateRequest) -> None:
        try:
            await self.engine.add_candidate(self.peer(p.participant_id), payload.direction, payload.candidate)
        except Exception as exc:  # noqa: BLE001 - a malformed candidate must not harm the connection
            log.info("ICE candidate refused: %r", exc)
            raise RoomError("invalid_candidate", "The ICE candidate could not be used.") from None

    # -- the plan ------------------------------------------------------------------------------------
    async def apply(self) -> list[tuple[Participant, dict[str, Any]]]:
        """Bring the engine in step with the room; returns the rtc:slots messages to send."""
        room = self.room
        present = {p.participant_id: p for p in room.present() if p.connected}
        for peer in set(self._subscribed) | self._published:
            participant = present.get(peer.split("/", 1)[1])
            # Left, dropped or kicked, or back on a new connection (a resume): close its old connections.
            if participant is None or self._epochs.get(peer, participant.media_epoch) != participant.media_epoch:
                self._bank_data(peer)
                await self.engine.close_peer(peer)
                self._forget(peer)
        for participant in present.values():
            self._epochs[self.peer(participant.participant_id)] = participant.media_epoch
        assignments, switches = plan(room.media_views(), room.stage, room.sees_classmates)
        for track, on in switches.items():
            if self._forwarding.get(track) != on:
                self.engine.set_paused(self.peer(track.participant_id), track.source, not on)
                self._forwarding[track] = on
        messages = []
        for participant_id, slots in assignments.items():
            peer = self.peer(participant_id)
            if peer not in self._subscribed:
                continue
            self.engine.set_low_only(peer, present[participant_id].saver != "off")
            current = self._slots[peer]
            changed = {slot: ref for slot, ref in slots.items() if current.get(slot) != ref}
            for slot, ref in changed.items():
                self.engine.assign(
                    peer, slot, self.peer(ref.participant_id) if ref else None, ref.source if ref else None
                )
                current[slot] = ref
            if changed:
                messages.append(
                    (
                        present[participant_id],
                        {
                            slot: {"participant_id": ref.participant_id, "source": ref.source} if ref else None
                            for slot, ref in changed.items()
                        },
                    )
                )
        return messages

    async def close(self) -> None:
        """The room leaves this node: every connection of its people here closes."""
        for peer in set(self._subscribed) | self._published:
            await self.engine.close_peer(peer)
            self._forget(peer)

    def _bank_data(self, peer: str) -> None:
        """Keep what a participant's connections used before they close (data used this period)."""
        participant_id = peer.split("/", 1)[1]
        self._data_before[participant_id] = self._data_used(peer)

    def _data_used(self, peer: str) -> int:
        link = self.engine.link(peer)
        return (
            self._data_before.get(peer.split("/", 1)[1], 0)
            + (link["data_bytes"] if link else 0)
            + self.engine.published_bytes(peer)
        )

    def links(self) -> dict[str, dict[str, Any]]:
        """Each receiving participant's link as they should know it (you:link) and the teacher sees it
        (room:quality): quality, what is received at the low layer or paused because of the link, the
        data saver mode and the data used this period."""
        subscribers = self.engine.stats()["subscribers"]
        report = {}
        for p in self.room.present():
            peer = self.peer(p.participant_id)
            link = self.engine.link(peer) if peer in self._subscribed else None
            if link is None:
                continue
            slots = [s for s in subscribers.get(peer, {}).values() if s.get("live")]
            loss = max([s["loss"] for s in slots] + [link["loss"]])
            rtts = [s["rtt"] for s in slots if s.get("rtt") is not None]
            rtt = max(rtts) if rtts else None
            layers = link["layers"]
            limited = not link["low_only"]  # in data saver mode the low layers are a choice, not the link
            reduced = sorted({slot_group(n) for n, layer in layers.items() if layer == "low" and limited})
            paused = sorted({slot_group(n) for n, layer in layers.items() if layer == "off"})
            quality = rate_connection(loss, rtt)
            if quality == "good" and (reduced or paused):
                quality = "weak"
            if not layers:
                video = "none"
            elif all(layer == "off" for layer in layers.values()):
                video = "paused"
            elif any(layer != "high" for layer in layers.values()):
                video = "low"
            else:
                video = "high"
            report[p.participant_id] = {
                "quality": quality,
                "video": video,
                "reduced": reduced,
                "paused": paused,
                "saver": p.saver,
                "data_bytes": self._data_used(peer),
                "loss": round(loss, 4),
                "rtt_ms": round(rtt * 1000) if rtt is not None else None,
                "receiving_kbps": round(sum(s["bitrate"] for s in slots) / 1000),
                "receiving": bool(slots),
            }
        return report

    @staticmethod
    def quality(links: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The teacher's view (room:quality): everyone who receives something, or whose video the link paused."""
        return {
            pid: {k: v for k, v in link.items() if k != "receiving"}
            for pid, link in links.items()
            if link["receiving"] or link["paused"]
        }

    def _forget(self, peer: str) -> None:
        self._subscribed.pop(peer, None)
        self._slots.pop(peer, None)
        self._published.discard(peer)
        self._epochs.pop(peer, None)
        participant_id = peer.split("/", 1)[1]
        for ref in [r for r in self._forwarding if r.participant_id == participant_id]:
            del self._forwarding[ref]
