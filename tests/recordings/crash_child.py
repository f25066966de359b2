"""The server side of the crash test, run as a separate process that the test kills with SIGKILL:
an engine, a publisher (pattern camera + microphone) and a recorder recording both.

    python -m tests.recordings.crash_child DIRECTORY

Prints "RECORDING <origin>" (the session clock's 0, time.time()) once recording, then runs until
killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from media import MediaEngine
from recordings import Recorder
from tests.media.peers import Publisher
from tests.recordings.helpers import flowing


async def main(directory: Path) -> None:
    engine = MediaEngine()
    teacher = Publisher(engine, "teacher", "A")
    await teacher.connect()
    await flowing(engine, "teacher/camera", "teacher/microphone")
    recorder = Recorder(engine, directory, 9, min_free_bytes=1 << 20, keyframe_interval=2.0)
    recorder.add_track("teacher", "camera", "Teacher")
    recorder.add_track("teacher", "microphone", "Teacher")
    await recorder.start()
    print(f"RECORDING {recorder.origin!r}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
