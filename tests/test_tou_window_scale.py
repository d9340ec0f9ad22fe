# -*- test-case-name: tests.test_tou_window_scale -*-
"""Window scaling between two rsproto TOU ends (`CAPABILITY_WINDOW`).

RetroShare's window field is 16 bits of bytes, so at most 64 KiB is ever in flight; on the real
lossy path that held the sender back for most of a lossless transfer and a third of one at 5%
loss (docs/tou.md).  Two rsproto ends that both offer it in the SYN / SYN+ACK (a field
RetroShare writes as zero and never reads) count every later window in units of
``1 << WINDOW_SHIFT`` bytes; a SYN's window stays in bytes, and an end that did not offer (or
RetroShare) gets and reads windows in bytes as before.  Deterministic: streams fed by hand and
the simulated network of the recovery tests; one test opens a real UDP socket on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

from tcponudp.config import MAX_WINDOW
from tcponudp.congestion import NewReno
from tcponudp.packet import (
    CAPABILITY_SACK,
    CAPABILITY_WINDOW,
    WINDOW_SHIFT,
    Flags,
)
from tcponudp.reassembly import Arrival, ReceiveBuffer
from tcponudp.relay import RelayEnd
from tcponudp.stream import TouConfig
from tcponudp.transport import TouSocket
from tcponudp.udpmux import UdpMux
from tcponudp.udpport import SOCKET_RECEIVE_BUFFER, listen_udp
from tests.test_tou_recovery import MSS, Link


def _config(scale: bool) -> TouConfig:
    return TouConfig(mss=MSS, idle_timeout=1e9, sack=True, scale_window=scale)


def _link(a_scale: bool, b_scale: bool, window: int = 20 * MSS) -> Link:
    link = Link(window=window, config=_config(a_scale), config_b=_config(b_scale))
    link.a.cc = NewReno(MSS, initial_window=window, max_window=window)
    return link


def test_both_ends_offering_scale_and_syns_stay_in_bytes() -> None:
    """Both offer: both scale by `WINDOW_SHIFT` (and agree SACK).  One offers: neither scales,
    SACK still agreed.  The SYN and SYN+ACK carry `CAPABILITY_WINDOW` and a window in bytes
    (at most 65,535); later segments of scaling ends carry the window in units."""
    link = _link(True, True)
    assert (link.a.window_shift, link.b.window_shift) == (WINDOW_SHIFT, WINDOW_SHIFT)
    assert link.a.sack and link.b.sack
    syns = [p for p in link.acks if p.has(Flags.SYN)]
    assert syns and all(p.checksum == CAPABILITY_WINDOW and p.window <= MAX_WINDOW
                        for p in syns)
    link.transfer(4)
    later = [p for p in link.acks if not p.has(Flags.SYN)]
    assert later and all(p.window << WINDOW_SHIFT > MAX_WINDOW for p in later)
    for a_scale, b_scale in ((True, False), (False, True)):
        link = _link(a_scale, b_scale)
        assert link.a.window_shift == link.b.window_shift == 0
        assert link.a.sack and link.b.sack
        link.transfer(4)
        assert all(p.window <= MAX_WINDOW for p in link.acks)
    syn_b = [p for p in _link(True, False).acks if p.has(Flags.SYN)]
    assert syn_b and all(p.checksum == CAPABILITY_SACK for p in syn_b)


def _largest_flight(link: Link, segments: int) -> int:
    flights: list[int] = []
    link.net.taps.append(lambda *_: flights.append(link.a._snd.flight()))
    link.transfer(segments)
    return max(flights)


def test_scaled_window_lets_more_than_64_kib_fly() -> None:
    """With a congestion window of 150 segments, scaling ends have more than 64 KiB in
    flight; without scaling (RetroShare's window) the flight never passes 65,535 bytes.
    Both transfers arrive whole (`Link.transfer` checks the bytes)."""
    assert _largest_flight(_link(True, True, window=150 * MSS), 200) > MAX_WINDOW
    assert _largest_flight(_link(False, False, window=150 * MSS), 200) <= MAX_WINDOW


def test_out_of_order_bytes_do_not_shrink_the_window() -> None:
    """Bytes held beyond a hole lie inside the advertised window: it stays the same, and a
    segment that ends at its right edge is still taken (a shrinking window would refuse what
    the sender sent into the edge it was shown); one byte beyond the edge is not."""
    rx = ReceiveBuffer(1000)
    assert rx.window() == 1000
    for k in range(1, 9):
        assert rx.receive(100 * k, b"x" * 100)[0] is Arrival.OUT_OF_ORDER
    assert rx.window() == 1000
    assert rx.receive(900, b"y" * 100)[0] is Arrival.OUT_OF_ORDER
    assert rx.receive(901, b"z" * 100)[0] is Arrival.BEYOND_WINDOW
    arrival, delivered = rx.receive(0, b"w" * 100)
    assert arrival is Arrival.IN_ORDER and len(delivered) == 1000


def test_overlapping_segments_cannot_exceed_the_buffer() -> None:
    """A peer that sends overlapping segments at every offset inside the window: what is
    kept beyond the hole never exceeds the buffer, whatever lies within the right edge."""
    rx = ReceiveBuffer(1000)
    kept = [rx.receive(k, b"o" * 100)[0] for k in range(1, 901)]
    assert Arrival.BEYOND_WINDOW in kept
    assert rx._ooo_bytes <= rx.capacity
    assert rx.window() == 1000


def test_socket_offers_scaling_to_direct_peers_only() -> None:
    """`TouSocket` offers window scaling with SACK to a direct peer, SACK alone to a relayed
    one (a relay forwards at its own pace), and nothing with ``large_segments=0``."""
    mux = UdpMux()
    sock = TouSocket(Clock(), mux)
    assert sock._config_for(("127.0.0.1", 7000)).scale_window
    mux.add_relay_end(RelayEnd(local=("127.0.0.1", 1), proxy=("127.0.0.1", 2),
                               remote=("127.0.0.1", 7001)))
    relayed = sock._config_for(("127.0.0.1", 7001))
    assert relayed.sack and not relayed.scale_window
    assert not TouSocket(Clock(), UdpMux(), large_segments=0)._config_for(
        ("127.0.0.1", 7000)).scale_window


@pytest.mark.integration
def test_udp_port_asks_for_a_larger_receive_buffer() -> None:
    """The port's socket holds more than a fresh UDP socket's default (what the kernel
    grants: `SOCKET_RECEIVE_BUFFER`, at most ``net.core.rmem_max``, doubled), so a scaled
    window's burst is not dropped at the socket."""
    fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        default = fresh.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        fresh.close()
    port = listen_udp(reactor, 0, DatagramProtocol(), interface="127.0.0.1")
    try:
        got = port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        port.stopListening()
    assert got > default and SOCKET_RECEIVE_BUFFER > default


