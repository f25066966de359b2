"""The ONE module of `media/` that touches aiortc's (and aioice's) private internals.

aiortc has no public API for passthrough forwarding. Everything that reaches below its public
surface lives here, pinned to aiortc 1.16 and guarded by `check_internals()`, which
tests/media/test_aiortc_internals.py runs: on an aiortc upgrade it fails with
"aiortc private internals used by media/ changed: ..." instead of letting the SFU break quietly.

  ReceiverTap   publish side: every RTP packet of an RTCRtpReceiver, taken before the jitter buffer;
                no depayloading, no decoder thread. RTCP RR, NACK generation and RTX unwrapping stay.
  SenderTap     subscribe side: an RTCRtpSender whose encoder loop is parked (ParkedTrack); the
                forwarder writes rewritten RTP through its SRTP session and keeps its SR truthful.
  ParkedTrack   the track that parks a sender's _run_rtp loop (public API: replaceTrack).

Private names used (aiortc 1.16.0, file:line):
  rtcrtpreceiver.py:392 RTCRtpReceiver.receive             replaced per instance (no decoder thread)
  rtcrtpreceiver.py:471 RTCRtpReceiver._handle_rtp_packet  replaced per instance; called from
                        rtcdtlstransport.py:624 RTCDtlsTransport._handle_rtp_data
  rtcrtpreceiver.py:292,305,307,315,316  __decoder_thread, __rtcp_task, __started,
                        __remote_streams (RR + getStats read it), __rtcp_ssrc
  rtcrtpreceiver.py:569 _run_rtcp, :612 _send_rtcp (wrapped per instance: the RR's fraction lost),
                        :619 _send_rtcp_nack, :630 _send_rtcp_pli
  rtcrtpsender.py:99/100 RTCRtpSender._ssrc/_rtx_ssrc; :104 __encoder (read only, for the proof)
  rtcrtpsender.py:125-130 __ntp_timestamp/__rtp_timestamp/__octet_count/__packet_count (read by
                        _run_rtcp for the SR), __rtt (read only, for stats)
  rtcrtpsender.py:244 RTCRtpSender._handle_rtcp_packet     wrapped per instance
  rtcrtpsender.py:475 RTCRtpSender._send_rtcp              wrapped per instance (idle slots are silent)
  rtcdtlstransport.py:378 RTCDtlsTransport._tx_srtp, _state, :683 _register_rtp_receiver
  aioice ice.py:449 Connection._nominated                  the selected pair, for the synchronous send
  rtcrtpreceiver.py:20,301 RemoteBitrateEstimator          not built for send-only slots (see below)
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import aioice
import aiortc
import pylibsrtp
from aiortc import rtcdtlstransport, rtcrtpreceiver, rtcrtpsender
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamTrack
from av.frame import Frame
from av.packet import Packet
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    AnyRtcpPacket,
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)

PINNED_MINOR = "1.16."

#: Errors of one subscriber's send that must stay with that subscriber. A libsrtp error ("index too
#: old") left uncaught would reach RTCDtlsTransport._recv_next and drop the packet for every later
#: subscriber.
SEND_ERRORS: tuple[type[BaseException], ...] = (OSError, pylibsrtp.Error)  # incl. ConnectionError

_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"


class InternalsChanged(RuntimeError):
    """aiortc no longer looks like the version the taps were written against."""


# --------------------------------------------------------------------------------- receive side
class ReceiverTap:
    """Every media RTP packet of one RTCRtpReceiver, before the jitter buffer; never decoded.

    `sink(packet)` is called synchronously for every media packet (RTX already unwrapped to the
    original SSRC, payload type and sequence number). aiortc's own per-track REMB estimator is never
    fed, so aiortc sends no REMB for this track: the engine sends one per connection.
    """

    def __init__(self, receiver: rtcrtpreceiver.RTCRtpReceiver, kind: str, sink: Callable[[RtpPacket], None]) -> None:
        self.receiver = receiver
        self.kind = kind
        self.sink = sink
        self.media_ssrc: int | None = None
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._rtx_to_media: dict[int, int] = {}
        self._nack = NackGenerator() if kind == "video" else None
        # Loss (0-1) of the subscribers of this track, reported to the publisher in our receiver
        # reports when higher than the uplink's: its Opus encoder adds in-band FEC only for loss it hears of.
        self.downstream_loss = 0.0
        self._original_send_rtcp = receiver._send_rtcp
        # The very dict the receiver's RR loop (_run_rtcp) and getStats() iterate.
        self._streams: dict[int, StreamStatistics] = getattr(receiver, _R + "remote_streams")
        # Instance attributes shadow the class methods: pc.__connect calls receiver.receive(params),
        # RTCDtlsTransport calls receiver._handle_rtp_packet(packet, arrival_time_ms=...).
        receiver.receive = self._receive  # type: ignore[method-assign]
        receiver._handle_rtp_packet = self._handle_rtp_packet  # type: ignore[method-assign]
        receiver._send_rtcp = self._send_rtcp  # type: ignore[method-assign]

    async def _receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """RTCRtpReceiver.receive without starting the decoder thread."""
        r = self.receiver
        if getattr(r, _R + "started"):
            return
        for codec in parameters.codecs:
            if codec.payloadType is not None:  # (always set once negotiated)
                self._codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._rtx_to_media[encoding.rtx.ssrc] = encoding.ssrc
        r.transport._register_rtp_receiver(r, parameters)
        setattr(r, _R + "rtcp_task", asyncio.ensure_future(r._run_rtcp()))
        setattr(r, _R + "started", True)  # so that stop() unregisters and cancels the RR loop

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        stats = self._streams.get(packet.ssrc)
        if stats is None:
            stats = self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        if is_rtx(codec):
            media_ssrc = self._rtx_to_media.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if media_ssrc is None or len(packet.payload) < 2 or apt not in self._codecs:
                return  # unknown RTX stream, or padding-only probe
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=media_ssrc)
        self.media_ssrc = packet.ssrc
        if self._nack is not None and self._nack.add(packet):
            await self.receiver._send_rtcp_nack(packet.ssrc, sorted(self._nack.missing))
        self.sink(packet)

    async def _send_rtcp(self, packet: AnyRtcpPacket) -> None:
        """Wraps RTCRtpReceiver._send_rtcp: a receiver report says at least `downstream_loss`."""
        if isinstance(packet, RtcpRrPacket) and self.downstream_loss > 0:
            floor = min(255, int(self.downstream_loss * 256))
            for report in packet.reports:
                report.fraction_lost = max(report.fraction_lost, floor)
        await self._original_send_rtcp(packet)

    def loss(self) -> tuple[int, int]:
        """(packets expected, packets lost) on the media SSRC so far (RTX not counted)."""
        stats = self._streams.get(self.media_ssrc) if self.media_ssrc is not None else None
        if stats is None or stats.max_seq is None:
            return 0, 0
        return stats.packets_expected, stats.packets_lost

    async def request_keyframe(self) -> bool:
        """Send a PLI to the publisher."""
        if self.media_ssrc is None:
            return False
        await self.receiver._send_rtcp_pli(self.media_ssrc)
        return True

    async def send_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        """Send one REMB covering `ssrcs` (Chrome applies any REMB to its whole connection)."""
        rtcp_ssrc = getattr(self.receiver, _R + "rtcp_ssrc")
        if rtcp_ssrc is None:
            return
        await self.receiver._send_rtcp(
            RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs))
        )

    def has_decoder(self) -> bool:
        return getattr(self.receiver, _R + "decoder_thread") is not None


# ------------------------------------------------------------------------------------ send side
class ParkedTrack(MediaStreamTrack):
    """A track whose recv() never returns: a sender given it parks its _run_rtp loop, so it creates
    no encoder and does not poll (a sender with track None wakes every 20 ms)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Frame | Packet[Any]:
        parked: asyncio.Future[Frame | Packet[Any]] = asyncio.Future()
        return await parked  # never set: cancelled by sender.stop()


