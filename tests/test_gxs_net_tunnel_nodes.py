"""Distant groups between real nodes on 127.0.0.1: alice - bob - carol in a line.

Bob is friends with both and does not follow alice's channel, so he never serves it to
carol; carol finds it by name over turtle and follows it through a tunnel over bob.
"""

from __future__ import annotations

import pytest

from pqi.items.ids import SERVICE_CHANNELS, SERVICE_GXSID, SERVICE_TURTLE
from tests.service_fakes import (
    befriend,
    make_node,
    on_fresh_reactor,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SYNC = 1.0
NEEDED = {SERVICE_GXSID, SERVICE_CHANNELS, SERVICE_TURTLE}



def test_channel_followed_through_a_tunnel_across_real_nodes(tmp_path) -> None:
    """Carol finds alice's channel by a turtle search and gets its posts through a tunnel
    over bob, who knows the channel but follows it not and holds none of its posts."""

    async def body(reactor):
        alice, bob, carol = nodes = [make_node(reactor, tmp_path, name, gxs_sync_period=SYNC)
                                     for name in ("alice", "bob", "carol")]
        for n in nodes:
            await n.startService()
        try:
            await befriend(reactor, alice, bob, *NEEDED)
            await befriend(reactor, bob, carol, *NEEDED)
            ids = [n.identities.create(f"{n.account.name}-id").gxs_id for n in nodes]
            await wait_for(reactor, lambda: all(n.identities.public_key(i) is not None
                                                for n in nodes for i in ids), 30)
            grp = alice.channels.create("Faraway news", "nobody near follows it")
            post = alice.channels.post(grp, "From afar", "<p>hello</p>")
            await wait_for(reactor, lambda: bob.channels.group(grp) is not None, 20)
            before = carol.channels.group(grp)
            search = carol.channels.search_distant("faraway")
            await wait_for(reactor, lambda: bool(carol.channels.search_results(search)), 20)
            hits = [(s.group_id, s.name) for s in carol.channels.search_results(search)]
            carol.channels.follow_distant(grp)
            await wait_for(reactor, lambda: carol.channels.message(post) is not None, 60)
            later = alice.channels.post(grp, "Later", "<p>again</p>")
            await wait_for(reactor, lambda: carol.channels.message(later) is not None, 40)
            return (before, hits, carol.channels.group(grp).subscribed,
                    bob.channels.group(grp).subscribed, bob.channels.store.message_count(grp),
                    len(carol.turtle.gxs.virtual_peers), carol.turtle.status_section())
        finally:
            for n in nodes:
                if n.running:
                    await n.stopService()

    before, hits, subscribed, bob_follows, bob_posts, vpeers, status = \
        on_fresh_reactor(body, 170)
    assert before is None
    assert [name for _, name in hits] == ["Faraway news"]
    assert subscribed and not bob_follows and bob_posts == 0
    assert vpeers >= 1 and status["tunnels"]["downloading"] >= 1
