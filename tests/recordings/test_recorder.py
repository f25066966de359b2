"""The recorder with real aiortc peers publishing into a MediaEngine in the same process.

A 10 s lesson (conftest.lesson: teacher camera flashing + microphone beeping at the same instants,
a student's microphone, the teacher's screen share from 3 s to 7 s) is recorded once and checked
here: every file decodes with 0 errors, lasts what it should, is seekable and matches its
checksum; audio and video are in sync on the session clock; the screen share is its own file at
the right place. Then: kill -9 during a recording and recovery; the disk threshold; a disk that
fills mid-recording (free-space watchdog, and a real ENOSPC on a tiny tmpfs); pause/resume.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

import recordings.recorder as recorder_module
from media import MediaEngine
from recordings import Recorder, RecordingRefused, read_manifest, recover
from recordings.manifest import sha256_file
from tests.media.peers import PatternTrack, Publisher, which_pattern
from tests.recordings.conftest import LESSON_SECONDS
from tests.recordings.helpers import (
    SYNC_PERIOD,
    Decoded,
    add_screen,
    beep_times,
    flash_times,
    flowing,
    sleep_until,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


def one(manifest: dict, publisher: str, source: str) -> dict:
    found = [f for f in manifest["files"] if f["publisher"] == publisher and f["source"] == source]
    assert len(found) == 1, f"{publisher}/{source}: {len(found)} files"
    return found[0]


def assert_seekable(path: Path, duration_s: float, kind: str) -> None:
    with av.open(str(path)) as container:
        assert container.duration is not None, f"{path.name} has no duration"
        assert abs(container.duration / 1e6 - duration_s) < 0.1
        middle = duration_s / 2
        container.seek(int(middle * av.time_base))
        frame = next(container.decode(container.streams[0]))
        # video lands on the keyframe before the middle (one every 2 s is asked for), audio on
        # the cluster before it (one per 250 ms)
        low = middle - (2.6 if kind == "video" else 0.3)
        assert low <= frame.time <= middle + 0.1, f"{path.name}: seek to {middle} gave {frame.time}"


# --------------------------------------------------------------------------- the 10 s lesson
def test_every_file_decodes_without_errors_and_lasts_as_long_as_recorded(lesson):
    manifest, path = lesson["manifest"], lesson["path"]
    assert manifest["finished"] and not manifest["recovered"] and manifest["stopped_reason"] == "stopped"
    assert manifest["session_id"] == 42 and manifest["format"] == "liveclass-recording"
    assert abs(manifest["duration_ms"] - LESSON_SECONDS * 1000) < 300
    assert {(f["publisher"], f["source"]) for f in manifest["files"]} == {
        ("teacher", "camera"),
        ("teacher", "microphone"),
        ("student-1", "microphone"),
        ("teacher", "screen"),
    }
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [f["file"] for f in manifest["files"]] + ["manifest.json"]
    )  # no leftovers (.reserve)
    for entry in manifest["files"]:
        decoded = Decoded(path / entry["file"])
        assert decoded.errors == [], f"{entry['file']}: {decoded.errors[:5]}"
        assert decoded.kind == entry["kind"] and entry["codec"] == ("vp8" if entry["kind"] == "video" else "opus")
        assert entry["complete"] and entry["lost_packets"] == 0 and entry["dropped_frames"] == 0
        assert len(decoded.times) == entry["frames"] > 0
        assert abs(decoded.duration * 1000 - entry["duration_ms"]) <= 1
        if entry["kind"] == "video":
            assert (decoded.width, decoded.height) == (entry["width"], entry["height"]) == (640, 360)
    for key in (("teacher", "camera"), ("teacher", "microphone"), ("student-1", "microphone")):
        entry = one(manifest, *key)
        assert entry["start_ms"] < 300, f"{key} started late: {entry['start_ms']} ms"
        assert abs(entry["duration_ms"] - LESSON_SECONDS * 1000) <= 500, f"{key}: {entry['duration_ms']} ms"


def test_the_manifest_checksums_match_and_every_file_is_seekable(lesson):
    for entry in lesson["manifest"]["files"]:
        path = lesson["path"] / entry["file"]
        assert sha256_file(path) == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
        assert_seekable(path, entry["duration_ms"] / 1000, entry["kind"])


def test_audio_and_video_are_in_sync_on_the_session_clock(lesson):
    manifest, path = lesson["manifest"], lesson["path"]
    camera, microphone = one(manifest, "teacher", "camera"), one(manifest, "teacher", "microphone")
    assert abs(camera["start_ms"] - microphone["start_ms"]) <= 100
    flashes = [camera["start_ms"] / 1000 + t for t in flash_times(Decoded(path / camera["file"]))]
    beeps = [microphone["start_ms"] / 1000 + t for t in beep_times(Decoded(path / microphone["file"]))]
    assert len(flashes) >= 4 and len(beeps) >= 4, (flashes, beeps)
    for flash in flashes:
        beep = min(beeps, key=lambda b: abs(b - flash))
        assert abs(flash - beep) <= 0.1, f"flash at {flash:.3f} s, beep at {beep:.3f} s"
    # ... and where they really happened: the flash/beep instants of the wall clock
    origin = lesson["origin"]
    for t in flashes + beeps:
        wall = origin + t
        happened = round(wall / SYNC_PERIOD) * SYNC_PERIOD
        assert -0.05 <= wall - happened <= 0.15, f"event recorded {wall - happened:+.3f} s off"


def test_a_screen_share_started_and_stopped_mid_recording_is_its_own_file_on_the_same_clock(lesson):
    manifest, path = lesson["manifest"], lesson["path"]
    screen = one(manifest, "teacher", "screen")
    added, removed = lesson["screen_added_ms"], lesson["screen_removed_ms"]
    assert added <= screen["start_ms"] <= added + 500, (added, screen["start_ms"])
    end = screen["start_ms"] + screen["duration_ms"]
    assert abs(end - removed) <= 300, (end, removed)
    assert screen["label"] == "Cô Lan"
    with av.open(str(path / screen["file"])) as container:
        frames = list(container.decode(video=0))
    assert which_pattern(frames[len(frames) // 2]) == "B"  # the screen, not the camera
    camera = one(manifest, "teacher", "camera")
    with av.open(str(path / camera["file"])) as container:
        for frame in container.decode(video=0):
            # Flashes happen at wall-clock multiples of SYNC_PERIOD: pick a frame well away from one.
            wall = lesson["origin"] + camera["start_ms"] / 1000 + frame.time
            phase = wall % SYNC_PERIOD
            if frame.time > 1 and 0.5 < phase < SYNC_PERIOD - 0.5:  # not a flash
                assert which_pattern(frame) == "A"
                break


# ------------------------------------------------------------------------------ crash safety
async def test_a_recording_killed_with_sigkill_is_recovered_into_finished_files(tmp_path):
    log = open(tmp_path / "child.log", "wb")
    directory = tmp_path / "recordings"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.recordings.crash_child",
        str(directory),
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        cwd=ROOT,
    )
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        assert line.startswith(b"RECORDING "), line + (tmp_path / "child.log").read_bytes()[-2000:]
        origin = float(line.split()[1])
        await sleep_until(origin + 5.0)
    finally:
        child.kill()  # SIGKILL: no finally, no atexit, no trailer
        killed_at = time.time()
        await child.wait()
        log.close()
    recorded_ms = (killed_at - origin) * 1000
    [recording] = [p for p in directory.glob("*/*") if p.is_dir()]
    before = read_manifest(recording)
    assert before is not None and before["finished"] is False
    for entry in before["files"]:
        with av.open(str(recording / entry["file"])) as container:
            assert container.duration is None  # no trailer: neither duration nor cues

    recovered = await asyncio.get_running_loop().run_in_executor(None, recover, tmp_path)
    assert [r["path"] for r in recovered] == [str(recording)]
    manifest = read_manifest(recording)
    assert manifest["finished"] and manifest["recovered"] and manifest["stopped_reason"] == "crashed"
    assert {f["source"] for f in manifest["files"]} == {"camera", "microphone"}
    for entry in manifest["files"]:
        path = recording / entry["file"]
        assert entry["recovered"] and entry["duration_ms"] >= recorded_ms - 1000, (
            f"{entry['file']}: {entry['duration_ms']} ms of {recorded_ms:.0f} ms recorded"
        )
        assert entry["start_ms"] == one(before, "teacher", entry["source"])["start_ms"]
        decoded = Decoded(path)
        assert decoded.errors == [] and len(decoded.times) == entry["frames"]
        assert sha256_file(path) == entry["sha256"]
        assert_seekable(path, entry["duration_ms"] / 1000, entry["kind"])
    assert recover(tmp_path) == []  # nothing left to recover


# ------------------------------------------------------------------------------------- disk
async def test_start_is_refused_when_free_disk_space_is_below_the_threshold(tmp_path):
    engine = MediaEngine()
    recorder = Recorder(engine, tmp_path / "recordings", 1, min_free_bytes=1 << 62)
    recorder.add_track("teacher", "camera", "Teacher")
    with pytest.raises(RecordingRefused) as refused:
        await recorder.start()
    assert refused.value.code == "low_disk_space"
    assert "free disk space" in str(refused.value) and refused.value.details["min_free_bytes"] == 1 << 62
    assert recorder.state == "idle" and not (tmp_path / "recordings").exists()
    await engine.close()


@pytest.fixture
async def teacher():
    """An engine and a teacher publishing a ~1 Mbit/s camera and a microphone into it."""
    engine = MediaEngine()
    teacher = Publisher(engine, "teacher", "A", noise=True)
    await teacher.connect()
    await flowing(engine, "teacher/camera", "teacher/microphone")
    yield engine, teacher
    await teacher.close()
    await engine.close()


def assert_kept(manifest: dict, directory: Path, min_ms: int) -> None:
    assert {f["source"] for f in manifest["files"]} == {"camera", "microphone"}
    for entry in manifest["files"]:
        decoded = Decoded(directory / entry["file"])
        assert decoded.errors == [] and len(decoded.times) == entry["frames"]
        assert entry["duration_ms"] >= min_ms and sha256_file(directory / entry["file"]) == entry["sha256"]


async def test_a_disk_filling_up_mid_recording_stops_it_cleanly_and_keeps_the_files(tmp_path, teacher, monkeypatch):
    engine, _ = teacher
    full = threading.Event()
    real_free_bytes = recorder_module.free_bytes
    monkeypatch.setattr(recorder_module, "free_bytes", lambda path: 1000 if full.is_set() else real_free_bytes(path))
    reasons: list[str] = []
    recorder = Recorder(engine, tmp_path, 3, min_free_bytes=1 << 20, stop_free_bytes=1 << 16, on_stopped=reasons.append)
    recorder.add_track("teacher", "camera", "Teacher")
    recorder.add_track("teacher", "microphone", "Teacher")
    path = await recorder.start()
    await asyncio.sleep(2.5)  # recorded before the disk fills (2 s of it kept, checked)
    full.set()
    await wait_for(lambda: reasons, 3, "on_stopped")
    assert reasons == ["disk_full"] and recorder.state == "stopped"
    manifest = read_manifest(path)
    assert manifest == await recorder.stop()  # stop() after the fact: the same, finished manifest
    assert manifest["finished"] and manifest["stopped_reason"] == "disk_full"
    assert_kept(manifest, path, 2000)
    assert all(not track.sinks for track in engine._tracks.values())  # nothing still attached


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (a disk that really fills up). Needs the right to mount (root)."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


async def test_a_write_failing_with_enospc_stops_the_recording_and_finishes_what_was_written(small_disk, teacher):
    engine, _ = teacher
    reasons: list[str] = []
    recorder = Recorder(
        engine, small_disk, 4, min_free_bytes=0, stop_free_bytes=0, reserve_bytes=1 << 20, on_stopped=reasons.append
    )
    recorder.add_track("teacher", "camera", "Teacher")
    recorder.add_track("teacher", "microphone", "Teacher")
    path = await recorder.start()
    ballast = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize - 300_000
    with open(small_disk / "ballast", "wb") as file:  # ~2.5 s of a 1 Mbit/s camera left
        file.write(bytes(ballast))
    await wait_for(lambda: reasons, 15, "the disk to fill")
    assert reasons == ["disk_full"]
    manifest = read_manifest(path)
    assert manifest["finished"] and manifest["stopped_reason"] == "disk_full"
    assert any(f.get("repaired") for f in manifest["files"])  # the file whose write failed
    assert_kept(manifest, path, 1000)


# ------------------------------------------------------------------------------ pause/resume
async def test_pause_resume_and_a_track_added_again_make_new_files_on_the_same_clock(tmp_path, teacher):
    engine, publisher = teacher
    recorder = Recorder(engine, tmp_path, 5, min_free_bytes=1 << 20)
    recorder.add_track("teacher", "camera", "Teacher")
    path = await recorder.start()
    assert not recorder.add_track("teacher", "screen", "Teacher")  # not published (yet)
    await add_screen(engine, publisher, PatternTrack("B"))
    published_at = recorder.clock_ms()
    # The timeline the files must follow: 1 s recorded, 0.5 s paused, 1 s, the camera added again, 1 s.
    await asyncio.sleep(1.0)
    recorder.pause()
    paused_at = recorder.clock_ms()
    await asyncio.sleep(0.5)
    recorder.resume()
    resumed_at = recorder.clock_ms()
    await asyncio.sleep(1.0)
    assert recorder.add_track("teacher", "camera", "Teacher")  # again: its file ends, a new one starts
    readded_at = recorder.clock_ms()
    await asyncio.sleep(1.0)
    manifest = await recorder.stop()
    [pause] = manifest["pauses"]
    assert abs(pause["start_ms"] - paused_at) <= 5 and abs(pause["end_ms"] - resumed_at) <= 5
    screens = [f for f in manifest["files"] if f["source"] == "screen"]  # recorded once published
    assert len(screens) == 2  # before the pause, after it
    assert published_at <= screens[0]["start_ms"] <= published_at + 1500
    files = [f for f in manifest["files"] if f["source"] == "camera"]
    assert len(files) == 3
    assert files[0]["start_ms"] + files[0]["duration_ms"] <= paused_at + 50
    assert resumed_at <= files[1]["start_ms"] <= resumed_at + 500
    assert files[1]["start_ms"] + files[1]["duration_ms"] <= readded_at + 50
    assert readded_at <= files[2]["start_ms"] <= readded_at + 500
    for entry in manifest["files"]:
        assert Decoded(path / entry["file"]).errors == []
