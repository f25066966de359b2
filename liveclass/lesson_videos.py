"""Lesson videos: one shareable file composed offline from a session's recording (recordings.render).

A render runs as its own low-priority process, so live classes never feel it; its progress is kept
here for the API (one job per session at a time) and shown as a bar by the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recordings import RenderError, read_manifest, render

log = logging.getLogger(__name__)
OUTPUT_NAME = "lesson.mp4"


def latest_recording(recordings_dir: Path, session_id: int) -> Path | None:
    """The newest finished recording directory of a session."""
    base = recordings_dir / str(session_id)
    finished = (
        [d for d in sorted(base.iterdir()) if d.is_dir() and (read_manifest(d) or {}).get("finished")]
        if base.is_dir()
        else []
    )
    return finished[-1] if finished else None


@dataclass
class RenderJob:
    session_id: int
    recording: Path
    state: str = "running"  # running → done | failed
    progress: float = 0.0
    error: str | None = None
    task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def output(self) -> Path:
        return self.recording / OUTPUT_NAME

    def view(self) -> dict:
        return {
            "state": self.state,
            "progress": round(self.progress, 3),
            "error": self.error,
            "url": f"/api/v1/sessions/{self.session_id}/lesson-video/file" if self.state == "done" else None,
        }


# A lock across the cluster (signaling.router.Router.exclusive): name, seconds → context yielding "mine?".
Exclusive = Callable[[str, float], contextlib.AbstractAsyncContextManager[bool]]
RENDER_LOCK_SECONDS = 3 * 3600  # longer than any render; a crashed node's lock expires by itself
WAIT_FOR_OTHER_NODE = 2.0


@contextlib.asynccontextmanager
async def _alone(name: str, seconds: float):
    yield True


class LessonVideos:
    def __init__(self, recordings_dir: Path, exclusive: Exclusive = _alone):
        self.recordings_dir = recordings_dir
        self.jobs: dict[int, RenderJob] = {}
        self._exclusive = exclusive  # with several nodes, one renders a session at a time

    def job(self, session_id: int) -> RenderJob | None:
        job = self.jobs.get(session_id)
        if job is not None and job.state == "done" and not job.output.is_file():
            del self.jobs[session_id]  # the file was deleted since (retention)
            job = None
        if job is None:  # rendered earlier (another run of the server, or the CLI)?
            recording = latest_recording(self.recordings_dir, session_id)
            if recording is not None and (recording / OUTPUT_NAME).is_file():
                job = self.jobs[session_id] = RenderJob(session_id, recording, state="done", progress=1.0)
        return job

    def start(self, session_id: int) -> RenderJob | None:
        """Start (or return the running) render of the session's latest recording; None: nothing recorded."""
        current = self.jobs.get(session_id)
        if current is not None and current.state == "running":
            return current
        recording = latest_recording(self.recordings_dir, session_id)
        if recording is None:
            return None
        job = self.jobs[session_id] = RenderJob(session_id, recording)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        return job

    async def _run(self, job: RenderJob) -> None:
        """Render, unless another node is making the same video: then wait for it (its file appears
        whole, renamed into place) and render here only if it gave up."""
        while True:
            async with self._exclusive(f"render:{job.session_id}", RENDER_LOCK_SECONDS) as mine:
                if mine:
                    if job.output.is_file():
                        job.state, job.progress = "done", 1.0
                    else:
                        await self._render(job)
                    return
            await asyncio.sleep(WAIT_FOR_OTHER_NODE)

    async def _render(self, job: RenderJob) -> None:
        def progress(fraction: float) -> None:
            job.progress = fraction

        try:
            await render(job.recording, job.output, on_progress=progress)
            job.state, job.progress = "done", 1.0
        except RenderError as exc:
            job.state, job.error = "failed", "The lesson video could not be made; the recording is kept."
            log.error("lesson video of session %s failed: %s", job.session_id, str(exc)[:300])

    async def cancel(self, session_id: int) -> None:
        """Stop a render of the session in progress and forget its job (its recording is being deleted)."""
        job = self.jobs.pop(session_id, None)
        if job is not None and job.task is not None and not job.task.done():
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
            log.info("lesson video of session %s cancelled: its recording is deleted", session_id)

    async def close(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
