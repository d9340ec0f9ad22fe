"""Identities and lobbies between real nodes on 127.0.0.1: alice - bob - carol in a line.

As in the capture (alice and carol are not friends; everything goes through bob): identities
made on alice become known and valid on carol through bob; alice's lobby is seen and joined
by bob, then by carol through bob; carol's messages reach alice through bob, every hop checks
the signature; a tampered message is dropped and logged; bob restarts and loses nothing.
"""

from __future__ import annotations

import dataclasses

import pytest

from pqi.items.chat import ChatLobbyMsgItem
from pqi.items.ids import SERVICE_CHAT, SERVICE_GXSID, SERVICE_REPUTATION
from pqi.wire.tlvvalues import KeySignature
from services.chat.lobby import LobbyMessage
from services.chat.lobby_signing import sign_lobby_item
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.slow]

SYNC = 1.0  # a fast NXS sync period, so the test does not wait a real minute per hop


async def line(reactor, tmp_path, ports=None):
    """Started alice, bob, carol; alice-bob and bob-carol friends; services negotiated."""
    names = ("alice", "bob", "carol")
    nodes = [make_node(reactor, tmp_path, n, port=(ports or {}).get(n, 0),
                       gxs_sync_period=SYNC) for n in names]
    for node in nodes:
        await node.startService()
    a, b, c = nodes
    for x, y in ((a, b), (b, a), (b, c), (c, b)):
        x.add_friend(cert_of(y))
    await wait_for(reactor, lambda: all(
        {SERVICE_CHAT, SERVICE_GXSID, SERVICE_REPUTATION} <= x.control.enabled(y.ssl_id)
        for x, y in ((a, b), (b, a), (b, c), (c, b))), 30)
    return nodes


async def stop(*nodes) -> None:
    for node in nodes:
        if node.running:
            await node.stopService()


def test_identities_and_a_lobby_across_a_line_of_real_nodes(tmp_path) -> None:
    """The whole scenario of the capture's identities and lobby, on our own nodes."""
    async def body(reactor):
        a, b, c = await line(reactor, tmp_path)
        bob_port = b.listening.port
        got = {n.account.name: [] for n in (a, b, c)}
        for n in (a, b, c):
            n.subscribe(LobbyMessage, got[n.account.name].append)
        b2 = None
        try:
            ids = [n.identities.create(f"{n.account.name}-signed-id") for n in (a, b, c)]
            aid, bid, cid = (i.gxs_id for i in ids)
            await wait_for(reactor, lambda: all(
                n.identities.info(g) is not None for n in (a, b, c) for g in (aid, bid, cid)),
                30)
            on_carol = c.identities.info(aid)
            lobby = a.chat.lobby.create("capture-lobby", "wire vectors ✓", aid)
            await wait_for(reactor, lambda: any(
                v["id"] == f"{lobby:016x}" for v in b.chat.lobby.listing()["visible"]), 30)
            b.chat.lobby.join(lobby, bid)
            await wait_for(reactor, lambda: any(
                v["id"] == f"{lobby:016x}" for v in c.chat.lobby.listing()["visible"]), 60)
            c.chat.lobby.join(lobby, cid)
            await wait_for(reactor, lambda: c.ssl_id in b.chat.lobby.core.lobbies[lobby]
                           .participating, 15)
            c.chat.lobby.say(lobby, "carol here, via bob.")
            a.chat.lobby.say(lobby, "Hello lobby, alice here.")
            await wait_for(reactor, lambda: len(got["alice"]) >= 1 and len(got["carol"]) >= 1
                           and len(got["bob"]) >= 2, 15)
            # A message carol signed, its text changed on the way through bob: alice drops it.
            item = sign_lobby_item(ChatLobbyMsgItem(
                flags=0x201, send_time=int(reactor.seconds()), message="carol said this",
                parent_msg_id=0, lobby_id=lobby, msg_id=12345, nick="carol-signed-id",
                signature=KeySignature(cid, b"")), c.identities.private_key(cid))
            item = dataclasses.replace(item, message="carol did not say this")
            dropped_before = a.chat.lobby.core.dropped
            a.chat.lobby.driver.feed(a.chat.lobby.core.item_received, b.ssl_id, item)
            tampered = a.chat.lobby.core.dropped - dropped_before
            # Bob restarts: identities, lobby membership and relaying survive.
            await b.stopService()
            b2 = make_node(reactor, tmp_path, "bob", port=bob_port, gxs_sync_period=SYNC)
            await b2.startService()
            await wait_for(reactor, lambda: SERVICE_CHAT in b2.control.enabled(a.ssl_id)
                           and SERVICE_CHAT in b2.control.enabled(c.ssl_id), 60)
            kept = (b2.identities.info(aid), b2.identities.info(cid),
                    lobby in b2.chat.lobby.core.lobbies,
                    [m.text for m in b2.chat.lobby.history(lobby)])
            await wait_for(reactor, lambda: {a.ssl_id, c.ssl_id} <=
                           b2.chat.lobby.core.lobbies[lobby].participating, 60)
            a.chat.lobby.say(lobby, "after bob's restart")
            await wait_for(reactor, lambda: any(m.text == "after bob's restart"
                                                for m in got["carol"]), 30)
            return got, ids, on_carol, a.pgp_id, tampered, kept
        finally:
            await stop(a, b, c, *(x for x in (b2,) if x is not None))

    got, ids, on_carol, alice_pgp, tampered, kept = on_fresh_reactor(body, 200)
    aid, bid, cid = (i.gxs_id for i in ids)
    assert on_carol is not None and on_carol.name == "alice-signed-id" and on_carol.pgp_linked
    assert on_carol.pgp_id == alice_pgp  # the link checked with the key discovery gave carol
    at_alice = [m for m in got["alice"] if isinstance(m, LobbyMessage)]
    assert [m.text for m in at_alice][:1] == ["carol here, via bob."]
    assert at_alice[0].gxs_id == cid and at_alice[0].peer is not None
    assert "carol did not say this" not in [m.text for m in at_alice]
    assert tampered == 1
    assert [m.text for m in got["carol"]][:1] == ["Hello lobby, alice here."]
    assert kept[0] is not None and kept[1] is not None and kept[2]
    # Bob's lobby history survived his restart (both messages, in the order they reached him).
    assert sorted(kept[3]) == ["Hello lobby, alice here.", "carol here, via bob."]
