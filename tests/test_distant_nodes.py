"""Real nodes on 127.0.0.1 in a line, alice - bob - carol (alice and carol not friends):
alice chats with carol's GXS identity through bob, who sees only the signed DH keys and
ciphertext; carol's "no one" permission refuses a distant chat and alice is told."""

from __future__ import annotations

import pytest

from pqi.items.turtle import TurtleGenericDataItem, TurtleGenericFastDataItem
from pqi.wire.item import encode
from services.gxstunnel.core import TunnelStatus
from services.gxstunnel.distant_chat import (
    DistantChatMessage,
    DistantChatPermission,
    DistantChatRefused,
    DistantChatStatus,
)
from tests.service_fakes import (
    befriend,
    make_node,
    on_fresh_reactor,
    tap_items,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]




def test_distant_chat_through_a_relay_and_refusal(tmp_path) -> None:
    """Alice opens a distant chat to carol's identity; messages go both ways through bob in
    seconds; bob's items hold no plaintext; once carol refuses everyone, alice's next chat
    (from another identity) is refused and alice gets a refusal event."""

    async def body(reactor):
        alice = make_node(reactor, tmp_path, "alice")
        bob = make_node(reactor, tmp_path, "bob")
        carol = make_node(reactor, tmp_path, "carol")
        nodes = [alice, bob, carol]
        for n in nodes:
            await n.startService()
        try:
            await befriend(reactor, alice, bob, 0x0028)
            await befriend(reactor, bob, carol, 0x0028)
            a_id = alice.identities.create("alice-id").gxs_id
            c_id = carol.identities.create("carol-id").gxs_id
            seen: list = []
            tap_items(bob, seen)
            events: dict[str, list] = {"alice": [], "carol": []}
            for name, node in (("alice", alice), ("carol", carol)):
                for kind in (DistantChatMessage, DistantChatStatus, DistantChatRefused):
                    node.subscribe(kind, events[name].append)
            chat = alice.distant.open_chat(c_id, a_id)
            alice.distant.send_chat(chat, "Hi carol, distant chat from alice ✓")
            await wait_for(reactor, lambda: any(isinstance(e, DistantChatMessage)
                                                and e.incoming for e in events["carol"]), 60)
            carol.distant.send_chat(chat, "Hi alice! über den Tunnel")
            await wait_for(reactor, lambda: any(isinstance(e, DistantChatMessage)
                                                and e.incoming for e in events["alice"]), 30)
            status = alice.distant.chat_status(chat)

            carol.distant.set_permissions(chat=DistantChatPermission.NO_ONE)
            a2 = alice.identities.create("alice-second", signed=False).gxs_id
            chat2 = alice.distant.open_chat(c_id, a2)
            alice.distant.send_chat(chat2, "second try")
            await wait_for(reactor, lambda: any(isinstance(e, DistantChatRefused)
                                                for e in events["alice"]), 60)
            return events, seen, status, chat, carol.distant.permissions.to_json()
        finally:
            for n in nodes:
                await n.stopService()

    events, seen, status, chat, carol_perm = on_fresh_reactor(body, 110)
    assert status is TunnelStatus.CAN_TALK
    got_c = [e.text for e in events["carol"] if isinstance(e, DistantChatMessage) and e.incoming]
    got_a = [e.text for e in events["alice"] if isinstance(e, DistantChatMessage) and e.incoming]
    assert got_c == ["Hi carol, distant chat from alice ✓"]
    assert got_a == ["Hi alice! über den Tunnel"]
    assert carol_perm["chat"] == "no_one"
    data = [i for i in seen if isinstance(i, (TurtleGenericDataItem, TurtleGenericFastDataItem))]
    assert data
    for item in seen:
        raw = encode(item)
        assert b"Hi carol" not in raw and "über".encode() not in raw and b"second try" not in raw
