"""The lesson video: one shareable file composed offline from a finished recording.

The teacher's screen share fills the picture with the teacher's camera as an inset (bottom right)
while a screen share is on; otherwise the teacher's camera fills it. Every audio file of the
recording is mixed in. Output: MP4 (H.264 + AAC), what every phone and browser plays.

Decoding and encoding happen here (offline), never on a live server's event loop:
- `render_lesson(...)` does the job in the calling thread (blocking; the CLI can call it);
- `await render(...)` runs it in a separate, low-priority process (`python -m recordings.render`,
  os.nice) and reports progress (a fraction 0..1) to a callback.

Timing comes from the manifest: every file sits on the session clock at its start_ms, and inside a
file each frame at its own pts, so gaps (a mute, a lost second) stay gaps and everything stays in
sync. The recording's pauses (rec:pause … rec:resume) are left out: the video runs on without them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recordings.manifest import read_manifest

log = logging.getLogger(__name__)

RATE = 48000
FPS = 25  # 48000 / 25 = 1920 audio samples per video frame, exactly
NICE = 15


class RenderError(Exception):
    pass


# ----------------------------------------------------------------------------------- picture
def _fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size with the aspect of width x height inside box_w x box_h."""
    scale = min(box_w / width, box_h / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class _VideoCursor:
    """The frames of one video file, in order; `at(ms)` is the one showing at session time ms."""

    def __init__(self, path: Path, start_ms: int, duration_ms: int) -> None:
        self.path, self.start_ms, self.end_ms = path, start_ms, start_ms + duration_ms
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._current: tuple[float, av.VideoFrame] | None = None  # (session ms, frame)
        self._next: tuple[float, av.VideoFrame] | None = None
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self.done = False

    def _open(self) -> None:
        self._container = av.open(str(self.path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        self._advance()

    def _advance(self) -> None:
        assert self._frames is not None  # opened, not closed: _open() first, close() ends every call
        try:
            frame = next(self._frames)
        except (StopIteration, av.error.FFmpegError):
            self._next = None
            return
        self._next = (self.start_ms + float(frame.time or 0) * 1000, frame)

    def at(self, ms: float):
        """The frame on show at `ms` (None before the file's first frame or after its end)."""
        if self.done or ms < self.start_ms or ms >= self.end_ms:
            if ms >= self.end_ms:
                self.close()
            return None
        if self._container is None:
            self._open()
        while self._next is not None and self._next[0] <= ms:
            self._current = self._next
            self._cache = {}
            self._advance()
        return None if self._current is None else self._current[1]

    def image(self, ms: float, width: int, height: int) -> np.ndarray | None:
        """The frame on show at `ms` as an RGB array fitted into width x height (cached)."""
        frame = self.at(ms)
        if frame is None:
            return None
        size = _fit(frame.width, frame.height, width, height)
        if size not in self._cache:
            self._cache = {size: frame.to_ndarray(width=size[0], height=size[1], format="rgb24")}
        return self._cache[size]

    def close(self) -> None:
        self.done = True
        if self._container is not None:
            self._container.close()
            self._container = self._frames = None
        self._current = self._next = None
        self._cache = {}


# ------------------------------------------------------------------------------------- sound
class _AudioCursor:
    """The samples of one audio file on the session clock (48 kHz stereo float), read in order."""

    def __init__(self, path: Path, start_ms: int, duration_ms: int) -> None:
        self.path = path
        self.start = int(round(start_ms * RATE / 1000))
        self.end = self.start + int(round(duration_ms * RATE / 1000))
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.AudioFrame] | None = None
        self._resampler: av.AudioResampler | None = None
        self._buffer = np.zeros((2, 0), np.float32)
        self._buffer_start = self.start  # session sample index of _buffer[:, 0]
        self.done = False

    def read(self, first: int, count: int) -> np.ndarray | None:
        """Samples [first, first + count) of the session (zeros where this file has none);
        None if the file has nothing there at all."""
        last = first + count
        if self.done or last <= self.start or first >= self.end:
            if first >= self.end:
                self.close()
            return None
        if self._container is None:
            self._container = av.open(str(self.path))
            self._frames = self._container.decode(self._container.streams.audio[0])
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
        while self._buffer_start + self._buffer.shape[1] < last and self._frames is not None:
            self._decode_one()
        out = np.zeros((2, count), np.float32)
        lo = max(first, self._buffer_start)
        hi = min(last, self._buffer_start + self._buffer.shape[1])
        if hi > lo:
            out[:, lo - first : hi - first] = self._buffer[:, lo - self._buffer_start : hi - self._buffer_start]
        drop = max(0, last - self._buffer_start)  # reads only move forward
        if drop:
            self._buffer = self._buffer[:, drop:]
            self._buffer_start += drop
        return out

    def _decode_one(self) -> None:
        assert self._frames is not None and self._resampler is not None  # read() opened the file
        try:
            frame = next(self._frames)
        except (StopIteration, av.error.FFmpegError):
            self._frames = None
            return
        position = self.start + int(round(float(frame.time or 0) * RATE))
        frame.pts = None  # the resampler would otherwise insist on continuity
        samples = (
            np.concatenate([f.to_ndarray() for f in self._resampler.resample(frame)], axis=1)
            if frame.samples
            else np.zeros((2, 0), np.float32)
        )
        end = self._buffer_start + self._buffer.shape[1]
        if position > end:  # a gap: silence
            self._buffer = np.concatenate([self._buffer, np.zeros((2, position - end), np.float32)], axis=1)
        elif position < end:  # an overlap: keep what is already there
            samples = samples[:, end - position :]
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32)], axis=1)

    def close(self) -> None:
        self.done = True
        if self._container is not None:
            self._container.close()
            self._container = self._frames = None


