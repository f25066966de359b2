"""recordings: the recorder (muxes the room's encoded packets to disk without transcoding),
crash recovery, and the offline lesson video.

Imports only media's public interface (`from media import ...`).

    Recorder(engine, directory, session_id, min_free_bytes, *, on_stopped=None, ...)
        await start() -> Path | add_track(publisher_id, source, label) -> bool
        remove_track(publisher_id, source) | pause() | resume() | await stop() -> manifest
    RecordingRefused(code, message)       start() refused (code "low_disk_space", ...)
    recover(directory) -> list[manifest]   at start-up: finish what a crash left unfinished
    await render(recording_dir, output=None, *, on_progress=None) -> Path   the lesson video
"""

from recordings.manifest import MANIFEST, read_manifest
from recordings.recorder import Recorder, RecordingRefused
from recordings.recovery import recover
from recordings.render import RenderError, render, render_lesson

__all__ = [
    "MANIFEST",
    "Recorder",
    "RecordingRefused",
    "RenderError",
    "read_manifest",
    "recover",
    "render",
    "render_lesson",
]
