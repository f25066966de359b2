"""media: the SFU engine on aiortc (passthrough RTP forwarding; never decodes or encodes).

Knows nothing of classes, Socket.IO or HTTP. Public interface: `MediaEngine` (see media/engine.py).
Private aiortc internals are touched in media/_aiortc.py only.
"""

from media.engine import SOURCE_KINDS, MediaEngine, offered_media
from media.forwarder import EncodedPacket

__all__ = ["EncodedPacket", "MediaEngine", "SOURCE_KINDS", "offered_media"]
