"""The recording manifest (manifest.json, one per recording directory) and file checksums.

A manifest places every file of a recording on the session clock (ms since the recording
started). It is rewritten atomically (temporary file, fsync, rename) whenever a file starts or
ends, with "finished": false until the recording is finalised, so that recovery after a crash knows
where each file belongs.

    {
      "format": "liveclass-recording", "version": 1,
      "session_id": 7, "recording_id": "20250301T080000Z",
      "started_at": "2025-03-01T08:00:00.123456+00:00", "started_at_unix": 1740816000.123456,
      "finished": true, "recovered": false, "stopped_reason": "stopped",
      "duration_ms": 2700000,
      "pauses": [{"start_ms": 600000, "end_ms": 660000}],
      "files": [
        {"file": "01-teacher-camera.webm", "kind": "video", "codec": "vp8", "source": "camera",
         "publisher": "teacher", "label": "Cô Lan", "start_ms": 52, "duration_ms": 2699900,
         "frames": 80997, "bytes": 341234567, "width": 1280, "height": 720,
         "sha256": "…", "lost_packets": 0, "dropped_frames": 0, "complete": true}
      ]
    }
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT = "liveclass-recording"
VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write `directory/manifest.json` atomically and durably."""
    path = Path(directory) / MANIFEST
    temporary = path.with_name(MANIFEST + ".tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(manifest, file, ensure_ascii=False, indent=1)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a recording directory, or None if there is none (or it is unreadable)."""
    try:
        with open(Path(directory) / MANIFEST, encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None