class SenderTap:
    """Write already-built RTP packets through one RTCRtpSender's SRTP session.

    Callbacks: on_ready() once the sender is negotiated and DTLS is up (payload types, extension ids
    and mid are then known); on_keyframe_request() for PLI/FIR; on_nack(seqs); on_remb(bps);
    on_report(fraction_lost_256, packets_lost, jitter) for every receiver report on this SSRC.
    """

    def __init__(
        self,
        sender: rtcrtpsender.RTCRtpSender,
        *,
        on_ready: Callable[[], None],
        on_keyframe_request: Callable[[], None],
        on_nack: Callable[[list[int]], None],
        on_remb: Callable[[int, list[int]], None],
        on_report: Callable[[int, int, int, int], None],
        sending: Callable[[], bool] = lambda: True,
    ) -> None:
        self.sender = sender
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.payload_type = 0
        self.rtx_payload_type: int | None = None
        self.clock_rate = 90000
        self.extension_ids: dict[str, int] = {}
        self.mid: str | None = None
        self.ready = False
        self._on_ready = on_ready
        self._on_keyframe_request = on_keyframe_request
        self._on_nack = on_nack
        self._on_remb = on_remb
        self._on_report = on_report
        self._dtls: rtcdtlstransport.RTCDtlsTransport | None = None
        self._pair: aioice.ice.CandidatePair | None = None  # the selected pair the cached socket belongs to
        self._socket: asyncio.DatagramTransport | None = None
        self._remote_addr: tuple[str, int] | None = None
        self._original_send = sender.send
        self._original_rtcp = sender._handle_rtcp_packet
        self._original_send_rtcp = sender._send_rtcp
        self._sending = sending
        sender.replaceTrack(ParkedTrack(sender.kind))
        sender.send = self._send  # type: ignore[method-assign]
        sender._handle_rtcp_packet = self._handle_rtcp_packet  # type: ignore[method-assign]
        sender._send_rtcp = self._send_rtcp  # type: ignore[method-assign]

    async def _send(self, parameters: RTCRtpSendParameters) -> None:
        """Wraps RTCRtpSender.send (public): note what was negotiated, then start it as usual."""
        if self.ready:  # pc.__connect calls send() again after every renegotiation
            return
        codec = parameters.codecs[0]
        self.payload_type = codec.payloadType or 0  # (always set once negotiated)
        self.clock_rate = codec.clockRate
        for c in parameters.codecs:
            if is_rtx(c) and c.parameters.get("apt") == codec.payloadType:
                self.rtx_payload_type = c.payloadType
        self.extension_ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        self.mid = parameters.muxId
        await self._original_send(parameters)  # starts the parked RTP task and the RTCP SR task
        self._dtls = self.sender.transport
        self.ready = True
        self._on_ready()

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self._on_keyframe_request()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if self.ssrc in ssrcs:
                    self._on_remb(bitrate, ssrcs)
            return
        if isinstance(packet, RtcpRtpfbPacket):
            if packet.fmt == RTCP_RTPFB_NACK:
                self._on_nack(packet.lost)
            return
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self.ssrc:
                    self._on_report(report.fraction_lost, report.packets_lost, report.jitter, report.highest_sequence)
        await self._original_rtcp(packet)  # RR/SR: aiortc keeps RTT and remote-inbound stats

    async def _send_rtcp(self, packets: list[AnyRtcpPacket]) -> None:
        """Wraps RTCRtpSender._send_rtcp: an idle slot stays silent (no SR, SDES or BYE every second
        for nothing: 7 slots x 45 students of packets that carry no media)."""
        if self._sending():
            await self._original_send_rtcp(packets)

    # -- the hot path: synchronous SRTP protect + sendto on the selected ICE pair
    def send(self, data: bytes) -> None:
        dtls = self._dtls
        if dtls is None or dtls._state != DtlsState.CONNECTED:
            raise ConnectionError("DTLS not connected")
        pair = dtls.transport._connection._nominated.get(1)
        socket, remote_addr = self._socket, self._remote_addr
        if pair is not self._pair or socket is None or remote_addr is None:
            if pair is None:
                raise ConnectionError("no selected ICE pair")
            self._pair = pair
            socket = self._socket = pair.protocol.transport
            remote_addr = self._remote_addr = pair.remote_addr
        socket.sendto(dtls._tx_srtp.protect(data), remote_addr)

    def backlog(self) -> int:
        """Bytes waiting in the socket's user-space write buffer (grows only when the kernel refuses:
        a congested TURN/TCP path or a full socket buffer)."""
        socket = self._socket
        size = getattr(socket, "get_write_buffer_size", None)
        return size() if size is not None else 0

    # -- keep the RTCP SR truthful (RTCRtpSender._run_rtcp reads these four counters)
    def count_sent(self, payload_length: int) -> None:
        s = self.sender
        s._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]  # name-mangled private counter
        s._RTCRtpSender__octet_count += payload_length  # type: ignore[attr-defined]  # (the same)

    def set_sr_mapping(self, ntp: int, rtp_timestamp: int) -> None:
        s = self.sender
        s._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]  # name-mangled private field
        s._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]  # (the same)

    def rtt(self) -> float | None:
        """Round-trip time in seconds from the subscriber's receiver reports (aiortc's estimate; None
        when it is not known or not believable: aiortc repeats a sender report's NTP time while a slot
        is idle, and a receiver's delay since the first of them makes the estimate negative)."""
        rtt = getattr(self.sender, _S + "rtt")
        return rtt if rtt is not None and rtt >= 0 else None

    def has_encoder(self) -> bool:
        return getattr(self.sender, _S + "encoder") is not None


