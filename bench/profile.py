"""Where the server's time goes while it forwards.

1. A deterministic profile: the unmodified server runs under cProfile (profiled_serve.py), switched
   on for a join storm and for a stretch of steady forwarding. The timer is the thread's CPU time,
   so a sendto that gets preempted is not charged for the wait. Call counts are exact; times carry
   the profiler's overhead (a CPU-clock read around every call, ~1 µs), which inflates Python
   functions most: read the times as a ranking, the counts as facts.
2. The floor of one forwarded packet on this machine, measured alone: a loopback UDP sendto and a
   libsrtp protect of a 1,100-byte packet (what no Python code can avoid).

Not a sampling profiler: on this VM py-spy's samples of the server landed mostly at system-call
exits (sendto looked like 60-80 % of the time while psutil measured ~27 % of the server's CPU in
the kernel).
"""

from __future__ import annotations

import pstats
from pathlib import Path

# Per-call C functions of the per-packet path, by the name pstats gives them.
C_CALLS = {
    "socket sendto (UDP send; on loopback the kernel also delivers the packet)": (
        "<method 'sendto' of '_socket.socket' objects>"
    ),
    "libsrtp srtp_protect (encrypt + authenticate)": "<built-in method pylibsrtp._binding.srtp_protect>",
    "libsrtp srtp_unprotect": "<built-in method pylibsrtp._binding.srtp_unprotect>",
    "libsrtp srtp_protect_rtcp": "<built-in method pylibsrtp._binding.srtp_protect_rtcp>",
    "libsrtp srtp_unprotect_rtcp": "<built-in method pylibsrtp._binding.srtp_unprotect_rtcp>",
    "socket recvfrom (in the event loop's _read_ready)": "<method 'recvfrom' of '_socket.socket' objects>",
    "epoll wait (idle)": "<method 'poll' of 'select.epoll' objects>",
}
# Python functions whose cumulative time tells where the time goes.
CUMULATIVE = [
    ("media/forwarder.py", "on_packet"),
    ("media/forwarder.py", "forward"),
    ("media/_aiortc.py", "send"),
    ("media/_aiortc.py", "_handle_rtp_packet"),
    ("pylibsrtp/__init__.py", "protect"),
    ("asyncio/selector_events.py", "sendto"),
    ("aiortc/rtcrtpsender.py", "_run_rtcp"),
    ("aiortc/rtcrtpreceiver.py", "_run_rtcp"),
    ("aiortc/rtcdtlstransport.py", "_handle_rtcp_data"),
    ("aiortc/rtcdtlstransport.py", "_recv_next"),
    ("signaling/server.py", "_on_request"),
    ("signaling/server.py", "_settle"),
    ("signaling/server.py", "_report_quality"),
    ("media/engine.py", "open_subscriber"),
    ("media/engine.py", "subscriber_answer"),
    ("media/engine.py", "publish"),
    ("aiortc/rtcdtlstransport.py", "start"),
    ("aiortc/rtcpeerconnection.py", "__init__"),
    ("aiortc/rtcrtpreceiver.py", "__init__"),
    ("aiortc/rate.py", "__init__"),
    ("aioice/ice.py", "request_received"),
    ("liveclass/records.py", "_run"),
]


PROJECT = f"{Path(__file__).resolve().parent.parent}/"  # the checkout's root, wherever it is


def _short(path: str) -> str:
    """A function's file as a reader names it: media/forwarder.py, asyncio/queues.py, aiortc/rtp.py."""
    for marker in ("site-packages/", "/lib/python3.11/"):  # (first: the project's .venv is inside the project)
        if marker in path:
            return path.split(marker, 1)[1]
    return path.removeprefix(PROJECT)


def _name(key: tuple) -> str:
    path, line, func = key
    if path == "~":
        return func
    return f"{func} ({_short(path)}:{line})"


