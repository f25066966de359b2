"""A loopback port for a server started a moment later (a `liveclass serve` process, the bench's relay,
coturn in the tests).

Asking the kernel for a port (bind to port 0, close, hand the number on) races with everything else on the
machine: until the server binds it, the kernel may give the same port to another server bound to port 0
or to an outgoing connection. On a busy machine a bench scenario's client once logged in to another
test's server that way ("Wrong personal ID or password"). So the port is drawn at random from below the
kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range; 32768-60999 on Linux), which the kernel
never hands out by itself, and checked free before it is given.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Not seeded from `random`: test runs reseed it alike in every worker, which would draw the same ports.
_draw = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(udp: bool = False) -> int:
    """A TCP port free on 127.0.0.1 (and UDP too if `udp`), outside the kernel's ephemeral range."""
    kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if udp else [socket.SOCK_STREAM]
    # (Where the ephemeral range starts lower than usual, the draw overlaps it and the race is only rarer.)
    highest = max(_ephemeral_start() - 1, LOWEST + 5000)
    for _ in range(200):
        port = _draw.randint(LOWEST, highest)
        if all(_bindable(port, kind) for kind in kinds):
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 between {LOWEST} and {highest}")