# ----------------------------------------------------------------------------- host addresses
_discovered_host_addresses = aioice.ice.get_host_addresses


def use_host_addresses(addresses: list[str] | None) -> list[str]:
    """Gather host candidates from these addresses only (None: this machine's interfaces, looked up
    once here instead of inside every connection's gathering). aiortc has no option for it."""
    chosen = list(addresses) if addresses else _discovered_host_addresses(use_ipv4=True, use_ipv6=True)

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured
    return chosen


# ------------------------------------------------------------------------- send-only transceivers
def add_sendonly_transceiver(pc: aiortc.RTCPeerConnection, kind: str) -> aiortc.RTCRtpTransceiver:
    """pc.addTransceiver(kind, direction="sendonly"), without the receive-side bitrate estimator
    aiortc builds for every video receiver: a subscribe slot never receives RTP, and each estimator
    costs ~1 ms of CPU and ~100 KB (1,000 rate buckets) — 3 per student, 17 % of a join storm's CPU.
    The receiver skips a None estimator (rtcrtpreceiver.py:482). Synchronous: nothing else runs on
    the event loop while the module attribute is swapped."""
    original = rtcrtpreceiver.RemoteBitrateEstimator
    setattr(rtcrtpreceiver, "RemoteBitrateEstimator", _no_estimator)  # a class swapped for a factory of None
    try:
        return pc.addTransceiver(kind, direction="sendonly")
    finally:
        setattr(rtcrtpreceiver, "RemoteBitrateEstimator", original)


