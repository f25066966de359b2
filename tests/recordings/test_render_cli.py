"""`liveclass recordings render SESSION_ID`: the lesson video from the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys

import av


def test_the_cli_renders_the_latest_recording_of_a_session(lesson, tmp_path):
    data_dir = tmp_path / "var"
    target = data_dir / "recordings" / "42" / lesson["path"].name
    shutil.copytree(lesson["path"], target)
    done = subprocess.run(
        [sys.executable, "-m", "liveclass.cli", "recordings", "render", "42", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    output = target / "lesson.mp4"
    assert f"Lesson video: {output}" in done.stdout
    with av.open(str(output)) as container:
        assert container.streams.video and container.streams.audio
        assert 9.0 < float(container.duration) / 1_000_000 < 11.0
    missing = subprocess.run(
        [sys.executable, "-m", "liveclass.cli", "recordings", "render", "7", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "no finished recording" in missing.stderr
