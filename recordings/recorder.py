"""The recorder: one more subscriber of a room's encoded media, muxing it to disk untranscoded.

    recorder = Recorder(engine, Path("/var/lib/liveclass/recordings"), session_id=7,
                        min_free_bytes=2 * 1024**3, on_stopped=notify)
    recorder.add_track("teacher-1", "camera", "Cô Lan")     # before or after start()
    await recorder.start()                                    # RecordingRefused: too little disk
    recorder.add_track("teacher-1", "screen", "Cô Lan")     # a screen share begins: a new file
    recorder.remove_track("teacher-1", "screen")            # ... and ends
    manifest = await recorder.stop()                          # finalised, checksummed, listed

Files go to `recorder.path` = directory/<session_id>/<recording_id>/, one WebM per track segment
(a track that stops and starts again, or a pause, makes a new file on the same clock), plus
manifest.json (recordings.manifest).

Threads: the media sink (on the event loop's hot path) only puts (segment, packet) on a queue.
One writer thread per recorder depacketizes (recordings.depacketize), maps timestamps onto the
session clock and muxes (recordings.track_writer); it also checks free disk space every second,
fsyncs, and asks the engine (through the loop) for keyframes: while a video file waits for its
first one or after a loss, and every `keyframe_interval` so that the file can be seeked.

A disk that fills (free space under `stop_free_bytes`, or a write failing with ENOSPC) stops the
recording cleanly: every file is closed and kept, the manifest says stopped_reason "disk_full",
and `on_stopped("disk_full")` is called on the loop. `on_stopped(reason)` is called only for stops
the recorder decides itself ("disk_full", "error"), not for `stop()`.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from media import SOURCE_KINDS, EncodedPacket, MediaEngine
from recordings.depacketize import depacketizer_for
from recordings.manifest import FORMAT, VERSION, sha256_file, write_manifest
from recordings.track_writer import CLOCK_RATES, TimestampMapper, TrackWriter

log = logging.getLogger(__name__)

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
RESERVE = ".reserve"
#: Recording directories being written by this process (recovery leaves them alone).
ACTIVE_RECORDINGS: set[Path] = set()


class RecordingRefused(Exception):
    """The recording cannot start; `code` says why ("low_disk_space", "already_started")."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def free_bytes(path: Path) -> int:
    """Free space for an unprivileged user on the file system holding `path` (or its nearest
    existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:40] or "x"


class _Segment:
    """One file: one track from the moment it was added (or resumed) until removed (or paused)."""

    def __init__(self, index: int, publisher_id: str, source: str, label: str, kind: str, path: Path) -> None:
        self.index = index
        self.publisher_id = publisher_id
        self.source = source
        self.label = label
        self.kind = kind
        self.path = path
        self.sink: Callable[[EncodedPacket], None] | None = None
        self.queue_dropped = 0  # packets the sink dropped because the writer fell behind
        # the writer thread's own
        self.depacketizer = depacketizer_for(kind)
        self.mapper: TimestampMapper | None = None
        self.writer = TrackWriter(
            path, kind, metadata={"title": label, "LIVECLASS_PUBLISHER": publisher_id, "LIVECLASS_SOURCE": source}
        )
        self.closed = False
        self.entry: dict[str, Any] | None = None  # its manifest entry, once the file exists
        self.error: str | None = None
        self.last_keyframe = 0.0  # time.monotonic() of the last keyframe written
        self.last_request = 0.0  # ... of the last keyframe request
        self.retry = _Writer.KEYFRAME_RETRY  # while waiting for one: doubles up to KEYFRAME_RETRY_MAX
        self.last_packet = 0.0  # ... of the last packet received


class Recorder:
    """Records the tracks it is given, each into its own WebM file on one session clock."""

    def __init__(
        self,
        engine: MediaEngine,
        directory: Path,
        session_id: int,
        min_free_bytes: int,
        *,
        on_stopped: Callable[[str], Any] | None = None,
        stop_free_bytes: int | None = None,
        keyframe_interval: float | None = 10.0,
        reserve_bytes: int = 8 * 1024 * 1024,
        queue_limit: int = 20000,
    ) -> None:
        """min_free_bytes: start() refuses below this much free disk space. stop_free_bytes: a
        running recording stops (reason "disk_full") below this (default min_free_bytes // 10).
        keyframe_interval: seconds between keyframe requests for seekable video (None: never).
        reserve_bytes: disk space set aside at start (a .reserve file) and given back when the
        recording stops, so that a full disk still lets every file and the manifest be finished.
        queue_limit: packets the writer may fall behind by before the sink drops (video then
        resumes at a keyframe)."""
        self.engine = engine
        self.directory = Path(directory)
        self.session_id = session_id
        self.min_free_bytes = min_free_bytes
        self.stop_free_bytes = min_free_bytes // 10 if stop_free_bytes is None else stop_free_bytes
        self.keyframe_interval = keyframe_interval
        self.queue_limit = queue_limit
        self.reserve_bytes = reserve_bytes
        self.on_stopped = on_stopped
        self.state = "idle"  # -> "recording" <-> "paused" -> "stopped"
        self.recording_id: str | None = None
        self.path: Path | None = None
        self.origin: float | None = None  # time.time() at the session clock's 0
        self.stopped_reason: str | None = None
        self._wanted: dict[tuple[str, str], str] = {}  # (publisher, source) -> label
        self._active: dict[tuple[str, str], _Segment] = {}
        self._count = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: _Writer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future | None = None
        self._pending_task: asyncio.Task | None = None
        self._stopping_task: asyncio.Task | None = None  # a stop the writer asked for

    # ---------------------------------------------------------------------------- control
    async def start(self) -> Path:
        """Start recording the tracks added so far (and those added later). Returns the
        recording's directory. Raises RecordingRefused if free disk space < min_free_bytes."""
        if self.state != "idle":
            raise RecordingRefused("already_started", "this recorder was already started")
        loop = self._loop = asyncio.get_running_loop()
        free = await loop.run_in_executor(None, free_bytes, self.directory)
        if free < self.min_free_bytes:
            raise RecordingRefused(
                "low_disk_space",
                f"not enough free disk space to record: {free / 1e9:.2f} GB free, "
                f"{self.min_free_bytes / 1e9:.2f} GB required",
                free_bytes=free,
                min_free_bytes=self.min_free_bytes,
            )
        self.state = "starting"
        try:
            self.path = await loop.run_in_executor(None, self._make_directory)
            await loop.run_in_executor(None, self._reserve, self.path)
        except BaseException:
            self.state = "idle"
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = None
            raise
        ACTIVE_RECORDINGS.add(self.path.resolve())
        self.origin = time.time()
        self._writer = _Writer(self, loop)
        await loop.run_in_executor(None, self._writer.write_manifest)
        self._writer.start()
        self.state = "recording"
        for key in list(self._wanted):
            self._open_segment(*key)
        self._pending_task = asyncio.ensure_future(self._attach_pending())
        return self.path

    def add_track(self, publisher_id: str, source: str, label: str | None = None) -> bool:
        """Record this source (again). If it is being recorded, its file ends and a new one
        starts. Returns False if the engine does not publish it (yet): it is remembered and its
        recording starts as soon as it is published (checked every PENDING_CHECK s). Before
        start() or while paused it is remembered and True is returned."""
        kind = SOURCE_KINDS.get(source)
        if kind is None:
            raise ValueError(f"unknown source {source!r}")
        key = (publisher_id, source)
        self._wanted[key] = label if label is not None else publisher_id
        if self.state != "recording":
            return self.state in ("idle", "starting", "paused")
        self._close_segment(key)
        return self._open_segment(publisher_id, source)

    def remove_track(self, publisher_id: str, source: str) -> None:
        """Stop recording this source (or stop waiting for it); its file is finished."""
        key = (publisher_id, source)
        self._wanted.pop(key, None)
        self._close_segment(key)

    def pause(self) -> None:
        """Stop writing; every file being written ends. resume() starts new ones."""
        if self.state != "recording":
            return
        for key in list(self._active):
            self._close_segment(key)
        self._queue.put(("pause", self.clock_ms()))
        self.state = "paused"

    def resume(self) -> None:
        if self.state != "paused":
            return
        self._queue.put(("resume", self.clock_ms()))
        self.state = "recording"
        for key in list(self._wanted):
            self._open_segment(*key)

    async def stop(self, reason: str = "stopped") -> dict[str, Any]:
        """Finish every file (seekable, checksummed) and the manifest, which is returned."""
        if self.state == "idle":
            raise RuntimeError("the recorder was not started")
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(reason))
        return await asyncio.shield(self._stopping)

    @property
    def manifest(self) -> dict[str, Any] | None:
        return self._writer.manifest() if self._writer is not None else None

    def clock_ms(self) -> int:
        """Now on the session clock."""
        return 0 if self.origin is None else int(round((time.time() - self.origin) * 1000))

    # -------------------------------------------------------------------------- internals
    PENDING_CHECK = 0.5

    async def _attach_pending(self) -> None:
        """Wanted tracks the engine did not publish yet are attached once it does."""
        while self.state in ("recording", "paused"):
            await asyncio.sleep(self.PENDING_CHECK)
            if self.state == "recording":
                for key in [k for k in self._wanted if k not in self._active]:
                    self._open_segment(*key)

    def _make_directory(self) -> Path:
        base = self.directory / str(self.session_id)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for n in range(1, 1000):
            name = stamp if n == 1 else f"{stamp}-{n}"
            try:
                (base / name).mkdir(parents=True)
            except FileExistsError:
                continue
            self.recording_id = name
            return base / name
        raise RuntimeError("no free recording directory name")

    def _reserve(self, directory: Path) -> None:
        if self.reserve_bytes <= 0:
            return
        path = directory / RESERVE
        try:
            with open(path, "wb") as file:
                try:
                    os.posix_fallocate(file.fileno(), 0, self.reserve_bytes)
                except OSError as error:
                    if error.errno in DISK_FULL_ERRNOS:
                        raise
                    file.write(bytes(self.reserve_bytes))  # a file system without fallocate
        except OSError as error:
            path.unlink(missing_ok=True)
            if error.errno in DISK_FULL_ERRNOS:
                raise RecordingRefused(
                    "low_disk_space",
                    "not enough free disk space to record",
                    free_bytes=0,
                    min_free_bytes=self.min_free_bytes,
                ) from error
            raise

    def _open_segment(self, publisher_id: str, source: str) -> bool:
        assert self.path is not None  # only once started: start() made the directory
        key = (publisher_id, source)
        self._count += 1
        name = f"{self._count:02d}-{_safe(publisher_id)}-{source}.webm"
        segment = _Segment(self._count, publisher_id, source, self._wanted[key], SOURCE_KINDS[source], self.path / name)
        put, qsize, limit = self._queue.put, self._queue.qsize, self.queue_limit

        def sink(packet: EncodedPacket) -> None:  # the hot path: one queue put
            if qsize() < limit:
                put((segment, packet))
            else:
                segment.queue_dropped += 1

        segment.sink = sink
        if not self.engine.add_sink(publisher_id, source, sink):
            self._count -= 1
            return False
        self._active[key] = segment
        self._queue.put(("open", segment))
        return True

    def _close_segment(self, key: tuple[str, str]) -> None:
        segment = self._active.pop(key, None)
        if segment is None:
            return
        self._detach(segment)
        self._queue.put(("close", segment))

    def _detach_all(self) -> None:
        for segment in self._active.values():
            self._detach(segment)

    def _detach(self, segment: _Segment) -> None:
        assert segment.sink is not None  # an active segment: _open_segment() gave it its sink
        self.engine.remove_sink(segment.publisher_id, segment.source, segment.sink)

    async def _stop(self, reason: str) -> dict[str, Any]:
        while self.state == "starting":  # stop() during start(): let it finish first
            await asyncio.sleep(0.01)
        was = self.state
        self.state = "stopping"
        if self._pending_task is not None:
            self._pending_task.cancel()
        self._detach_all()
        writer = self._writer
        if was == "idle" or writer is None:  # start() failed
            self.state = "stopped"
            return {}
        self._queue.put(("stop", reason))
        await writer.loop.run_in_executor(None, writer.join)
        ACTIVE_RECORDINGS.discard(writer.path.resolve())
        self._active.clear()
        self.state = "stopped"
        self.stopped_reason = writer.stopped_reason
        return writer.manifest()

    # called on the loop by the writer thread
    def _request_keyframe(self, publisher_id: str, source: str) -> None:
        if self.state == "recording":
            self.engine.request_keyframe(publisher_id, source)

    def _writer_stopped(self, reason: str) -> None:
        """The writer stopped by itself (disk full, error): finish on the loop, then tell."""
        if self._stopping is not None:
            return

        async def finish() -> None:
            await self.stop(reason)
            if self.on_stopped is not None:
                result = self.on_stopped(reason)
                if inspect.isawaitable(result):
                    await result

        self._stopping_task = asyncio.ensure_future(finish())


