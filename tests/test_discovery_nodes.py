"""Discovery with three real nodes on 127.0.0.1: friends of friends meet through a friend."""

from __future__ import annotations

import pytest

from pqi.link.linkmgr import AddressSource
from services.discovery import PendingFriend
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.slow]


def test_a_learns_c_through_b_then_they_meet(tmp_path) -> None:
    """A-B and B-C are friends.  A receives C's key through B as a *pending* friend (not
    accepted, no link); after A and C approve each other, B forwards their locations and A
    and C connect directly, dialling the address discovery taught them."""
    async def body(reactor):
        a, b, c = (make_node(reactor, tmp_path, n) for n in ("alice", "bob", "carol"))
        pending = {}
        a.subscribe(PendingFriend, lambda e: pending.setdefault(
            "a", (e.pgp_id, e.name, e.learned_from.ssl_id)))
        c.subscribe(PendingFriend, lambda e: pending.setdefault(
            "c", (e.pgp_id, e.name, e.learned_from.ssl_id)))
        for n in (a, b, c):
            await n.startService()
        try:
            b.add_friend(cert_of(a))
            b.add_friend(cert_of(c))
            a.add_friend(cert_of(b))
            c.add_friend(cert_of(b))
            await wait_for(reactor, lambda: len(pending) == 2)
            before = (a.friends_list.is_accepted_profile(c.pgp_id),
                      c.ssl_id in {p.ssl_id for p in a.net.connected_peers()},
                      [p.pgp_id for p in a.pending()])
            a.approve(c.pgp_id)
            c.approve(a.pgp_id)
            await wait_for(reactor, lambda: c.ssl_id in
                           {p.ssl_id for p in a.net.connected_peers()})
            await wait_for(reactor, lambda: a.control.enabled(c.ssl_id))
            await wait_for(reactor, lambda: any(r.source == AddressSource.DISCOVERY
                                                for r in a.net.manager.addresses(c.ssl_id)))
            sources = {r.source for r in a.net.manager.addresses(c.ssl_id)}
            return pending, before, sources, {f.name for f in a.friends() if f.online}
        finally:
            for n in (a, b, c):
                await n.stopService()

    pending, before, sources, online = on_fresh_reactor(body, 90)
    assert set(pending) == {"a", "c"}
    assert pending["a"][1] == "carol" and pending["c"][1] == "alice"
    accepted, linked, pending_ids = before
    assert not accepted and not linked and len(pending_ids) == 1
    assert AddressSource.DISCOVERY in sources
    assert online == {"bob", "carol"}
