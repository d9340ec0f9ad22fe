"""Distant chat over GXS tunnels on a simulated A-B-C line: messages, typing, close, and the
permission flags (a node refusing distant chat refuses it, and says so)."""

from __future__ import annotations

import pqi
from pqi.items.chat import ChatFlags, ChatMsgItem
from pqi.items.turtle import TurtleGenericDataItem, TurtleGenericFastDataItem
from pqi.wire.fields import GxsId
from services.gxstunnel.core import TunnelStatus
from services.gxstunnel.distant_chat import (
    TYPING_TEXT,
    DistantChatMessage,
    DistantChatPermission,
    DistantChatRefused,
    DistantChatStatus,
    DistantChatTyping,
)
from tests.gxstunnel_sim import TunnelSim, build_tunnels, tunnel_addr

LINE = [(0, 1), (1, 2)]


def _open(sim: TunnelSim) -> GxsId:
    chat_id = sim.feed(0, "request_tunnel", sim.ident(2), sim.ident(0), 0xA0001)
    sim.turtle.net.run(30, until=lambda: any(
        e.status is TunnelStatus.CAN_TALK for e in sim.of(0, DistantChatStatus)))
    return chat_id  # type: ignore[no-any-return]


def _texts(sim: TunnelSim, i: int) -> list[str]:
    return [m.text for m in sim.of(i, DistantChatMessage) if m.incoming]


def test_chat_both_ways_typing_and_close() -> None:
    """A and C exchange messages (non-ASCII too) and a typing notice through B; B relays
    only ciphertext; A closes and C sees the chat remotely closed."""
    sim = build_tunnels(3, LINE, chats=True)
    chat_id = _open(sim)
    a, c = sim.chats[0], sim.chats[2]
    sim.turtle.net.feed(tunnel_addr(0), a.send, chat_id, "Hi carol, distant chat ✓")
    sim.turtle.net.run(3)
    sim.turtle.net.feed(tunnel_addr(2), c.typing, chat_id)
    sim.turtle.net.feed(tunnel_addr(2), c.send, chat_id, "Grüße — über den Tunnel 😀")
    sim.turtle.net.run(3)
    assert _texts(sim, 2) == ["Hi carol, distant chat ✓"]
    assert _texts(sim, 0) == ["Grüße — über den Tunnel 😀"]
    assert [t.status for t in sim.of(0, DistantChatTyping)] == [TYPING_TEXT]
    assert [m.peer_id for m in sim.of(2, DistantChatMessage) if m.incoming] == [sim.ident(0)]
    for _, _, item in sim.turtle.sent:
        if isinstance(item, (TurtleGenericDataItem, TurtleGenericFastDataItem)):
            assert b"Hi carol" not in item.data
            assert "über".encode() not in item.data
    sim.turtle.net.feed(tunnel_addr(0), a.close, chat_id)
    sim.turtle.net.run(3)
    assert sim.of(2, DistantChatStatus)[-1].status is TunnelStatus.REMOTELY_CLOSED


def test_node_refusing_distant_chat_refuses_it() -> None:
    """C's permission is "no one": A's message never reaches C's history, and A learns it
    was refused.  With "contacts only", a contact gets through and a stranger does not."""
    sim = build_tunnels(3, LINE, chats=True)
    sim.chats[2].permission = DistantChatPermission.NO_ONE
    chat_id = _open(sim)
    sim.turtle.net.feed(tunnel_addr(0), sim.chats[0].send, chat_id, "let me in")
    sim.turtle.net.run(5)
    assert _texts(sim, 2) == []
    assert [r.peer_id for r in sim.of(0, DistantChatRefused)] == [sim.ident(2)]
    assert sim.chats[2].refused == 1

    sim = build_tunnels(3, LINE, chats=True)
    sim.chats[2].permission = DistantChatPermission.CONTACTS
    contacts: set[GxsId] = set()
    sim.chats[2]._is_contact = contacts.__contains__
    chat_id = _open(sim)
    sim.turtle.net.feed(tunnel_addr(0), sim.chats[0].send, chat_id, "stranger")
    sim.turtle.net.run(5)
    assert _texts(sim, 2) == []
    contacts.add(sim.ident(0))
    sim.turtle.net.feed(tunnel_addr(0), sim.chats[0].send, chat_id, "now a contact")
    sim.turtle.net.run(5)
    assert _texts(sim, 2) == ["now a contact"]


def test_messages_are_retroshare_chat_items() -> None:
    """What a distant chat carries in its tunnel data is a serialised RetroShare chat item."""
    sim = build_tunnels(3, LINE, chats=True)
    chat_id = _open(sim)
    sent: list[bytes] = []
    core = sim.cores[0]
    real = core.send_data

    def spy(tid: GxsId, service: int, data: bytes, now: float) -> int:
        sent.append(data)
        return real(tid, service, data, now)

    core.send_data = spy  # type: ignore[method-assign]
    sim.turtle.net.feed(tunnel_addr(0), sim.chats[0].send, chat_id, "plain")
    item = pqi.decode(sent[0])
    assert isinstance(item, ChatMsgItem)
    assert item.message == "plain" and item.flags == ChatFlags.PRIVATE


def test_history_is_bounded(monkeypatch) -> None:
    """The message history keeps the last MAX_HISTORY messages, numbered on."""
    from services.gxstunnel import distant_chat
    monkeypatch.setattr(distant_chat, "MAX_HISTORY", 5)
    sim = build_tunnels(3, LINE, chats=True)
    chat = distant_chat.DistantChat(sim.cores[0])
    chat_id = sim.feed(0, "request_tunnel", sim.ident(2), sim.ident(0), 0xA0001)
    for n in range(12):
        chat.send(chat_id, f"m{n}", float(n))
    assert [m.text for m in chat.history] == [f"m{n}" for n in range(7, 12)]
    assert chat.history[-1].seq == 12