class _Writer(threading.Thread):
    """The recorder's writer thread: everything that touches the disk while recording."""

    TICK = 0.2
    BATCH = 0.05  # s between the writer's wake-ups (crash safety is about the flush, every ~1 s)
    DISK_CHECK = 1.0
    # The first repeat comes just after 300 ms: browsers ignore a keyframe request that close to the
    # previous one (a resume right after the start, or a subscriber's request, would otherwise leave
    # the new file waiting a second for its first picture).
    KEYFRAME_RETRY = 0.35
    KEYFRAME_RETRY_MAX = 4.0
    FLOWING = 1.0  # s since the last packet for a track to count as flowing (not muted)

    def __init__(self, recorder: Recorder, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name=f"recorder-{recorder.session_id}", daemon=True)
        self.recorder = recorder
        self.loop = loop
        self.queue = recorder._queue
        assert recorder.path is not None and recorder.origin is not None  # start() set both first
        self.path: Path = recorder.path
        self.origin: float = recorder.origin
        self.started_at = datetime.fromtimestamp(self.origin, timezone.utc).isoformat()
        self.segments: list[_Segment] = []  # every segment that got a file, in order
        self.open: list[_Segment] = []
        self.pauses: list[dict[str, int | None]] = []
        self.finished = False
        self.stopped_reason: str | None = None
        self.duration_ms: int | None = None
        self._lock = threading.Lock()  # guards what manifest() reads from the loop
        self._last_disk_check = 0.0
        self._commanded = False  # stopped by Recorder.stop(), not by itself

    # -- the manifest
    def manifest(self) -> dict[str, Any]:
        with self._lock:
            files = [dict(s.entry) for s in self.segments if s.entry is not None]
            pauses = [dict(p) for p in self.pauses]
        recorder = self.recorder
        return {
            "format": FORMAT,
            "version": VERSION,
            "session_id": recorder.session_id,
            "recording_id": recorder.recording_id,
            "started_at": self.started_at,
            "started_at_unix": self.origin,
            "finished": self.finished,
            "recovered": False,
            "stopped_reason": self.stopped_reason,
            "duration_ms": self.duration_ms,
            **({} if self.finished else {"pid": os.getpid()}),
            "pauses": pauses,
            "files": sorted(files, key=lambda f: (f["start_ms"], f["file"])),
        }

    def write_manifest(self) -> None:
        write_manifest(self.path, self.manifest())

    # -- the thread
    def run(self) -> None:
        reason = "error"
        try:
            reason = self._loop()
        except Exception:  # noqa: BLE001
            log.exception("recorder %s: the writer failed", self.path)
        try:
            self._finish(reason)
        except Exception:  # noqa: BLE001
            log.exception("recorder %s: finishing failed", self.path)
        reason = self.stopped_reason or reason
        if not self._commanded:
            try:
                self.loop.call_soon_threadsafe(self.recorder._writer_stopped, reason)
            except RuntimeError:  # the loop is closed
                pass

    def _loop(self) -> str:
        """Until a stop command (returns its reason) or a full disk ("disk_full").

        The writer wakes every BATCH seconds and takes everything queued, rather than waking for each
        packet: it shares the GIL with the event loop, and every wake-up makes the forwarding wait."""
        get = self.queue.get_nowait
        next_tick = time.monotonic() + self.TICK
        while True:
            time.sleep(self.BATCH)
            try:
                while True:
                    try:
                        item = get()
                    except queue.Empty:
                        break
                    if (stopped := self._handle(item)) is not None:
                        return stopped
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.TICK
                    self._tick(now)
            except _DiskFull:
                return "disk_full"
            except OSError as error:  # e.g. the manifest could not be written
                if error.errno in DISK_FULL_ERRNOS:
                    return "disk_full"
                raise

    def _handle(self, item: tuple) -> str | None:
        """One queued packet or command; a stop command's reason ends the loop."""
        first = item[0]
        if first.__class__ is _Segment:
            self._packet(first, item[1])
        elif first == "open":
            self.open.append(item[1])
        elif first == "close":
            self._close(item[1])
        elif first == "pause":
            with self._lock:
                self.pauses.append({"start_ms": item[1], "end_ms": None})
            self.write_manifest()
        elif first == "resume":
            with self._lock:
                if self.pauses and self.pauses[-1]["end_ms"] is None:
                    self.pauses[-1]["end_ms"] = item[1]
            self.write_manifest()
        elif first == "stop":
            self._commanded = True
            return item[1]
        return None

    def _packet(self, segment: _Segment, packet: EncodedPacket) -> None:
        if segment.closed:
            return
        segment.last_packet = time.monotonic()
        self._write(segment, segment.depacketizer.push(packet))

    def _write(self, segment: _Segment, frames: list) -> None:
        now = time.monotonic()
        if (
            segment.kind == "video"
            and segment.depacketizer.need_keyframe
            and now - segment.last_packet < self.FLOWING
            and now - segment.last_request >= segment.retry
        ):
            # waiting for a keyframe (the first, or after a loss) while packets come (a muted
            # track is not asked: every PLI costs the publisher's uplink a keyframe)
            self._ask_keyframe(segment, now)
            segment.retry = min(segment.retry * 2, self.KEYFRAME_RETRY_MAX)
        if not frames or segment.closed:
            return
        writer = segment.writer
        started = writer.started
        try:
            for frame in frames:
                if segment.mapper is None:
                    segment.mapper = TimestampMapper(CLOCK_RATES[segment.kind], self.origin)
                ms = segment.mapper.map(frame.timestamp, frame.arrival)
                if writer.write(frame.data, ms, frame.keyframe, now) and frame.keyframe and segment.kind == "video":
                    segment.last_keyframe = now
                    segment.retry = self.KEYFRAME_RETRY
        except Exception as error:  # noqa: BLE001
            self._failed(segment, error)
            return
        if not started and writer.started:
            with self._lock:
                self.segments.append(segment)
            self._update_entry(segment)
            self.write_manifest()

    def _tick(self, now: float) -> None:
        wall = time.time()
        for segment in list(self.open):
            self._write(segment, segment.depacketizer.expire(wall))
            interval = self.recorder.keyframe_interval
            if (
                segment.kind == "video"
                and interval
                and segment.writer.started
                and now - segment.last_packet < self.FLOWING
                and now - segment.last_keyframe >= interval
                and now - segment.last_request >= interval
            ):
                self._ask_keyframe(segment, now)
            if not segment.closed:
                try:
                    segment.writer.sync_if_due(now)
                except OSError as error:
                    self._failed(segment, error)
        if now - self._last_disk_check >= self.DISK_CHECK:
            self._last_disk_check = now
            try:
                free = free_bytes(self.path)
            except OSError:
                free = None
            if free is not None and free < self.recorder.stop_free_bytes:
                log.warning(
                    "recorder %s: %d bytes free, below %d: stopping", self.path, free, self.recorder.stop_free_bytes
                )
                raise _DiskFull()

    def _ask_keyframe(self, segment: _Segment, now: float) -> None:
        segment.last_request = now
        try:
            self.loop.call_soon_threadsafe(self.recorder._request_keyframe, segment.publisher_id, segment.source)
        except RuntimeError:
            pass

    def _close(self, segment: _Segment, flush: bool = True) -> None:
        """Finish a segment's file. Raises _DiskFull if the disk filled while doing so."""
        if segment.closed:
            return
        if flush:
            self._write(segment, segment.depacketizer.flush())
            if segment.closed:  # the last frames failed
                return
        segment.closed = True
        if segment in self.open:
            self.open.remove(segment)
        try:
            segment.writer.close()
        except Exception as error:  # noqa: BLE001
            self._failed(segment, error)
            return
        if segment.writer.start_ms is not None:  # the file exists
            self._update_entry(segment, final=True)
            self.write_manifest()

    def _failed(self, segment: _Segment, error: Exception) -> None:
        """A write to this segment's file failed: the file keeps what it has (it is repaired when
        the recording finishes); a full disk stops the recording."""
        segment.error = f"{type(error).__name__}: {error}"
        segment.closed = True
        segment.writer.abandon()
        if segment in self.open:
            self.open.remove(segment)
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            log.warning("recorder %s: disk full writing %s", self.path, segment.path.name)
            raise _DiskFull() from error
        else:
            log.exception("recorder %s: writing %s failed", self.path, segment.path.name, exc_info=error)

    def _update_entry(self, segment: _Segment, final: bool = False) -> None:
        info = segment.writer.info()
        if info is None:
            return
        entry = {
            **info.as_dict(),
            "source": segment.source,
            "publisher": segment.publisher_id,
            "label": segment.label,
            "lost_packets": segment.depacketizer.buffer.lost,
            "dropped_frames": segment.depacketizer.dropped + segment.queue_dropped,
        }
        if not final:
            entry["duration_ms"] = None
        entry["complete"] = final and segment.error is None
        if segment.error is not None:
            entry["error"] = segment.error
        entry["sha256"] = sha256_file(segment.path) if final and segment.path.exists() else None
        with self._lock:
            segment.entry = entry

    def _finish(self, reason: str) -> None:
        """Close every file, then write the finished manifest."""
        (self.path / RESERVE).unlink(missing_ok=True)  # room to finish, even on a full disk
        for segment in list(self.open):
            try:
                self._close(segment, flush=reason != "disk_full")
            except _DiskFull:
                reason = "disk_full"
        self.stopped_reason = reason
        self.duration_ms = int(round((time.time() - self.origin) * 1000))
        with self._lock:
            if self.pauses and self.pauses[-1]["end_ms"] is None:
                self.pauses[-1]["end_ms"] = self.duration_ms
        for segment in self.segments:  # a file whose close failed (e.g. a full disk) is repaired
            if segment.error is not None and segment.path.exists():
                self._repair(segment)
        self.finished = True
        try:
            self.write_manifest()
        except OSError:
            log.exception("recorder %s: the final manifest could not be written", self.path)

    def _repair(self, segment: _Segment) -> None:
        from recordings.recovery import repair_file

        try:
            info = repair_file(segment.path)
        except Exception:  # noqa: BLE001
            log.exception("recorder %s: %s could not be repaired", self.path, segment.path.name)
            try:
                self._update_entry(segment, final=True)
            except OSError:
                pass
            return
        with self._lock:
            entry = dict(segment.entry or {})
            entry.update(
                duration_ms=info["duration_ms"],
                frames=info["frames"],
                bytes=segment.path.stat().st_size,
                sha256=sha256_file(segment.path),
                repaired=True,
            )
            segment.entry = entry


class _DiskFull(Exception):
    pass