def floor(packets: int = 20000) -> dict:
    """CPU cost per call, on this machine, of the two things every forwarded packet needs: a
    loopback UDP sendto (the kernel's send and, on loopback, delivery) and a libsrtp protect."""
    import os
    import resource
    import socket
    import struct
    import subprocess
    import sys

    from pylibsrtp import Policy, Session

    def thread_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        return usage.ru_utime + usage.ru_stime

    # the receiver is another process, as a subscriber is
    sink = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('127.0.0.1',0))\nprint(s.getsockname()[1],flush=True)\nwhile True: s.recv(2048)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None  # stdout=PIPE
    address = ("127.0.0.1", int(sink.stdout.readline()))
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    session = Session(policy=policy)
    payload = os.urandom(1100)
    plain = [struct.pack("!BBHLL", 0x80, 96, i & 0xFFFF, 1234, 5678) + payload for i in range(packets)]
    t = thread_cpu()
    protected = [session.protect(p) for p in plain]
    protect_us = 1e6 * (thread_cpu() - t) / packets
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = thread_cpu()
    for data in protected:
        try:
            sender.sendto(data, address)
        except OSError:
            pass
    sendto_us = 1e6 * (thread_cpu() - t) / packets
    sender.close()
    sink.kill()
    sink.wait()
    return {
        "loopback_sendto_us": round(sendto_us, 2),
        "srtp_protect_us": round(protect_us, 2),
        "packet_bytes": len(plain[0]),
    }


def summarise(prof_path: Path, wall_seconds: float, server_cpu_seconds: float | None = None) -> dict:
    # key -> (cc, nc, tt, ct, callers); typeshed leaves out this attribute that pstats fills
    stats = pstats.Stats(str(prof_path)).stats  # type: ignore[attr-defined]
    by_name = {_name(k): v for k, v in stats.items()}
    idle = by_name.get(C_CALLS["epoll wait (idle)"], (0, 0, 0.0, 0.0, {}))[2]
    total = sum(v[2] for v in stats.values()) - idle  # profiled busy time (inflated by the profiler)
    sent = sum(v[1] for k, v in stats.items() if k[2] == "count_sent" and "media/_aiortc.py" in k[0])
    per_packet = lambda seconds: round(1e6 * seconds / sent, 2) if sent else None  # noqa: E731
    c_calls = {}
    for label, name in C_CALLS.items():
        if name in by_name and label != "epoll wait (idle)":
            _, calls, tottime, _, _ = by_name[name]
            c_calls[label] = {
                "calls": calls,
                "seconds": round(tottime, 3),
                "us_per_call": round(1e6 * tottime / calls, 2) if calls else None,
                "us_per_forwarded_packet": per_packet(tottime),
            }
    cumulative = []
    for file_part, func in CUMULATIVE:
        for key, (_, calls, tottime, cumtime, _) in stats.items():
            if key[2] == func and file_part in key[0]:
                cumulative.append(
                    {
                        "function": _name(key),
                        "calls": calls,
                        "cumulative_s": round(cumtime, 3),
                        "share_pct": round(100 * cumtime / total, 1) if total else None,
                        "us_per_call": round(1e6 * cumtime / calls, 2) if calls else None,
                    }
                )
    top = sorted(((v[2], k) for k, v in stats.items() if _name(k) != C_CALLS["epoll wait (idle)"]), reverse=True)[:20]
    python_calls = sum(v[1] for k, v in stats.items() if k[0] != "~")
    # the Python functions called most often per forwarded packet: the per-packet call chain
    chain = sorted(((v[1], k) for k, v in stats.items() if k[0] != "~"), reverse=True)[:25]
    return {
        "tool": "cProfile (the server under bench.profiled_serve)",
        "wall_seconds": round(wall_seconds, 2),
        "profiled_busy_seconds": round(total, 3),
        "idle_seconds": round(idle, 3),
        **({"server_cpu_seconds": round(server_cpu_seconds, 3)} if server_cpu_seconds is not None else {}),
        "forwarded_packets": sent,
        "profiled_us_per_forwarded_packet": per_packet(total),
        "python_calls_per_forwarded_packet": round(python_calls / sent, 1) if sent else None,
        "calls_per_forwarded_packet": [{"function": _name(k), "per_packet": round(n / sent, 2)} for n, k in chain]
        if sent
        else [],
        "c_calls": c_calls,
        "cumulative": cumulative,
        "self_time": [
            {"function": _name(k), "seconds": round(t, 3), "share_pct": round(100 * t / total, 1), "calls": stats[k][1]}
            for t, k in top
        ],
    }
