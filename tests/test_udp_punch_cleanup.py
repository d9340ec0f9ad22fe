# -*- test-case-name: tests.test_udp_punch_cleanup -*-
"""Real nodes on 127.0.0.1: a punch the link manager gives up on leaves nothing behind, and
the stunner asks at once when the UDP port starts (both were found in the network lab)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol

from pqi.link.linkmgr import DialUdp, Path
from tcponudp import NatType
from tests.service_fakes import on_fresh_reactor, wait_for
from tests.test_udp_node import dht_ready, three_nodes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.mark.slow
def test_a_cancelled_punch_aborts_its_tou_handshake(tmp_path) -> None:
    """bob accepts the connect exchange but never answers TOU, so alice's punch cannot finish;
    when alice's dial is cancelled (the link manager's deadline) her TOU handshake with bob
    ends at once instead of blocking the next attempt until its own timeout."""
    async def body(reactor: Any) -> list[Any]:
        a, b, c = await three_nodes(reactor, tmp_path)
        try:
            await dht_ready(reactor, c, a, b)
            b.net.manager.set_udp_paths([])  # only alice's explicit dial below
            b.udp.mux.tou_handler = None
            b.add_friend(a.account.certificate_text())
            d = a.udp.dial(DialUdp(1, b.ssl_id, Path.TOU_PUNCHED, 30.0),
                           Factory.forProtocol(Protocol))
            failures: list[Any] = []
            d.addErrback(failures.append)
            await wait_for(reactor, lambda: len(a.udp.tou.connections) == 1, timeout=20)
            assert not d.called
            d.cancel()
            await wait_for(reactor, lambda: not a.udp.tou.connections)
            return failures
        finally:
            for n in (a, b, c):
                await n.stopService()

    failures = on_fresh_reactor(body, 90)
    assert len(failures) == 1 and failures[0].check(defer.CancelledError)


@pytest.mark.slow
def test_the_first_stunner_round_runs_when_the_port_starts(tmp_path) -> None:
    """The NAT type is asked for as the UDP port starts, not a retry period later: a friend
    behind a symmetric NAT must know it before the link manager's first punch attempt."""
    async def body(reactor: Any) -> tuple[bool, NatType]:
        a, b, c = await three_nodes(reactor, tmp_path)
        try:
            asked = a.udp._stun is not None or a.udp.nat is not NatType.UNKNOWN
            await wait_for(reactor, lambda: a.udp.nat is not NatType.UNKNOWN, timeout=10)
            return asked, a.udp.nat
        finally:
            for n in (a, b, c):
                await n.stopService()

    asked, nat = on_fresh_reactor(body, 60)
    assert asked
    assert nat is NatType.OPEN  # 127.0.0.1: the mapped address is the bound one
