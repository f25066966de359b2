"""After a crash: find unfinished recordings and turn them into finished, seekable ones.

A recording killed mid-way (kill -9, power cut) leaves WebM files that end at their last whole
cluster, without cues or a duration, and a manifest that says "finished": false (or none at all).
`recover(directory)` — to run at start-up, before this process records anything — remuxes every
readable packet of each such file into a new file (cues, duration: seekable; still no transcoding),
checksums it, and writes the manifest with "finished": true, "recovered": true and
"stopped_reason": "crashed". Where the manifest did not yet list a file, its place on the session
clock comes from the file's own LIVECLASS_START_MS tag.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import av

from recordings.manifest import FORMAT, MANIFEST, VERSION, read_manifest, sha256_file, write_manifest
from recordings.recorder import ACTIVE_RECORDINGS, RESERVE
from recordings.track_writer import TrackWriter

log = logging.getLogger(__name__)

REPAIR_SUFFIX = ".repair.webm"


def _tag(metadata: dict[str, str], name: str) -> str | None:
    for key, value in metadata.items():
        if key.upper() == name:
            return value
    return None


def repair_file(path: Path) -> dict[str, Any]:
    """Remux the readable part of a WebM file in place into a finished one (cues, duration).
    Returns {"kind", "codec", "start_ms" (from its tag, or None), "duration_ms", "frames",
    "width", "height", "metadata"}. Raises av.error.FFmpegError (or ValueError) if nothing of it
    can be read."""
    path = Path(path)
    temporary = path.with_name(
        path.name[: -len(".webm")] + REPAIR_SUFFIX if path.name.endswith(".webm") else path.name + REPAIR_SUFFIX
    )
    with av.open(str(path)) as source:
        if not source.streams:
            raise ValueError(f"{path.name}: no stream")
        stream = source.streams[0]
        kind = stream.type
        if kind not in ("video", "audio"):
            raise ValueError(f"{path.name}: a {kind} stream")
        metadata = {k: v for k, v in source.metadata.items() if k.upper() not in ("ENCODER", "DURATION")}
        start = _tag(source.metadata, "LIVECLASS_START_MS")
        start_ms = int(start) if start is not None and re.fullmatch(r"-?\d+", start) else None
        writer = TrackWriter(
            temporary,
            kind,
            metadata={k: v for k, v in metadata.items() if k.upper() != "LIVECLASS_START_MS"},
            sync_interval=1e9,
        )
        base = start_ms or 0
        time_base = stream.time_base
        assert time_base is not None  # a stream read from a file has one
        try:
            for packet in source.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                ms = float(packet.pts * time_base * 1000)
                writer.write(bytes(packet), base + ms, packet.is_keyframe)
        except (av.error.FFmpegError, EOFError) as error:  # the torn end of the file
            log.info("%s: read up to the damage (%s)", path.name, error)
    if not writer.started:
        writer.abandon()
        temporary.unlink(missing_ok=True)
        raise ValueError(f"{path.name}: no readable frame")
    info = writer.close()
    assert info is not None  # started: a frame was written
    os.replace(temporary, path)
    return {
        "kind": kind,
        "codec": info.codec,
        "start_ms": start_ms,
        "duration_ms": info.duration_ms,
        "frames": info.frames,
        "width": info.width,
        "height": info.height,
        "metadata": metadata,
    }


def _candidates(directory: Path) -> list[Path]:
    """Recording directories under `directory` (itself included): they hold a manifest or WebM
    files."""
    found: set[Path] = set()
    directory = Path(directory)
    if not directory.is_dir():
        return []
    for path in [directory, *directory.rglob("*")]:
        if path.is_dir() and ((path / MANIFEST).exists() or any(path.glob("*.webm"))):
            found.add(path)
    return sorted(found)


def recover(directory: Path) -> list[dict[str, Any]]:
    """Finish every unfinished recording under `directory`. Returns their new manifests (each
    with "path": the recording's directory). Recordings of this very process are left alone."""
    recovered = []
    for path in _candidates(directory):
        manifest = read_manifest(path)
        if manifest is not None and manifest.get("finished"):
            continue
        if path.resolve() in ACTIVE_RECORDINGS:
            continue  # being recorded right now by this process
        try:
            result = recover_recording(path, manifest)
        except Exception:  # noqa: BLE001 - one bad recording must not stop the others
            log.exception("recovery of %s failed", path)
            continue
        recovered.append({**result, "path": str(path)})
    return recovered


def recover_recording(path: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Repair the files of one recording directory and write its finished manifest."""
    path = Path(path)
    manifest = dict(manifest if manifest is not None else read_manifest(path) or {})
    for leftover in path.glob("*" + REPAIR_SUFFIX):  # a recovery that was itself interrupted
        leftover.unlink()
    (path / RESERVE).unlink(missing_ok=True)
    listed = {entry.get("file"): entry for entry in manifest.get("files", []) if isinstance(entry, dict)}
    files: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for file in sorted(path.glob("*.webm")):
        entry = dict(listed.get(file.name, {}))
        try:
            info = repair_file(file)
        except Exception as error:  # noqa: BLE001
            log.warning("%s: unreadable, left as it is (%s)", file, error)
            unreadable.append(file.name)
            continue
        tags = info["metadata"]
        start_ms = entry.get("start_ms")
        if start_ms is None:
            start_ms = info["start_ms"] if info["start_ms"] is not None else 0
        entry.update(
            {
                "file": file.name,
                "kind": info["kind"],
                "codec": info["codec"],
                "source": entry.get("source") or _tag(tags, "LIVECLASS_SOURCE"),
                "publisher": entry.get("publisher") or _tag(tags, "LIVECLASS_PUBLISHER"),
                "label": entry.get("label") or _tag(tags, "TITLE"),
                "start_ms": start_ms,
                "duration_ms": info["duration_ms"],
                "frames": info["frames"],
                "bytes": file.stat().st_size,
                "width": info["width"],
                "height": info["height"],
                "sha256": sha256_file(file),
                "complete": False,
                "recovered": True,
            }
        )
        files.append(entry)
    files.sort(key=lambda f: (f["start_ms"], f["file"]))
    end = max((f["start_ms"] + f["duration_ms"] for f in files), default=0)
    pauses = [dict(p) for p in manifest.get("pauses", []) if isinstance(p, dict)]
    for pause in pauses:
        if pause.get("end_ms") is None:
            pause["end_ms"] = max(end, pause.get("start_ms") or 0)
    manifest.pop("pid", None)
    session = path.parent.name
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "session_id": int(session) if session.isascii() and session.isdigit() else None,
        "recording_id": path.name,
        "started_at": None,
        "started_at_unix": None,
        **manifest,
        "finished": True,
        "recovered": True,
        "stopped_reason": manifest.get("stopped_reason") or "crashed",
        "duration_ms": manifest.get("duration_ms") or end,
        "pauses": pauses,
        "files": files,
    }
    if unreadable:
        manifest["unreadable_files"] = unreadable
    write_manifest(path, manifest)
    return manifest