def _no_estimator() -> None:
    return None


# ---------------------------------------------------------------------------------------- guard
def _guarded_functions() -> dict[str, Any]:
    """Functions whose behaviour the taps replicate or rely on; their source is hashed."""
    R, S = rtcrtpreceiver.RTCRtpReceiver, rtcrtpsender.RTCRtpSender
    D = rtcdtlstransport.RTCDtlsTransport
    return {
        "RTCRtpReceiver.__init__": R.__init__,
        "RTCRtpReceiver.receive": R.receive,
        "RTCRtpReceiver.stop": R.stop,
        "RTCRtpReceiver._handle_rtp_packet": R._handle_rtp_packet,
        "RTCRtpReceiver._run_rtcp": R._run_rtcp,
        "RTCRtpReceiver._send_rtcp": R._send_rtcp,
        "RTCRtpReceiver._send_rtcp_pli": R._send_rtcp_pli,
        "RTCRtpReceiver._send_rtcp_nack": R._send_rtcp_nack,
        "RTCRtpSender.__init__": S.__init__,
        "RTCRtpSender.send": S.send,
        "RTCRtpSender._handle_rtcp_packet": S._handle_rtcp_packet,
        "RTCRtpSender._run_rtp": S._run_rtp,
        "RTCRtpSender._run_rtcp": S._run_rtcp,
        "RTCRtpSender._send_rtcp": S._send_rtcp,
        "RTCDtlsTransport._send_rtp": D._send_rtp,
        "RTCDtlsTransport._handle_rtp_data": D._handle_rtp_data,
        "RTCDtlsTransport._register_rtp_receiver": D._register_rtp_receiver,
        "RtpRouter.route_rtcp": rtcdtlstransport.RtpRouter.route_rtcp,
        "aioice.Connection.sendto": aioice.ice.Connection.sendto,
        "aioice.Connection.gather_candidates": aioice.ice.Connection.gather_candidates,
    }


