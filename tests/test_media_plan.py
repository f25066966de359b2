"""The who-receives-what rules, as pure logic (the live-media tests run them with real peers)."""

from signaling.media_bridge import rate_connection
from signaling.media_plan import AUDIO_SLOTS, MediaView, TrackRef, plan, slot_layout

ALL = frozenset({"camera", "microphone", "screen"})


def view(pid, role, on=(), published=ALL, permitted=ALL, unmuted_at=0.0):
    return MediaView(pid, role, frozenset(published), frozenset(on), frozenset(permitted), unmuted_at)


def test_everyone_gets_the_teacher_and_nobody_gets_themself():
    teacher = view("t", "teacher", on=("camera", "microphone"))
    students = [view(f"s{i}", "student", on=("camera",)) for i in range(3)]
    slots, switches = plan([teacher, *students], stage=None, sees_classmates=False)
    for s in students:
        assert slots[s.participant_id]["teacher_camera"] == TrackRef("t", "camera")
        assert slots[s.participant_id]["teacher_audio"] == TrackRef("t", "microphone")
        assert "grid_1" not in slots[s.participant_id]  # students do not see each other by default
    assert slots["t"]["teacher_camera"] is None
    assert [slots["t"][f"grid_{i}"] for i in (1, 2, 3)] == [TrackRef(f"s{i}", "camera") for i in range(3)]
    assert switches[TrackRef("t", "camera")] and not switches[TrackRef("t", "screen")]


def test_only_what_is_on_and_permitted_is_forwarded():
    teacher = view("t", "teacher")
    muted = view("s1", "student", on=("microphone",), permitted=frozenset({"camera"}))
    _, switches = plan([teacher, muted], stage=None, sees_classmates=False)
    assert switches[TrackRef("s1", "microphone")] is False


def test_screen_stage_and_the_latest_speakers():
    teacher = view("t", "teacher", on=("camera",))
    sharer = view("s1", "student", on=("screen",))
    speakers = [view(f"v{i}", "student", on=("microphone", "camera"), unmuted_at=float(i)) for i in range(5)]
    slots, _ = plan([teacher, sharer, *speakers], stage="v0", sees_classmates=False)
    assert slots["t"]["screen"] == TrackRef("s1", "screen")
    assert slots["v1"]["stage"] == TrackRef("v0", "camera") and slots["v0"]["stage"] is None
    heard = [slots["s1"][f"audio_{i}"].participant_id for i in range(1, AUDIO_SLOTS + 1)]
    assert heard == ["v4", "v3", "v2"]  # the most recent speakers
    teacher_sharing = view("t", "teacher", on=("camera", "screen"))
    slots, _ = plan([teacher_sharing, sharer], stage=None, sees_classmates=False)
    assert slots["s1"]["screen"] == TrackRef("t", "screen")  # the teacher's screen comes first


def test_layouts_and_quality():
    assert "grid_1" in slot_layout("teacher", False) and "grid_1" not in slot_layout("student", False)
    assert "grid_1" in slot_layout("student", True)
    assert rate_connection(0.0, 0.05) == "good"
    assert rate_connection(0.05, 0.05) == "weak"
    assert rate_connection(0.2, None) == "bad"


def test_the_teachers_gallery_page_gets_the_grid_first():
    """30 cameras on, 12 grid slots: by default the first 12 to arrive; with media:grid, the page she looks at."""
    students = [view(f"s{i}", "student", on=("camera",)) for i in range(30)]
    teacher = view("t", "teacher")
    slots, _ = plan([teacher, *students], stage=None, sees_classmates=False)
    assert [slots["t"][f"grid_{i}"].participant_id for i in range(1, 13)] == [f"s{i}" for i in range(12)]
    page_3 = tuple(f"s{i}" for i in range(24, 30))
    teacher = MediaView("t", "teacher", ALL, frozenset(), ALL, grid_first=page_3)
    slots, _ = plan([teacher, *students], stage=None, sees_classmates=False)
    carried = [slots["t"][f"grid_{i}"].participant_id for i in range(1, 13)]
    assert carried[:6] == list(page_3)  # the page first, in its order
    assert carried[6:] == [f"s{i}" for i in range(6)]  # the slots it leaves: the others, in order of arrival
    # Someone on the page with the camera off takes no slot; students' own plans do not change.
    students[25] = view("s25", "student")
    slots, _ = plan([teacher, *students], stage=None, sees_classmates=False)
    assert "s25" not in [slots["t"][f"grid_{i}"].participant_id for i in range(1, 13)]
