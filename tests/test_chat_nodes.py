"""Chat between real nodes on 127.0.0.1 (TLS, sqlite): three friends, private and broadcast
messages once and in order, a 20,000-character message whole, an offline friend's queue, and
a flood from one friend that neither starves another friend nor piles up in memory."""

from __future__ import annotations

import pytest

from pqi.items.ids import SERVICE_CHAT
from pqi.wire.framing import DEFAULT_MAX_QUEUE_BYTES
from services.chat.service import MessageReceived
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180), pytest.mark.slow]


async def trio(reactor, tmp_path, names=("alice", "bob", "carol"), ports=None):
    """Started nodes, every pair mutual friends, chat enabled everywhere."""
    nodes = [make_node(reactor, tmp_path, n, port=(ports or {}).get(n, 0)) for n in names]
    for node in nodes:
        await node.startService()
    for x in nodes:
        for y in nodes:
            if x is not y:
                x.add_friend(cert_of(y))
    await wait_for(reactor, lambda: all(
        SERVICE_CHAT in x.control.enabled(y.ssl_id) for x in nodes for y in nodes
        if x is not y), 30)
    return nodes


async def stop(*nodes) -> None:
    for node in nodes:
        if node.running:
            await node.stopService()


def test_private_and_broadcast_once_and_in_order(tmp_path) -> None:
    """Alice and carol each send bob 30 private messages, alice broadcasts 10: bob gets every
    private message once in each sender's order, bob and carol each get the broadcasts once in
    order (PUBLIC), and nobody gets what was not meant for them."""
    async def body(reactor):
        a, b, c = await trio(reactor, tmp_path)
        got = {n.account.name: [] for n in (a, b, c)}
        for n in (a, b, c):
            n.subscribe(MessageReceived, lambda e, got=got[n.account.name]: got.append(e.message))
        try:
            for i in range(30):
                await a.send_chat(b.ssl_id, f"a{i}")
                await c.send_chat("bob", f"c{i}")
            for i in range(10):
                await a.broadcast_chat(f"all{i}")
            await wait_for(reactor, lambda: len(got["bob"]) == 70 and len(got["carol"]) == 10)
            history = b.chat_history(a.ssl_id, limit=100)
            return got, a.ssl_id, c.ssl_id, history
        finally:
            await stop(a, b, c)

    got, alice, carol, history = on_fresh_reactor(body, 90)
    bob = got["bob"]
    assert [m.body for m in bob if m.peer == alice and not m.public] == [f"a{i}" for i in range(30)]
    assert [m.body for m in bob if m.peer == carol] == [f"c{i}" for i in range(30)]
    assert [m.body for m in bob if m.public] == [f"all{i}" for i in range(10)]
    assert [(m.body, m.public, m.peer) for m in got["carol"]] == [
        (f"all{i}", True, alice) for i in range(10)]
    assert got["alice"] == []
    assert [m.body for m in history] == [f"a{i}" for i in range(30)] + [
        f"all{i}" for i in range(10)]


def test_20000_characters_arrive_whole(tmp_path) -> None:
    """A 20,000-character message (two items, sliced on the link) arrives as one message."""
    text = "".join(f"{i:05d}:The quick brown fox jumps over the lazy dog.\n"
                   for i in range(500))[:20000]

    async def body(reactor):
        a, b = await trio(reactor, tmp_path, ("alice", "bob"))
        try:
            d = b.next_event(MessageReceived)
            await a.send_chat(b.ssl_id, text)
            return (await d).message
        finally:
            await stop(a, b)

    message = on_fresh_reactor(body, 60)
    assert message.body == text and not message.public


def test_offline_friend_gets_queue_in_order_after_it_starts(tmp_path) -> None:
    """Messages to carol while she is down are queued; when she starts, she gets them all,
    once, in order, and alice's queue is empty."""
    async def body(reactor):
        a, b, c = await trio(reactor, tmp_path)
        port = c.listening.port
        await c.stopService()
        await wait_for(reactor, lambda: SERVICE_CHAT not in a.control.enabled(c.ssl_id))
        sent = [await a.send_chat(c.ssl_id, f"while away {i}") for i in range(5)]
        c2 = make_node(reactor, tmp_path, "carol", port=port)
        got = []
        c2.subscribe(MessageReceived, lambda e: got.append(e.message))
        await c2.startService()
        try:
            await wait_for(reactor, lambda: len(got) >= 5, 30)
            await wait_for(reactor, lambda: a.chat.queued() == 0)
            return sent, got
        finally:
            await stop(a, b, c2)

    sent, got = on_fresh_reactor(body, 120)
    assert all(m.queued for m in sent)
    assert [m.body for m in got] == [f"while away {i}" for i in range(5)]


def test_flood_does_not_starve_another_friend(tmp_path) -> None:
    """While alice floods bob (batches every reactor turn, until carol's message is in), a
    message from carol reaches bob: the flood was still running when it arrived.  Alice's link
    queue never passes its cap, bob holds no partial message, and every flood message arrives
    once and in order."""
    async def body(reactor):
        from twisted.internet import task
        a, b, c = await trio(reactor, tmp_path)
        from_alice: list[str] = []
        from_carol: list[int] = []
        b.subscribe(MessageReceived, lambda e: from_carol.append(len(from_alice))
                    if e.message.peer == c.ssl_id else from_alice.append(e.message.body))
        state = {"sent": 0, "max_queue": 0, "carol_sent_at": None}
        cap = 100_000

        def burst() -> None:
            if from_carol or state["sent"] >= cap:
                loop.stop()
                return
            for _ in range(200):
                a.chat.send_private(b.ssl_id, f"flood {state['sent']}")
                state["sent"] += 1
            link = a.net.person(b.ssl_id).link
            state["max_queue"] = max(state["max_queue"], link.queued_bytes)
            if state["carol_sent_at"] is None and state["sent"] >= 2000:
                state["carol_sent_at"] = state["sent"]
                c.chat.send_private(b.ssl_id, "carol gets through")

        loop = task.LoopingCall(burst)
        loop.clock = reactor
        done = loop.start(0.0)
        try:
            await done
            sent_total = state["sent"]
            await wait_for(reactor, lambda: len(from_alice) == sent_total, 120)
            return (state, sent_total, from_alice, from_carol,
                    b.chat.reassembler.pending_bytes, a.chat.queued())
        finally:
            await stop(a, b, c)

    state, total, from_alice, from_carol, pending, queued = on_fresh_reactor(body, 170)
    assert from_carol and from_carol[0] < total  # carol's message came in mid-flood
    assert total < 100_000  # the flood stopped because carol's message arrived
    assert from_alice == [f"flood {i}" for i in range(total)]
    assert state["max_queue"] <= DEFAULT_MAX_QUEUE_BYTES
    assert pending == 0 and queued == 0
