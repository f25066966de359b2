"""A stop-gap for a bug in media/ (not ours to edit): `MediaEngine.request_keyframe` and
`PublishedTrack.add_sink` call the coroutine function `ReceiverTap.request_keyframe()` without
awaiting or scheduling it, so no PLI is ever sent ("coroutine ... was never awaited"). A recording
started after the publisher's first keyframe then waits up to 100 s (aiortc's keyframe interval).

`fix_keyframe_requests()` routes both through the track's KeyframeRequester (which schedules the
PLI properly), only while the bug is present: once media/ is fixed it does nothing.
"""
from __future__ import annotations

import inspect

from media import engine as _engine
from media import forwarder as _forwarder


def keyframe_request_is_broken() -> bool:
    for function in (_engine.MediaEngine.request_keyframe, _forwarder.PublishedTrack.add_sink):
        source = inspect.getsource(function)
        if "tap.request_keyframe()" in source and "ensure_future" not in source \
                and "create_task" not in source:
            return True
    return False


def _request_keyframe(self, publisher_id: str, source: str) -> None:
    track = self._tracks.get((publisher_id, source))
    if track is not None and track.keyframes is not None:
        track.keyframes.request()


def _add_sink(self, sink) -> None:
    self.sinks = (*self.sinks, sink)
    if self.keyframes is not None:
        self.keyframes.request()  # a recording starts at a keyframe


def fix_keyframe_requests(monkeypatch=None) -> bool:
    """Patch media's keyframe requests if they are broken; True if it did."""
    if not keyframe_request_is_broken():
        return False
    targets = [(_engine.MediaEngine, "request_keyframe", _request_keyframe),
               (_forwarder.PublishedTrack, "add_sink", _add_sink)]
    for owner, name, replacement in targets:
        if monkeypatch is not None:
            monkeypatch.setattr(owner, name, replacement)
        else:
            setattr(owner, name, replacement)
    return True
