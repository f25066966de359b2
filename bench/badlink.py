"""A weak link in user space: a UDP relay between media clients and the server (issue 13).

These machines have no netem, so rate, loss and delay are made here, in the event loop. The relay
opens one *relay port* per server media address (host, port) it is asked about. A client that is
told (through its SDP) that the server lives at the relay port sends its datagrams there; the relay
forwards them to the real server address from a socket of its own per client (so the server sees
one distinct source per client), and the server's replies come back to that client from the relay
port. Each direction is impaired on its own and can be changed while traffic flows:

  rate      a token bucket in bit/s with a drop-tail queue bounded in milliseconds of queueing
            (like tbf's `rate`, `burst` and `latency`); a datagram that would wait longer is dropped
  loss      a random fraction of datagrams dropped before the queue (independent, like netem loss)
  delay     a fixed one-way delay in ms (RTT 200 ms = 100 ms each way), order kept

How ICE goes through it (checked with aiortc 1.16, see tests/test_badlink.py):
- the SDP the client receives has the server's candidates replaced by relay addresses
  (`rewrite_candidates`); for a Chromium page, `CHROMIUM_REWRITE_JS` does the same inside the page;
- the SDP the server receives has the client's candidates (and end-of-candidates) removed
  (`strip_candidates`), otherwise the server could reach the client directly around the relay. The
  server then learns the client as a peer-reflexive candidate (the relay's per-client socket) from
  the client's own connectivity checks, and answers through it.

Everything runs in the caller's event loop (sockets are registered with `loop.add_reader`), so
`rewrite_candidates` can open relay ports on demand synchronously.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
from dataclasses import dataclass, field

# "a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ..."
_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ )(\S+)( \d+ )(\S+) (\d+)( typ \S+)(.*)$")


@dataclass
class Impairment:
    """One direction's impairment. rate None = unlimited; queue_ms bounds queueing at `rate`."""

    rate: float | None = None  # bit/s
    loss: float = 0.0  # fraction of datagrams dropped at random, 0..1
    delay_ms: float = 0.0  # one-way
    queue_ms: float = 200.0  # like tbf latency: the longest a datagram may wait for the rate
    burst: int = 3000  # bytes that may leave back to back at line rate (>= one datagram)


@dataclass
class Counters:
    forwarded_packets: int = 0
    forwarded_bytes: int = 0
    lost_packets: int = 0  # dropped by `loss`
    queue_dropped_packets: int = 0  # dropped because the rate queue was full
    queue_dropped_bytes: int = 0
    send_errors: int = 0  # the socket refused (buffer full, unreachable)

    @property
    def offered_packets(self) -> int:
        return self.forwarded_packets + self.lost_packets + self.queue_dropped_packets


@dataclass
class Direction:
    """Impairment + counters of one direction ("up": client -> server, "down": server -> client).

    The rate is a GCRA token bucket: each datagram leaves at max(now, tat - burst/rate) and moves
    the theoretical arrival time `tat` on by size/rate; the wait is the queueing delay, and a datagram
    whose wait would exceed queue_ms is dropped (drop-tail). Departures are monotonic, so with a
    fixed delay the order of datagrams is kept.
    """

    name: str
    impairment: Impairment = field(default_factory=Impairment)
    counters: Counters = field(default_factory=Counters)
    _tat: float = 0.0
    _rng: random.Random = field(default_factory=lambda: random.Random(13))

    def set(self, **changes) -> None:
        """Change the impairment now (rate=, loss=, delay_ms=, queue_ms=, burst=)."""
        for key, value in changes.items():
            if not hasattr(self.impairment, key):
                raise TypeError(f"unknown impairment {key!r}")
            setattr(self.impairment, key, value)

    def schedule(self, size: int, now: float) -> float | None:
        """When a datagram of `size` bytes arriving at `now` must be delivered, or None to drop it."""
        imp = self.impairment
        if imp.loss > 0 and self._rng.random() < imp.loss:
            self.counters.lost_packets += 1
            return None
        leave = now
        if imp.rate:
            tat = max(self._tat, now)
            leave = max(now, tat - imp.burst * 8 / imp.rate)
            if leave - now > imp.queue_ms / 1000:
                self.counters.queue_dropped_packets += 1
                self.counters.queue_dropped_bytes += size
                return None
            self._tat = tat + size * 8 / imp.rate
        return leave + imp.delay_ms / 1000


