"""Who receives what: the room's rules turned into subscribe slots and forwarding switches. No I/O.

Every subscriber has a fixed set of slots negotiated once ("slots, not renegotiation": aiortc cannot remove m-lines);
the room only changes what each slot carries. Rules:
- everyone receives the teacher's camera, microphone and screen;
- a student's screen share (when the teacher allows it) takes the screen slot if the teacher is not sharing;
- the student the teacher puts on stage is seen by everyone (stage slot);
- the microphones of up to AUDIO_SLOTS students who are speaking are heard by everyone;
- the teacher sees every student's camera (grid slots; up to GRID_SLOTS, those her gallery's page shows first:
  media:grid); students see each other's cameras only when the room's setting allows it;
- nobody receives their own media; a track is forwarded only while it is published, switched on by its
  owner and permitted (mutes, locks and revokes stop it at once);
- a low layer (camera_low, screen_low) follows its source's switch; slots are assigned the source, and
  the media engine picks the layer per subscriber from its link;
- data saver: "screen" keeps the audio and the screen slot only, "audio" the audio only.
"""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_SLOTS = 3
GRID_SLOTS = 12
LOW_LAYERS = {"camera": "camera_low", "screen": "screen_low"}
VIDEO_PRIORITY = ("screen", "teacher_camera", "stage")  # who keeps video longest on a weak link; then the grid


@dataclass(frozen=True)
class TrackRef:
    participant_id: str
    source: str  # camera, microphone, screen


def slot_layout(role: str, sees_classmates: bool) -> dict[str, str]:
    """Slot name → kind, fixed for a subscriber's whole connection."""
    slots = {"teacher_camera": "video", "teacher_audio": "audio", "screen": "video", "stage": "video"}
    slots |= {f"audio_{i}": "audio" for i in range(1, AUDIO_SLOTS + 1)}
    if role == "teacher" or sees_classmates:
        slots |= {f"grid_{i}": "video" for i in range(1, GRID_SLOTS + 1)}
    return slots


def slot_priority(layout: dict[str, str]) -> list[str]:
    """The video slots of a layout, most important first: the lesson's screen, the teacher, the stage,
    then the classmates."""
    video = [name for name, kind in layout.items() if kind == "video"]
    return [n for n in VIDEO_PRIORITY if n in video] + [n for n in video if n not in VIDEO_PRIORITY]


def _saver_keeps(slot: str, saver: str) -> bool:
    """Whether a video slot carries anything under the viewer's data saver mode."""
    return saver == "off" or (saver == "screen" and slot == "screen")


@dataclass
class MediaView:
    """What the plan needs to know of one participant."""

    participant_id: str
    role: str
    published: frozenset[str]
    switched_on: frozenset[str]  # sources the owner has on (media:state)
    permitted: frozenset[str]  # sources the owner may send now (permissions and locks)
    unmuted_at: float = 0.0  # when the microphone went on: the latest speakers get the audio slots
    saver: str = "off"  # the viewer's data saver mode
    grid_first: tuple[str, ...] = ()  # media:grid: whose cameras the viewer's grid carries first (a gallery page)


def forwarded(view: MediaView) -> set[str]:
    live = set(view.published & view.switched_on & view.permitted)
    return live | {LOW_LAYERS[s] for s in live if s in LOW_LAYERS and LOW_LAYERS[s] in view.published}


def plan(
    participants: list[MediaView], stage: str | None, sees_classmates: bool
) -> tuple[dict[str, dict[str, TrackRef | None]], dict[TrackRef, bool]]:
    """(subscriber id → slot → track or None, published track → forwarding on)."""
    live = {v.participant_id: forwarded(v) for v in participants}
    teacher = next((v for v in participants if v.role == "teacher"), None)
    learners = [v for v in participants if v.role in ("student", "guest")]

    def track(view: MediaView | None, source: str) -> TrackRef | None:
        if view is not None and source in live[view.participant_id]:
            return TrackRef(view.participant_id, source)
        return None

    screen = track(teacher, "screen") or next(
        (TrackRef(v.participant_id, "screen") for v in learners if "screen" in live[v.participant_id]), None
    )
    on_stage = next((v for v in learners if v.participant_id == stage), None)
    speakers = sorted(
        (v for v in learners if "microphone" in live[v.participant_id]), key=lambda v: v.unmuted_at, reverse=True
    )[:AUDIO_SLOTS]
    cameras = [TrackRef(v.participant_id, "camera") for v in learners if "camera" in live[v.participant_id]]

    assignments: dict[str, dict[str, TrackRef | None]] = {}
    for viewer in participants:

        def not_own(ref: TrackRef | None) -> TrackRef | None:
            return ref if ref is None or ref.participant_id != viewer.participant_id else None

        slots: dict[str, TrackRef | None] = {
            "teacher_camera": not_own(track(teacher, "camera")),
            "teacher_audio": not_own(track(teacher, "microphone")),
            "screen": not_own(screen),
            "stage": not_own(track(on_stage, "camera")),
        }
        voices = [
            TrackRef(v.participant_id, "microphone") for v in speakers if v.participant_id != viewer.participant_id
        ]
        for i in range(1, AUDIO_SLOTS + 1):
            slots[f"audio_{i}"] = voices[i - 1] if i <= len(voices) else None
        if viewer.role == "teacher" or sees_classmates:
            grid = [c for c in cameras if c.participant_id != viewer.participant_id]
            if viewer.grid_first:  # the gallery's page first, then the others in order of arrival
                rank = {pid: i for i, pid in enumerate(viewer.grid_first)}
                grid.sort(key=lambda c: rank.get(c.participant_id, len(rank)))
            grid = grid[:GRID_SLOTS]
            for i in range(1, GRID_SLOTS + 1):
                slots[f"grid_{i}"] = grid[i - 1] if i <= len(grid) else None
        if viewer.saver != "off":
            for name in slot_layout(viewer.role, sees_classmates):
                if (
                    name in slots
                    and not name.startswith("audio")
                    and name != "teacher_audio"
                    and not _saver_keeps(name, viewer.saver)
                ):
                    slots[name] = None
        assignments[viewer.participant_id] = slots

    switches = {
        TrackRef(v.participant_id, source): source in live[v.participant_id]
        for v in participants
        for source in v.published
    }
    return assignments, switches
