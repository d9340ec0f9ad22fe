"""Real nodes on 127.0.0.1 in a line, alice - bob - carol (alice and carol not friends):
alice mails carol's GXS identity while carol's node is down; bob stores the GXS trans
message; carol starts later, gets the mail exactly once in her inbox, and alice gets the
receipt.  Bob never sees the text."""

from __future__ import annotations

import pytest
from twisted.internet import task

from pqi.wire.item import encode
from services.distant_mail.events import DistantMailReceipt, DistantMailReceived
from services.distant_mail.store import Status
from tests.service_fakes import (
    befriend,
    make_node,
    on_fresh_reactor,
    tap_items,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SYNC = 1.0




def test_mail_to_an_offline_identity_arrives_once_with_a_receipt(tmp_path) -> None:
    """Carol's identity is known to alice through bob; carol's node stops; alice's mail waits
    at bob; carol's node starts again, the mail lands once, the receipt reaches alice."""

    async def body(reactor):
        alice = make_node(reactor, tmp_path, "alice", gxs_sync_period=SYNC)
        bob = make_node(reactor, tmp_path, "bob", gxs_sync_period=SYNC)
        carol = make_node(reactor, tmp_path, "carol", gxs_sync_period=SYNC)
        nodes = [alice, bob, carol]
        for n in nodes:
            await n.startService()
        try:
            await befriend(reactor, alice, bob, 0x0230)
            await befriend(reactor, bob, carol, 0x0230)
            a_id = alice.identities.create("alice-id").gxs_id
            c_id = carol.identities.create("carol-id").gxs_id
            await wait_for(reactor, lambda: alice.identities.public_key(c_id) is not None
                           and carol.identities.public_key(a_id) is not None, 60)
            carol_port = carol.listening.port
            await carol.stopService()
            nodes.remove(carol)
            seen: list = []
            tap_items(bob, seen)
            receipts: list = []
            alice.subscribe(DistantMailReceipt, receipts.append)
            [local] = alice.distant_mail.send_mail(a_id, [c_id], "Distant mail ✉",
                                              "Hello carol, via bob — über")
            await wait_for(reactor, lambda: alice.distant_mail.store.by_local_id(local).status
                           is Status.PUBLISHED, 20)
            await wait_for(reactor, lambda: any(len(bob.distant_mail.gxs_store.message_ids(g))
                                                for g, _, _ in
                                                bob.distant_mail.gxs_store.groups()), 30)
            carol2 = make_node(reactor, tmp_path, "carol", port=carol_port,
                               gxs_sync_period=SYNC)
            nodes.append(carol2)
            got: list = []
            carol2.subscribe(DistantMailReceived, got.append)
            await carol2.startService()
            await wait_for(reactor, lambda: bool(got), 60)
            await wait_for(reactor, lambda: bool(receipts), 60)
            await task.deferLater(reactor, 4 * SYNC, lambda: None)  # room for a duplicate
            inbox = carol2.mail.inbox()
            return got, receipts, inbox, seen, local, a_id, c_id
        finally:
            for n in nodes:
                await n.stopService()

    got, receipts, inbox, seen, local, a_id, c_id = on_fresh_reactor(body, 170)
    assert [(g.author, g.recipient, g.subject) for g in got] == [(a_id, c_id, "Distant mail ✉")]
    assert [(r.local_id, r.recipient) for r in receipts] == [(local, c_id)]
    assert [m.subject for m in inbox] == ["Distant mail ✉"]
    for item in seen:
        raw = encode(item)
        assert "über".encode() not in raw and b"Hello carol" not in raw