# ----------------------------------------------------------------------------------- the job
def choose_layout(manifest: dict[str, Any], teacher: str | None = None) -> dict[str, Any]:
    """Which files make the picture and the sound: {"teacher", "screens", "cameras", "audio"}."""
    files = [f for f in manifest.get("files", []) if f.get("duration_ms")]
    screens = [f for f in files if f.get("source") == "screen"]
    cameras = [f for f in files if f.get("source") == "camera"]
    if teacher is None:
        teacher = (screens or cameras or [{}])[0].get("publisher")
    return {
        "teacher": teacher,
        "screens": [f for f in screens if f.get("publisher") == teacher] or screens,
        "cameras": [f for f in cameras if f.get("publisher") == teacher],
        "audio": [f for f in files if f.get("kind") == "audio"],
    }


def render_lesson(
    recording: Path,
    output: Path | None = None,
    *,
    teacher: str | None = None,
    width: int = 1280,
    height: int = 720,
    on_progress: Callable[[float], Any] | None = None,
) -> Path:
    """Compose the lesson video of a finished recording directory (blocking; run it off the event
    loop, best through `render`). Returns the output path (default: recording/lesson.mp4)."""
    recording = Path(recording)
    manifest = read_manifest(recording)
    if manifest is None:
        raise RenderError(f"{recording}: no manifest")
    if not manifest.get("finished"):
        raise RenderError(f"{recording}: the recording is not finished")
    layout = choose_layout(manifest, teacher)
    videos = layout["screens"] + layout["cameras"]
    if not videos and not layout["audio"]:
        raise RenderError(f"{recording}: nothing to render")
    output = Path(output) if output is not None else recording / "lesson.mp4"
    ends = [f["start_ms"] + f["duration_ms"] for f in manifest["files"] if f.get("duration_ms")]
    total_ms = max([manifest.get("duration_ms") or 0, *ends])
    pauses = _pauses(manifest, total_ms)
    # the picture size: the largest screen (or camera) fitted into width x height
    sizes = [(f["width"], f["height"]) for f in videos if f.get("width") and f.get("height")]
    source_w, source_h = max(sizes, key=lambda s: s[0] * s[1]) if sizes else (width, height)
    out_w, out_h = (
        _fit(source_w, source_h, width, height)
        if (source_w > width or source_h > height)
        else (source_w // 2 * 2, source_h // 2 * 2)
    )

    def cursor(f: dict) -> _VideoCursor:
        return _VideoCursor(recording / f["file"], f["start_ms"], f["duration_ms"])

    screens = [cursor(f) for f in sorted(layout["screens"], key=lambda f: f["start_ms"])]
    cameras = [cursor(f) for f in sorted(layout["cameras"], key=lambda f: f["start_ms"])]
    sounds = [_AudioCursor(recording / f["file"], f["start_ms"], f["duration_ms"]) for f in layout["audio"]]
    # The paused stretches are left out: the lesson video runs on without them.
    frames_total = max(1, int((total_ms - sum(end - start for start, end in pauses)) * FPS // 1000))
    samples_per_frame = RATE // FPS
    inset_w, inset_h = out_w // 4 // 2 * 2, out_h // 4 // 2 * 2
    margin = max(4, out_w // 80) // 2 * 2
    temporary = output.with_name(output.name + ".part")
    with av.open(str(temporary), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = out_w, out_h, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        video.codec_context.thread_count = 2
        audio = container.add_stream("aac", rate=RATE)
        audio.layout = "stereo"
        audio.bit_rate = 128000
        black = np.zeros((out_h, out_w, 3), np.uint8)
        last_reported = -1.0
        for k in range(frames_total):
            skipped_ms = _paused_before(k * 1000 / FPS, pauses)
            ms = k * 1000 / FPS + skipped_ms
            picture = black
            main = next(
                (image for image in (s.image(ms, out_w, out_h) for s in reversed(screens)) if image is not None), None
            )
            camera_full = main is None
            camera = next(
                (
                    image
                    for image in (
                        c.image(ms, out_w, out_h) if camera_full else c.image(ms, inset_w, inset_h)
                        for c in reversed(cameras)
                    )
                    if image is not None
                ),
                None,
            )
            if main is None and camera is not None:
                main, camera = camera, None
            if main is not None or camera is not None:
                picture = black.copy()
                if main is not None:
                    h, w = main.shape[:2]
                    y, x = (out_h - h) // 2, (out_w - w) // 2
                    picture[y : y + h, x : x + w] = main
                if camera is not None:
                    h, w = camera.shape[:2]
                    y, x = out_h - h - margin, out_w - w - margin
                    picture[y : y + h, x : x + w] = camera
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, FPS)
            container.mux(video.encode(frame))
            mix = np.zeros((2, samples_per_frame), np.float32)
            for sound in sounds:
                chunk = sound.read(k * samples_per_frame + skipped_ms * RATE // 1000, samples_per_frame)
                if chunk is not None:
                    mix += chunk
            np.clip(mix, -1.0, 1.0, out=mix)
            sound_frame = av.AudioFrame.from_ndarray(mix, format="fltp", layout="stereo")
            sound_frame.sample_rate = RATE
            sound_frame.pts, sound_frame.time_base = k * samples_per_frame, Fraction(1, RATE)
            container.mux(audio.encode(sound_frame))
            fraction = (k + 1) / frames_total
            if on_progress is not None and (fraction - last_reported >= 0.01 or k + 1 == frames_total):
                last_reported = fraction
                on_progress(fraction)
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    cursors: list[_VideoCursor | _AudioCursor] = [*screens, *cameras, *sounds]
    for c in cursors:
        c.close()
    os.replace(temporary, output)
    return output


def _pauses(manifest: dict[str, Any], total_ms: int) -> list[tuple[int, int]]:
    """The recording's pauses on the session clock, in order; one still open ends with the recording."""
    found = []
    for pause in manifest.get("pauses") or []:
        start = int(pause.get("start_ms") or 0)
        end = int(pause["end_ms"]) if pause.get("end_ms") is not None else total_ms
        if end > start:
            found.append((start, min(end, total_ms)))
    return sorted(found)


def _paused_before(video_ms: float, pauses: list[tuple[int, int]]) -> int:
    """How much session time the lesson video has skipped by `video_ms` of its own time."""
    skipped = 0
    for start, end in pauses:
        if video_ms + skipped >= start:
            skipped += end - start
        else:
            break
    return skipped


async def render(
    recording: Path,
    output: Path | None = None,
    *,
    teacher: str | None = None,
    on_progress: Callable[[float], Any] | None = None,
    nice: int = NICE,
) -> Path:
    """Run `render_lesson` in a separate low-priority process; `on_progress(fraction)` is called
    on the event loop as it goes. Raises RenderError if it fails."""
    recording = Path(recording)
    output = Path(output) if output is not None else recording / "lesson.mp4"
    arguments = [
        sys.executable,
        "-m",
        "recordings.render",
        str(recording),
        "--output",
        str(output),
        "--nice",
        str(nice),
    ]
    if teacher is not None:
        arguments += ["--teacher", teacher]
    root = str(Path(__file__).resolve().parent.parent)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = await asyncio.create_subprocess_exec(
        *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment
    )
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None and stderr is not None  # both piped
    errors: list[bytes] = []

    async def drain_errors() -> None:
        async for line in stderr:
            errors.append(line)
            del errors[:-40]

    draining = asyncio.ensure_future(drain_errors())
    try:
        async for line in stdout:
            parts = line.decode(errors="replace").split()
            if len(parts) == 2 and parts[0] == "progress" and on_progress is not None:
                result = on_progress(float(parts[1]))
                if asyncio.iscoroutine(result):
                    await result
        code = await process.wait()
        await draining
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        draining.cancel()
        raise
    if code != 0:
        raise RenderError(
            f"rendering {recording} failed ({code}): " + b"".join(errors).decode(errors="replace")[-2000:]
        )
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recordings.render", description="Compose the lesson video of a finished recording."
    )
    parser.add_argument("recording", type=Path, help="the recording's directory (with manifest.json)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--teacher", default=None, help="publisher id of the teacher")
    parser.add_argument("--nice", type=int, default=NICE, help="CPU priority increment")
    arguments = parser.parse_args(argv)
    if arguments.nice:
        os.nice(arguments.nice)

    def progress(fraction: float) -> None:
        print(f"progress {fraction:.4f}", flush=True)

    try:
        path = render_lesson(arguments.recording, arguments.output, teacher=arguments.teacher, on_progress=progress)
    except RenderError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"done {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
