"""bench.ports.free_port: the port a server is started on is never one the kernel hands out by itself."""

from __future__ import annotations

import socket

from bench.ports import _ephemeral_start, free_port


def test_free_ports_are_below_the_kernels_ephemeral_range_and_free_on_tcp_and_udp():
    ports = {free_port(udp=True) for _ in range(20)}
    assert len(ports) > 15  # drawn at random, not the same few
    for port in ports:
        assert port < _ephemeral_start()
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", port))
