"""Lobbies on the simulated network: A-B-C in a line, as the capture's alice, bob and carol.

A creates a public lobby; B sees it in A's list and joins; C sees it in B's list and joins;
messages reach everyone through B, each hop checking signatures; a tampered message is
dropped and reported; leaving tells the others.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

import pqi
from pqi.items.chat import ChatLobbyFlags, ChatLobbyInviteItem, ChatLobbyMsgItem
from pqi.wire.fields import GxsId, SslId
from pqi.wire.tlvvalues import KeySignature
from services.chat.lobby import (
    EVENT_PEER_JOINED,
    EVENT_PEER_LEFT,
    EVENT_PEER_STATUS,
    MAX_INVITES,
    MAX_KEEP_MSG_RECORD,
    Dropped,
    IdentityWanted,
    LobbyCore,
    LobbyInvited,
    LobbyMessage,
    LobbyPeerEvent,
)
from services.chat.lobby_signing import sign_lobby_item
from tests.gxs_fixtures import key_pairs
from tests.nxs_sim import NxsNode, addr, ssl
from tools.simnet import SimNet

T0 = 1_800_000_000


def _line(banned: set[GxsId] | None = None):  # type: ignore[no-untyped-def]
    """alice(0) - bob(1) - carol(2); each with one identity from the key pool."""
    pairs = key_pairs()[:3]
    keys = {p.key_id: p.public for p in pairs}
    net = SimNet(3)
    net.clock.advance(T0)
    nodes = []
    for i in range(3):
        core = LobbyCore(keys.get, is_banned=lambda g: g in (banned or set()),
                         rng=random.Random(i))
        core.add_identity(pairs[i].key_id, ["alice", "bob", "carol"][i], pairs[i].private)
        friends = {ssl(j): addr(j) for j in (i - 1, i + 1) if 0 <= j < 3}
        node = NxsNode(core, friends)
        net.add(addr(i), node)  # type: ignore[arg-type]
        nodes.append(node)
    for i, node in enumerate(nodes):
        for peer in node.addr_of:
            net.feed(addr(i), node.core.peer_connected, peer)
    net.run(1)
    return net, nodes, pairs


def _of(node: NxsNode, kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in node.events if isinstance(e, kind)]


def _setup():  # type: ignore[no-untyped-def]
    net, nodes, pairs = _line()
    lid = net.feed(addr(0), nodes[0].core.create_lobby, "capture-lobby", "wire vectors ✓",
                   ChatLobbyFlags.PUBLIC, pairs[0].key_id)
    net.run(130)  # lobby lists travel
    assert lid in nodes[1].core.visible
    net.feed(addr(1), nodes[1].core.join, lid, pairs[1].key_id)
    net.run(130)
    assert lid in nodes[2].core.visible  # carol sees it through bob
    net.feed(addr(2), nodes[2].core.join, lid, pairs[2].key_id)
    net.run(5)
    return net, nodes, pairs, lid


def test_messages_cross_the_line_both_ways() -> None:
    """C's message reaches A through B and A's reaches C, once each, signatures checked."""
    net, nodes, pairs, lid = _setup()
    net.feed(addr(2), nodes[2].core.say, lid, "carol here, via bob.")
    net.feed(addr(0), nodes[0].core.say, lid, "Grüße aus Köln ☕")
    net.run(5)
    at_a = [m.text for m in _of(nodes[0], LobbyMessage)]
    at_c = [m.text for m in _of(nodes[2], LobbyMessage)]
    assert at_a == ["carol here, via bob."] and at_c == ["Grüße aus Köln ☕"]
    assert sorted(m.text for m in _of(nodes[1], LobbyMessage)) == sorted(at_a + at_c)
    (m,) = _of(nodes[0], LobbyMessage)
    assert m.gxs_id == pairs[2].key_id and m.nick == "carol" and m.peer == ssl(1)
    joined = {(e.gxs_id, e.event_type) for e in _of(nodes[0], LobbyPeerEvent)}
    assert (pairs[2].key_id, EVENT_PEER_JOINED) in joined
    # A's own message is in its history at once; carol's arrives a hop later.
    assert [h.text for h in nodes[0].core.history(lid)] == ["Grüße aus Köln ☕",
                                                            "carol here, via bob."]


def test_a_tampered_relayed_message_is_dropped_and_reported() -> None:
    """B changes C's text on the way: A drops it with a bad-signature report, shows nothing."""
    net, nodes, pairs, lid = _setup()

    def tamper(src, dst, data):  # type: ignore[no-untyped-def]
        item = pqi.decode(data)
        if src == addr(1) and dst == addr(0) and isinstance(item, ChatLobbyMsgItem):
            return pqi.encode(dataclasses.replace(item, message=item.message + "!"))
        return data

    original = net.send
    net.send = lambda s, d, data: original(s, d, tamper(s, d, data))  # type: ignore
    net.feed(addr(2), nodes[2].core.say, lid, "original")
    net.run(5)
    assert _of(nodes[0], LobbyMessage) == []
    (drop,) = [d for d in _of(nodes[0], Dropped) if "signature" in d.reason]
    assert drop.peer == ssl(1)
    assert [m.text for m in _of(nodes[1], LobbyMessage)] == ["original"]


