"""The 10 s recorded lesson that the `lesson` fixture (tests/conftest.py) makes once per test run."""

from __future__ import annotations

from pathlib import Path


from media import MediaEngine
from recordings import Recorder
from tests.media.peers import PatternTrack
from tests.recordings.helpers import FlashTrack, ToneTrack, add_screen, flowing, publisher, sleep_until

LESSON_SECONDS = 10.0
SCREEN_FROM, SCREEN_TO = 3.0, 7.0  # when the screen share is on, in s after the recording starts


async def _record_lesson(directory: Path) -> dict:
    engine = MediaEngine()
    teacher = publisher(engine, "teacher", [("camera", FlashTrack("A")), ("microphone", ToneTrack())])
    student = publisher(engine, "student-1", [("microphone", ToneTrack(beeps=False, hum=440))])
    try:
        await teacher.connect()
        await student.connect()
        await flowing(engine, "teacher/camera", "teacher/microphone", "student-1/microphone")
        recorder = Recorder(engine, directory, 42, min_free_bytes=1 << 20, keyframe_interval=2.0)
        assert recorder.add_track("teacher", "camera", "Cô Lan")
        assert recorder.add_track("teacher", "microphone", "Cô Lan")
        assert recorder.add_track("student-1", "microphone", "Minh")
        path = await recorder.start()
        origin = recorder.origin
        await sleep_until(origin + SCREEN_FROM - 0.5)
        await add_screen(engine, teacher, PatternTrack("B"))
        await flowing(engine, "teacher/screen", packets=1)
        await sleep_until(origin + SCREEN_FROM)
        assert recorder.add_track("teacher", "screen", "Cô Lan")
        screen_added = recorder.clock_ms()
        await sleep_until(origin + SCREEN_TO)
        recorder.remove_track("teacher", "screen")
        screen_removed = recorder.clock_ms()
        await sleep_until(origin + LESSON_SECONDS)
        stop_called = recorder.clock_ms()
        manifest = await recorder.stop()
        return {
            "manifest": manifest,
            "path": path,
            "origin": origin,
            "screen_added_ms": screen_added,
            "screen_removed_ms": screen_removed,
            "stop_called_ms": stop_called,
        }
    finally:
        await teacher.close()
        await student.close()
        await engine.close()