def source_hashes() -> dict[str, str]:
    return {
        name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
        for name, fn in _guarded_functions().items()
    }


#: Recorded on aiortc 1.16.0 / aioice 0.13.0 (`python -m media._aiortc` prints the current ones).
EXPECTED_HASHES: dict[str, str] = {
    "RTCRtpReceiver.__init__": "3e3b7b5cefbaac6f",
    "RTCRtpReceiver.receive": "d6d8d8d7a0bf4e95",
    "RTCRtpReceiver.stop": "63734b6894ce67a5",
    "RTCRtpReceiver._handle_rtp_packet": "4e54983d021a6336",
    "RTCRtpReceiver._run_rtcp": "0f57daa3218616c0",
    "RTCRtpReceiver._send_rtcp": "9f0bc9f6a8ddb289",
    "RTCRtpReceiver._send_rtcp_pli": "ae74c43d50f6eb7b",
    "RTCRtpReceiver._send_rtcp_nack": "5735e597c91b5cf6",
    "RTCRtpSender.__init__": "beb1bc0ae04db20d",
    "RTCRtpSender.send": "3969482b77a2a65f",
    "RTCRtpSender._handle_rtcp_packet": "a4ee4c7355f8de7a",
    "RTCRtpSender._run_rtp": "ff597a1d554cb373",
    "RTCRtpSender._run_rtcp": "51e0a924eac4e39b",
    "RTCRtpSender._send_rtcp": "36c0f53aeac6b686",
    "RTCDtlsTransport._send_rtp": "763b02bceb0b0ab9",
    "RTCDtlsTransport._handle_rtp_data": "5def9061cc3da1f6",
    "RTCDtlsTransport._register_rtp_receiver": "d35a385b0afb20bf",
    "RtpRouter.route_rtcp": "199bd7e279f1945a",
    "aioice.Connection.sendto": "bf162ec03bdce2cc",
    "aioice.Connection.gather_candidates": "d33db28d4d1e49ff",
}