def test_leaving_is_announced_and_stops_relaying_to_the_leaver() -> None:
    """C leaves: A sees the LEFT event; B stops sending lobby traffic to C."""
    net, nodes, pairs, lid = _setup()
    net.feed(addr(2), nodes[2].core.leave, lid)
    net.run(5)
    assert (pairs[2].key_id, EVENT_PEER_LEFT) in {(e.gxs_id, e.event_type)
                                                   for e in _of(nodes[0], LobbyPeerEvent)}
    assert ssl(2) not in nodes[1].core.lobbies[lid].participating
    sent_to_c: list[object] = []
    net.taps.append(lambda s, d, data: sent_to_c.append(data) if d == addr(2) else None)
    net.feed(addr(0), nodes[0].core.say, lid, "after")
    net.run(5)
    assert not any(isinstance(pqi.decode(x), ChatLobbyMsgItem) for x in sent_to_c)


def test_typing_and_keep_alive_events() -> None:
    """A typing status reaches the others; keep-alives flow every KEEP_ALIVE_PERIOD."""
    net, nodes, pairs, lid = _setup()
    net.feed(addr(2), nodes[2].core.typing, lid)
    net.run(300)
    kinds = [(e.gxs_id, e.event_type, e.text) for e in _of(nodes[0], LobbyPeerEvent)]
    assert (pairs[2].key_id, EVENT_PEER_STATUS, "is typing...") in kinds
    assert sum(1 for g, t, _ in kinds if t == 5 and g == pairs[2].key_id) >= 2


def test_unknown_signer_is_asked_for_and_dropped() -> None:
    """A message signed by an identity A does not know: IdentityWanted, then dropped."""
    net, nodes, pairs, lid = _setup()
    nodes[0].core.key_lookup = lambda g: None
    net.feed(addr(2), nodes[2].core.say, lid, "who am I")
    net.run(5)
    assert IdentityWanted(pairs[2].key_id, ssl(1)) in _of(nodes[0], IdentityWanted)
    assert _of(nodes[0], LobbyMessage) == []


def test_banned_identity_is_hidden() -> None:
    """Reputation's ban hides an identity's lobby messages."""
    net, nodes, pairs, lid = _setup()
    nodes[0].core.is_banned = lambda g: g == pairs[2].key_id
    net.feed(addr(2), nodes[2].core.say, lid, "spam")
    net.run(5)
    assert _of(nodes[0], LobbyMessage) == []
    assert any("banned" in d.reason for d in _of(nodes[0], Dropped))


def test_old_and_replayed_messages_are_dropped() -> None:
    """A message seen before is not shown twice; one older than the record window is refused."""
    net, nodes, pairs, lid = _setup()
    core = nodes[0].core
    now = net.clock.seconds()
    base = ChatLobbyMsgItem(flags=0x201, send_time=int(now), message="x", parent_msg_id=0,
                            lobby_id=lid, msg_id=77, nick="carol",
                            signature=KeySignature(pairs[2].key_id, b""))
    item = sign_lobby_item(base, pairs[2].private)
    core.item_received(ssl(1), item, now)
    core.item_received(ssl(1), item, now)
    assert [m.text for m in core.drain(now) if isinstance(m, LobbyMessage)] == ["x"]
    old = sign_lobby_item(dataclasses.replace(base, msg_id=78,
                                              send_time=int(now) - MAX_KEEP_MSG_RECORD + 99),
                          pairs[2].private)
    core.item_received(ssl(1), old, now)
    assert any(isinstance(o, Dropped) and "too old" in o.reason for o in core.drain(now))


