"""What measuring tools and tests may use of the media plane beyond `MediaEngine`: the public seam of
`bench/` (the benchmark's synthetic peers and its baseline relay). The server never imports this module;
the import contract in pyproject.toml lets the bench reach media only through `media` and this module."""

from media._aiortc import SEND_ERRORS, ReceiverTap, SenderTap
from media.engine import codec_preferences, offered_media
from media.retransmit import Retransmissions
from media.rtp import (
    ABS_SEND_TIME_URI,
    MID_URI,
    abs_send_time,
    ntp_now,
    one_byte_extensions,
    rtp_header,
)
from media.vp8 import keyframe_size as vp8_keyframe_size
from media.vp8 import keyframe_start as vp8_keyframe_start

__all__ = [
    "ABS_SEND_TIME_URI",
    "MID_URI",
    "SEND_ERRORS",
    "ReceiverTap",
    "Retransmissions",
    "SenderTap",
    "abs_send_time",
    "codec_preferences",
    "ntp_now",
    "offered_media",
    "one_byte_extensions",
    "rtp_header",
    "vp8_keyframe_size",
    "vp8_keyframe_start",
]
