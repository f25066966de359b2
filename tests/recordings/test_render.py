"""The lesson video: the 10 s recorded lesson (conftest.lesson) rendered into one MP4 that plays:
the camera alone, then the screen share with the camera inset, then the camera again; both
microphones mixed."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np

from recordings import render
from tests.media.peers import which_pattern
from tests.recordings.conftest import LESSON_SECONDS, SCREEN_FROM, SCREEN_TO
from tests.recordings.helpers import Decoded, beep_times


async def test_the_lesson_video_plays_with_the_screen_the_camera_inset_and_the_mixed_audio(lesson, tmp_path):
    progress: list[float] = []
    output = await render(lesson["path"], tmp_path / "lesson.mp4", on_progress=progress.append)
    assert output == tmp_path / "lesson.mp4"
    assert progress and progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 10

    with av.logging.Capture() as logs, av.open(str(output)) as container:
        assert abs(container.duration / 1e6 - LESSON_SECONDS) <= 0.5
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        pictures = {"camera": [], "screen": []}
        insets = []
        for frame in container.decode(video=0):
            t = frame.time
            if 0.5 < t < SCREEN_FROM - 0.2 or SCREEN_TO + 0.5 < t < LESSON_SECONDS - 0.5:
                pictures["camera"].append(which_pattern(frame))
            elif SCREEN_FROM + 0.5 < t < SCREEN_TO - 0.2:
                pictures["screen"].append(which_pattern(frame))
                image = frame.to_ndarray(format="rgb24")
                h, w = image.shape[:2]
                insets.append(image[h - h // 4 :, w - w // 4 :].mean())  # bottom right corner
    errors = [message for level, _, message in logs if level <= av.logging.ERROR]
    assert errors == []
    assert frame.width == 640 and frame.height == 360
    # the camera (pattern A) fills the picture, except while the screen (pattern B) is shared;
    # a flash now and then shows no pattern
    assert pictures["camera"].count("A") >= 0.8 * len(pictures["camera"]) > 50
    assert pictures["screen"].count("B") >= 0.8 * len(pictures["screen"]) > 50
    assert np.median(insets) > 40  # the camera's colours, where the screen alone is black

    with av.open(str(output)) as container:
        rate = container.streams.audio[0].sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert len(beep_times(Decoded.from_samples(samples, rate))) >= 4  # the teacher's beeps ...
    window = rate // 10
    levels = [
        float(np.sqrt(np.mean(samples[i : i + window] ** 2))) for i in range(rate // 2, len(samples) - window, window)
    ]
    assert 0.02 < float(np.median(levels)) < 0.2  # ... over the student's hum, all the time


async def test_a_paused_stretch_is_left_out_of_the_lesson_video(lesson, tmp_path):
    """The recorder lists its pauses in the manifest (rec:pause … rec:resume); the lesson video runs on
    without them. Here the pause covers the screen share's whole stretch (3 s to 7 s)."""
    copy = tmp_path / "paused"
    shutil.copytree(lesson["path"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    screen = next(f for f in manifest["files"] if f["source"] == "screen")
    pause = {"start_ms": screen["start_ms"], "end_ms": screen["start_ms"] + screen["duration_ms"] + 50}
    manifest["pauses"] = [pause]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    output = await render(copy, tmp_path / "lesson.mp4")

    with av.open(str(output)) as container:
        paused = (pause["end_ms"] - pause["start_ms"]) / 1000
        assert abs(paused - (SCREEN_TO - SCREEN_FROM)) < 0.5
        assert abs(container.duration / 1e6 - (LESSON_SECONDS - paused)) <= 0.5
        patterns = [which_pattern(frame) for frame in container.decode(video=0) if frame.time > 0.5]
    assert patterns.count("B") == 0  # the screen share was only shown during the pause
    assert patterns.count("A") >= 0.8 * len(patterns) > 100  # the camera, on both sides of it
    with av.open(str(output)) as container:
        rate = container.streams.audio[0].sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert abs(len(samples) / rate - (LESSON_SECONDS - paused)) <= 0.5
    assert len(beep_times(Decoded.from_samples(samples, rate))) >= 2  # the teacher, before and after