def test_invitations_and_their_bound() -> None:
    """An invite for a lobby we are not in is an invitation; at most MAX_INVITES are kept."""
    core = LobbyCore(lambda g: None, rng=random.Random(1))
    for i in range(MAX_INVITES + 3):
        core.item_received(ssl(1), ChatLobbyInviteItem(
            lobby_id=i + 1, lobby_name=f"l{i}", lobby_topic="t",
            lobby_flags=ChatLobbyFlags.PUBLIC), T0)
    assert len(core.invites) == MAX_INVITES
    assert len([o for o in core.drain(T0) if isinstance(o, LobbyInvited)]) == MAX_INVITES + 3
    core.add_identity(key_pairs()[0].key_id, "me", key_pairs()[0].private)
    core.peer_connected(ssl(1), T0)
    core.join(MAX_INVITES + 3, key_pairs()[0].key_id, T0)
    assert MAX_INVITES + 3 in core.lobbies
    with pytest.raises(KeyError):
        core.join(999_999, key_pairs()[0].key_id, T0)


def test_private_lobby_friends_find_each_other_by_challenge() -> None:
    """Two friends in the same private lobby, each unaware of the other: after enough traffic
    one sends a challenge naming a message both saw; the other invites it (CHALLENGE flag) and
    both relay to each other from then on."""
    from pqi.items.chat import ChatLobbyConnectChallengeItem
    from services.chat.lobby import CHALLENGE_MAX_COUNT, SendItem

    pairs = key_pairs()[:2]
    keys = {p.key_id: p.public for p in pairs}
    x = LobbyCore(keys.get, own_id=ssl(0), rng=random.Random(1))
    y = LobbyCore(keys.get, own_id=ssl(1), rng=random.Random(2))
    x.add_identity(pairs[0].key_id, "x", pairs[0].private)
    y.add_identity(pairs[1].key_id, "y", pairs[1].private)
    lid = x.create_lobby("secret", "", ChatLobbyFlags(0), pairs[0].key_id, T0)
    y.rejoin(lid, "secret", "", ChatLobbyFlags(0), pairs[1].key_id, T0)
    x.peer_connected(ssl(1), T0)
    y.peer_connected(ssl(0), T0)
    x.drain(T0)
    y.drain(T0)
    # A message both saw (it reached each through someone else).
    base = ChatLobbyMsgItem(flags=0x201, send_time=T0, message="hi", parent_msg_id=0,
                            lobby_id=lid, msg_id=4242, nick="x",
                            signature=KeySignature(pairs[0].key_id, b""))
    msg = sign_lobby_item(base, pairs[0].private)
    y.item_received(SslId(b"\x09" * 16), msg, T0 + 1)
    x.lobbies[lid].seen[4242] = T0 + 1
    x.lobbies[lid].challenge_count = CHALLENGE_MAX_COUNT + 1
    x.handle_timer(T0 + 20)
    (challenge,) = [o.item for o in x.drain(T0 + 20) if isinstance(o, SendItem)
                    and isinstance(o.item, ChatLobbyConnectChallengeItem)]
    y.item_received(ssl(0), challenge, T0 + 21)
    invites = [o.item for o in y.drain(T0 + 21) if isinstance(o, SendItem)]
    assert ssl(0) in y.lobbies[lid].participating
    assert invites and all(i.lobby_flags == ChatLobbyFlags.CHALLENGE for i in invites)
    for inv in invites:
        x.item_received(ssl(1), inv, T0 + 22)
    assert ssl(1) in x.lobbies[lid].participating
    # A challenge for a message y never saw is not answered.
    y2 = LobbyCore(keys.get, own_id=ssl(1), rng=random.Random(3))
    y2.add_identity(pairs[1].key_id, "y", pairs[1].private)
    y2.rejoin(lid, "secret", "", ChatLobbyFlags(0), pairs[1].key_id, T0)
    y2.item_received(ssl(0), challenge, T0 + 21)
    assert [o for o in y2.drain(T0) if isinstance(o, SendItem)] == []