def internals_problems(expected_hashes: dict[str, str] | None = None) -> list[str]:
    """Everything that no longer matches what the taps were written against (empty: all fine)."""
    problems: list[str] = []
    if not aiortc.__version__.startswith(PINNED_MINOR):
        problems.append(
            f"aiortc {aiortc.__version__} is installed, media/ is written for "
            f"{PINNED_MINOR}x (pyproject pins aiortc=={PINNED_MINOR}*)"
        )
    R, S = rtcrtpreceiver.RTCRtpReceiver, rtcrtpsender.RTCRtpSender
    D = rtcdtlstransport.RTCDtlsTransport
    for cls, names in (
        (
            R,
            [
                "receive",
                "stop",
                "_handle_rtp_packet",
                "_run_rtcp",
                "_send_rtcp",
                "_send_rtcp_nack",
                "_send_rtcp_pli",
                "_set_rtcp_ssrc",
            ],
        ),
        (S, ["send", "stop", "replaceTrack", "_handle_rtcp_packet", "_next_encoded_frame", "_run_rtp", "_run_rtcp"]),
        (D, ["_send_rtp", "_register_rtp_receiver", "_handle_rtp_data"]),
    ):
        for name in names:
            if not callable(getattr(cls, name, None)):
                problems.append(f"{cls.__name__}.{name} is gone")
    for cls, attributes in (
        (
            R,
            [
                "self.__remote_streams",
                "self.__rtcp_ssrc",
                "self.__rtcp_task",
                "self.__started",
                "self.__decoder_thread",
            ],
        ),
        (
            S,
            [
                "self._ssrc",
                "self._rtx_ssrc",
                "self.__encoder",
                "self.__ntp_timestamp",
                "self.__rtp_timestamp",
                "self.__octet_count",
                "self.__packet_count",
                "self.__rtt",
            ],
        ),
    ):
        source = inspect.getsource(cls.__init__)
        for attribute in attributes:
            if attribute + " " not in source and attribute + ":" not in source:
                problems.append(f"{cls.__name__}.__init__ no longer sets {attribute}")
    signature = inspect.signature(R._handle_rtp_packet)
    if list(signature.parameters) != ["self", "packet", "arrival_time_ms"]:
        problems.append(f"RTCRtpReceiver._handle_rtp_packet signature is now {signature}")
    if "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" not in inspect.getsource(
        D._handle_rtp_data
    ):
        problems.append("RTCDtlsTransport._handle_rtp_data no longer calls receiver._handle_rtp_packet")
    if "self.__track.recv()" not in inspect.getsource(S._next_encoded_frame):
        problems.append("RTCRtpSender no longer pulls from track.recv(): ParkedTrack won't park it")
    dtls_init = inspect.getsource(D.__init__) + inspect.getsource(D.start)
    for attribute in ("self._state", "self._tx_srtp"):
        if attribute not in dtls_init:
            problems.append(f"RTCDtlsTransport no longer sets {attribute}")
    if "get_host_addresses(" not in inspect.getsource(aioice.ice.Connection.gather_candidates):
        problems.append(
            "aioice no longer gathers through get_host_addresses(): server addresses "
            "from the configuration would be ignored"
        )
    if "= RemoteBitrateEstimator()" not in inspect.getsource(
        R.__init__
    ) or "if self.__remote_bitrate_estimator is not None" not in inspect.getsource(R._handle_rtp_packet):
        problems.append("RTCRtpReceiver no longer builds its RemoteBitrateEstimator as media/ expects")
    if "self._nominated" not in inspect.getsource(aioice.ice.Connection.__init__):
        problems.append("aioice Connection no longer keeps _nominated (selected pairs)")
    if expected_hashes:
        now = source_hashes()
        for name, digest in expected_hashes.items():
            if now.get(name) != digest:
                problems.append(
                    f"source of {name} changed ({digest} -> {now.get(name)}): re-audit media/_aiortc.py against it"
                )
    return problems


def check_internals(expected_hashes: dict[str, str] | None = None) -> None:
    """Raise InternalsChanged with every problem found (hashes default to EXPECTED_HASHES)."""
    problems = internals_problems(EXPECTED_HASHES if expected_hashes is None else expected_hashes)
    if problems:
        raise InternalsChanged("aiortc private internals used by media/ changed:\n  - " + "\n  - ".join(problems))


if __name__ == "__main__":
    import json

    print(json.dumps(source_hashes(), indent=1))
