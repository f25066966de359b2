"""Fails loudly when the aiortc internals media/_aiortc.py relies on change (or aiortc leaves 1.16)."""

from __future__ import annotations

import pytest
from aiortc import rtcrtpreceiver, rtcrtpsender

from media import _aiortc


def test_aiortc_internals_used_by_media_are_unchanged():
    problems = _aiortc.internals_problems(_aiortc.EXPECTED_HASHES)
    assert not problems, (
        "aiortc private internals used by media/ changed:\n  - "
        + "\n  - ".join(problems)
        + "\nRe-audit media/_aiortc.py, then update EXPECTED_HASHES "
        "(python -m media._aiortc prints them)."
    )


def test_every_hook_point_is_hashed():
    assert set(_aiortc.EXPECTED_HASHES) == set(_aiortc.source_hashes())


def test_the_guard_fires_on_a_changed_method(monkeypatch):
    async def _handle_rtp_packet(self, packet, arrival_time_ms):  # "a new upstream version"
        return None

    monkeypatch.setattr(rtcrtpreceiver.RTCRtpReceiver, "_handle_rtp_packet", _handle_rtp_packet)
    with pytest.raises(
        _aiortc.InternalsChanged,
        match="aiortc private internals used by media/ changed:(.|\n)*_handle_rtp_packet changed",
    ):
        _aiortc.check_internals()


def test_the_guard_fires_on_another_version_or_a_missing_method(monkeypatch):
    monkeypatch.setattr(_aiortc.aiortc, "__version__", "1.17.0")
    monkeypatch.delattr(rtcrtpsender.RTCRtpSender, "_run_rtp")
    with pytest.raises(_aiortc.InternalsChanged) as raised:
        _aiortc.check_internals({})
    assert "aiortc 1.17.0 is installed" in str(raised.value)
    assert "RTCRtpSender._run_rtp is gone" in str(raised.value)