class _Port:
    """One relay port (for one server address) and the per-client sockets towards the server."""

    def __init__(self, link: BadLink, server: tuple[str, int], bind_host: str) -> None:
        self.link, self.server = link, server
        self.sock = _udp_socket(bind_host)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.upstream: dict[tuple, socket.socket] = {}  # client address -> socket to the server
        link.loop.add_reader(self.sock.fileno(), self._from_client)

    def _from_client(self) -> None:
        while True:
            try:
                data, client = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error of an earlier send
            out = self.upstream.get(client)
            if out is None:
                out = self.upstream[client] = _udp_socket(self.address[0])
                self.link.loop.add_reader(out.fileno(), self._from_server, out, client)
            self.link._forward(self.link.up, out, data, self.server)

    def _from_server(self, out: socket.socket, client: tuple) -> None:
        while True:
            try:
                data, _ = out.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self.link._forward(self.link.down, self.sock, data, client)

    def close(self) -> None:
        for sock in [self.sock, *self.upstream.values()]:
            self.link.loop.remove_reader(sock.fileno())
            sock.close()
        self.upstream.clear()


def _udp_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    sock.bind((host, 0))
    return sock


class BadLink:
    """The relay. `up`/`down` are the two Directions; `address_for(host, port)` opens (once) the
    relay port for a server address and returns the relay's (host, port).

    bind_host: where relay ports listen; None = on the server candidate's own host address (the
    server runs on this machine in tests, so whatever reaches the server reaches the relay).
    """

    def __init__(
        self, bind_host: str | None = None, *, up: Impairment | None = None, down: Impairment | None = None
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.bind_host = bind_host
        self.up = Direction("up", up or Impairment())
        self.down = Direction("down", down or Impairment())
        self.ports: dict[tuple[str, int], _Port] = {}

    def set(self, **changes) -> None:
        """The same change in both directions (e.g. set(rate=300_000, loss=0.05, delay_ms=100))."""
        self.up.set(**changes)
        self.down.set(**changes)

    def address_for(self, host: str, port: int) -> tuple[str, int]:
        key = (host, int(port))
        if key not in self.ports:
            self.ports[key] = _Port(self, key, self.bind_host or host)
        return self.ports[key].address

    def _forward(self, direction: Direction, sock: socket.socket, data: bytes, to: tuple) -> None:
        now = self.loop.time()
        at = direction.schedule(len(data), now)
        if at is None:
            return
        if at <= now:
            self._send(direction, sock, data, to)
        else:
            self.loop.call_at(at, self._send, direction, sock, data, to)

    @staticmethod
    def _send(direction: Direction, sock: socket.socket, data: bytes, to: tuple) -> None:
        try:
            sock.sendto(data, to)
        except OSError:  # incl. BlockingIOError, or the socket closed meanwhile
            direction.counters.send_errors += 1
            return
        direction.counters.forwarded_packets += 1
        direction.counters.forwarded_bytes += len(data)

    def stats(self) -> dict:
        return {d.name: vars(d.counters).copy() for d in (self.up, self.down)}

    def close(self) -> None:
        for port in self.ports.values():
            port.close()
        self.ports.clear()


def rewrite_candidates(sdp: str, relay: BadLink) -> str:
    """The SDP with every UDP candidate of the server replaced by the relay port for it (opened on
    demand). Non-UDP candidates are removed (they would go around the relay); related addresses
    (raddr/rport) are dropped with them."""
    out = []
    for line in sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n"):
        match = _CANDIDATE.match(line)
        if match:
            head, transport, priority, host, port, typ, rest = match.groups()
            if transport.lower() != "udp":
                continue
            relay_host, relay_port = relay.address_for(host, int(port))
            rest = re.sub(r" raddr \S+ rport \d+", "", rest)
            line = f"{head}{transport}{priority}{relay_host} {relay_port} typ host{rest}"
        out.append(line)
    return ("\r\n" if "\r\n" in sdp else "\n").join(out)


def strip_candidates(sdp: str) -> str:
    """The client's SDP for the server: no candidates and no end-of-candidates, so the server can
    reach the client only as the peer-reflexive address its checks arrive from (the relay)."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    return newline.join(
        line for line in sdp.split(newline) if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


def rewrite_candidate(candidate: str, relay: BadLink) -> str | None:
    """One trickled server candidate ("candidate:..." or "a=candidate:...") rewritten, or None if it
    must not reach the client (not UDP)."""
    prefix = "" if candidate.startswith("a=") else "a="
    rewritten = rewrite_candidates(prefix + candidate, relay)
    return rewritten[len(prefix) :] if rewritten else None


def relay_map(relay: BadLink) -> dict[str, str]:
    """{"server host:port": "relay host:port"} for CHROMIUM_REWRITE_JS (the relay ports must be
    opened first, with `address_for`, for every server address the page may receive)."""
    return {f"{h}:{p}": "%s:%d" % relay.address_for(h, p) for h, p in relay.ports}


#: For a Chromium page (checked with Chromium 156, tests/test_web_weak_link_media.py): wraps
#: RTCPeerConnection.prototype.setRemoteDescription and addIceCandidate so that the server's candidates
#: are replaced by the relay's, and hides the page's own candidates from the page's code.
#:
#: - Server candidates: `window.__badlinkMap` ({"host:port": "relayhost:relayport"}, from `relay_map`)
#:   gives the relay address of a server address known beforehand. The server opens new ports for
#:   every connection, so a test usually also exposes `window.__badlinkAddress(host, port)` (a
#:   Playwright binding: `page.expose_function("__badlinkAddress", lambda h, p: "%s:%d" %
#:   link.address_for(h, p))`), which opens the relay port on demand and answers "relayhost:port".
#:   A candidate neither knows is dropped (it would bypass the relay), and so are non-UDP ones.
#: - The page's own candidates (`strip_candidates`, done in the page): `localDescription` (and
#:   current/pendingLocalDescription) read by the page come without candidates or end-of-candidates,
#:   so the server learns the page only as the peer-reflexive address its checks arrive from: the
#:   relay. Trickled ones (`icecandidate` events) are left alone: the web client does not trickle
#:   (web_client/js/media.js); a page that does must not send them in such a test.
#:
#: Use with `page.add_init_script(script)`, e.g. `"window.__badlinkMap = %s;" % json.dumps(map) + JS`
#: (or `"window.__badlinkMap = {};" + JS` with the binding).
CHROMIUM_REWRITE_JS = r"""
(() => {
  const map = () => (window.__badlinkMap = window.__badlinkMap || {});
  const relayOf = async (host, port) => {
    const key = host + ':' + port;
    if (!map()[key] && typeof window.__badlinkAddress === 'function') {
      const to = await window.__badlinkAddress(host, Number(port));
      if (to) map()[key] = to;
    }
    return map()[key] || null;
  };
  const line = async (c) => {
    const m = c.match(/^((?:a=)?candidate:\S+ \d+ )(\S+)( \d+ )(\S+) (\d+) typ \S+(.*)$/);
    if (!m || m[2].toLowerCase() !== 'udp') return null;
    const to = await relayOf(m[4], m[5]);
    if (!to) return null;
    const [host, port] = [to.slice(0, to.lastIndexOf(':')), to.slice(to.lastIndexOf(':') + 1)];
    return m[1] + m[2] + m[3] + host + ' ' + port + ' typ host' +
           m[6].replace(/ raddr \S+ rport \d+/, '');
  };
  const rewrite = async (sdp) => {
    const newline = sdp.includes('\r\n') ? '\r\n' : '\n';
    const out = [];
    for (const l of sdp.split(newline)) {
      const rewritten = l.startsWith('a=candidate:') ? await line(l) : l;
      if (rewritten !== null) out.push(rewritten);
    }
    return out.join(newline);
  };
  const strip = (sdp) => {
    const newline = sdp.includes('\r\n') ? '\r\n' : '\n';
    return sdp.split(newline).filter((l) => !l.startsWith('a=candidate:') &&
                                           !l.startsWith('a=end-of-candidates')).join(newline);
  };
  const P = RTCPeerConnection.prototype;
  const setRemote = P.setRemoteDescription;
  P.setRemoteDescription = async function (desc, ...rest) {
    if (desc && desc.sdp) desc = {type: desc.type, sdp: await rewrite(desc.sdp)};
    return setRemote.call(this, desc, ...rest);
  };
  const addCandidate = P.addIceCandidate;
  P.addIceCandidate = async function (c, ...rest) {
    if (c && c.candidate) {
      const l = await line(c.candidate);
      if (l === null) return;
      c = {candidate: l, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex};
    }
    return addCandidate.call(this, c, ...rest);
  };
  for (const name of ['localDescription', 'currentLocalDescription', 'pendingLocalDescription']) {
    const d = Object.getOwnPropertyDescriptor(P, name);
    if (!d || !d.get) continue;
    Object.defineProperty(P, name, {...d, get() {
      const v = d.get.call(this);
      return v && v.sdp ? new RTCSessionDescription({type: v.type, sdp: strip(v.sdp)}) : v;
    }});
  }
})();
"""
