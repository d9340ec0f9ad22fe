"""Channels and forums between real nodes on 127.0.0.1: alice - bob - carol in a line.

As in the capture (alice and carol are not friends): alice's channel is followed by bob,
then by carol through bob's copy; alice posts a 5 MiB file, carol (auto-download on) fetches
it through a turtle tunnel over bob; a forum thread started on carol gets a reply from
alice; a channel post not signed by the publish key is refused; bob restarts mid-sync and
nothing is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from pqi.items.gxs import encode_msg_meta
from pqi.items.gxs_content import ChannelPost
from pqi.items.ids import SERVICE_CHANNELS, SERVICE_FORUMS, SERVICE_GXSID, SERVICE_TURTLE
from pqi.wire.fields import Sha1Hash
from services.gxs.security import generate_key_pair
from services.publish.events import ChannelMessageStored
from services.publish.making import make_message
from services.transfer.service import TransferCompleted
from tests.service_fakes import (
    befriend,
    make_node,
    on_fresh_reactor,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SYNC = 1.0
SIZE = 5 * 1024 * 1024
NEEDED = {SERVICE_GXSID, SERVICE_CHANNELS, SERVICE_FORUMS, SERVICE_TURTLE}



def test_channel_file_and_forum_across_a_line_of_real_nodes(tmp_path) -> None:
    """The issue's acceptance scenario on our own nodes (see the module docstring)."""
    data = os.urandom(SIZE)
    path = tmp_path / "channel-attachment.bin"
    path.write_bytes(data)
    real = Sha1Hash(hashlib.sha1(data).digest())

    async def body(reactor):
        def node(name, port=0):
            return make_node(reactor, tmp_path, name, port=port, gxs_sync_period=SYNC)

        alice, bob, carol = nodes = [node("alice"), node("bob"), node("carol")]
        for n in nodes:
            await n.startService()
        try:
            await befriend(reactor, alice, bob, *NEEDED)
            await befriend(reactor, bob, carol, *NEEDED)
            ids = [n.identities.create(f"{n.account.name}-id").gxs_id for n in nodes]
            await wait_for(reactor, lambda: all(n.identities.public_key(i) is not None
                                                for n in nodes for i in ids), 30)

            # The channel, followed by bob, then by carol through bob's copy.
            grp = alice.channels.create("capture-channel", "alice's channel ✓")
            await wait_for(reactor, lambda: bob.channels.group(grp) is not None, 20)
            bob.channels.subscribe(grp)
            await wait_for(reactor, lambda: carol.channels.group(grp) is not None, 20)
            carol.channels.subscribe(grp)
            carol.channels.files.set_auto_download(grp, True)
            done: list = []
            carol.subscribe(TransferCompleted, lambda e: done.append(e.info))
            arrived: list = []
            carol.subscribe(ChannelMessageStored, arrived.append)

            item = alice.channels.files.attach(grp, path)
            post = alice.channels.post(grp, "First post with a file", "<p>a file</p>", (item,))
            await wait_for(reactor, lambda: carol.channels.message(post) is not None, 30)
            await wait_for(reactor, lambda: bool(done), 90, step=0.05)
            tunnels = carol.turtle.status_section()

            # A forum: a thread started on carol, a reply from alice.
            forum = bob.forums.create("capture-forum", "bob's forum ✓")
            await wait_for(reactor, lambda: alice.forums.group(forum) is not None
                           and carol.forums.group(forum) is not None, 20)
            alice.forums.subscribe(forum)
            carol.forums.subscribe(forum)
            thread = carol.forums.post(forum, "Thread by carol", "<p>Opening post</p>")
            await wait_for(reactor, lambda: alice.forums.message(thread) is not None, 20)
            reply = alice.forums.post(forum, "Re: Thread by carol", "<p>alice replies</p>",
                                      parent=thread)
            await wait_for(reactor, lambda: carol.forums.message(reply) is not None, 20)

            # A post signed by another key, put in bob's store by force: carol refuses it.
            now = int(reactor.seconds())
            group = bob.channels.store.group_meta(grp)
            msg, meta = make_message(SERVICE_CHANNELS, group, ChannelPost("forged"), now,
                                     title="forged",
                                     publish=generate_key_pair(now, 0x20).private)
            bob.channels.store.put_message(msg, encode_msg_meta(meta), now)
            await wait_for(reactor, lambda: any("publish signature" in r
                                                for r in carol.channels.refused), 20)

            # Bob restarts right after alice posts again: carol still gets it, once.
            bob_port = bob.listening.port
            second = alice.channels.post(grp, "Second post", "<p>two</p>")
            await bob.stopService()
            nodes.remove(bob)
            bob2 = node("bob", bob_port)
            nodes.append(bob2)
            await bob2.startService()
            await wait_for(reactor, lambda: carol.channels.message(second) is not None, 40)
            third = alice.channels.post(grp, "Third post", "<p>three</p>")
            await wait_for(reactor, lambda: carol.channels.message(third) is not None, 30)
            return (done[0], tunnels, [e.msg_id for e in arrived],
                    carol.channels.store.message_count(grp), post, second, third,
                    carol.forums.message(reply), thread, meta.msg_id,
                    carol.channels.message(meta.msg_id), bob2.channels.message(post))
        finally:
            for n in nodes:
                if n.running:
                    await n.stopService()

    (info, tunnels, arrived, count, post, second, third, reply, thread, forged,
     forged_on_carol, post_on_bob) = on_fresh_reactor(body, 170)
    with open(info.path, "rb") as f:
        assert hashlib.sha1(f.read()).digest() == bytes(real)
    assert tunnels["tunnel_data_in"] > 0
    assert sorted(arrived) == sorted([post, second, third])
    assert count == 3 and forged_on_carol is None and forged not in arrived
    assert reply.parent == thread and reply.content.body == "<p>alice replies</p>"
    assert post_on_bob is not None
