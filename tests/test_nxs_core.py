"""The NXS sync core: transactions, convergence on a random friend graph, bounds, timeouts.

All runs are on the seeded simulated network (`tools.simnet`) with a `Clock`, items encoded
and decoded on every hop.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

import pqi
from pqi.items.gxs import encode_grp_meta, encode_msg_meta
from pqi.items.nxs import (
    NxsGrpItem,
    NxsMsgItem,
    NxsSyncGrpItem,
    NxsSyncGrpReqItem,
    NxsTransacFlags,
    NxsTransacItem,
    nxs_item_class,
)
from pqi.wire.fields import GxsId, GxsMessageId
from services.gxs.nxs_core import (
    MAX_PENDING_PER_PEER,
    SYNC_PERIOD,
    TRANSAC_TIMEOUT,
    GroupStored,
    NxsCore,
    Rejected,
    SendItem,
)
from services.gxs.store import GxsStore
from tests.gxs_fixtures import key_pairs
from tests.nxs_sim import (
    SERVICE,
    addr,
    build,
    connect_all,
    content,
    fresh_admins,
    make_group,
    make_message,
    random_graph,
    ssl,
)

T0 = 1_800_000_000


def _authors() -> dict[GxsId, object]:
    return {p.key_id: p for p in key_pairs()[:3]}


def test_two_friends_exchange_a_group_and_its_messages_as_retroshare_does() -> None:
    """A publishes; B receives through GRP_LIST_RESP / GRP_LIST_REQ / GRPS, then messages."""
    authors = _authors()
    author = key_pairs()[0]
    net, nodes = build(2, {(0, 1)}, authors)  # type: ignore[arg-type]
    net.clock.advance(T0)
    seen: list[str] = []
    net.taps.append(lambda s, d, data: seen.append(type(pqi.decode(data)).__name__.split("_")[0]
                                                   + (f":{int(pqi.decode(data).transact_flag)}"
                                                      if isinstance(pqi.decode(data),
                                                                    NxsTransacItem) else "")))
    grp, meta = make_group(key_pairs()[3], author, "g", T0)
    net.feed(addr(0), nodes[0].core.publish_group, grp, meta)
    msg, mmeta = make_message(meta, author, "hello", T0)
    net.feed(addr(0), nodes[0].core.publish_message, msg, mmeta)
    connect_all(net, nodes)
    net.run(SYNC_PERIOD + 30)  # the group at once; its messages at the next sync round
    assert content(nodes[1]) == content(nodes[0])
    assert nodes[1].core.store.message(mmeta.msg_id).msg == msg  # type: ignore[union-attr]
    # The group transfer, in order, as in the captures (alice:219-306).
    flow = [s for s in seen if not s.startswith(("NxsSyncMsgReq", "NxsPull"))]
    start = flow.index(f"NxsTransacItem:{NxsTransacFlags.BEGIN_P1 | NxsTransacFlags.TYPE_GRPS}")
    assert flow[start:start + 4] == [
        "NxsTransacItem:4097", "NxsTransacItem:4098", "NxsGrpItem", "NxsTransacItem:4"]


def test_ten_nodes_on_a_random_graph_converge() -> None:
    """Every node publishes a group and messages; all ten end with the same content."""
    rng = random.Random(7)
    authors = _authors()
    edges = random_graph(10, rng, extra=5)
    net, nodes = build(10, edges, authors)  # type: ignore[arg-type]
    net.clock.advance(T0)
    admins = fresh_admins(10, T0)
    expected_msgs = 0
    for i, node in enumerate(nodes):
        author = key_pairs()[i % 3]
        grp, meta = make_group(admins[i], author, f"g{i}", T0)
        net.feed(addr(i), node.core.publish_group, grp, meta)
        for j in range(i % 3 + 1):
            msg, mmeta = make_message(meta, author, f"m{i}.{j}", T0 + j)
            net.feed(addr(i), node.core.publish_message, msg, mmeta)
            expected_msgs += 1
    connect_all(net, nodes)
    net.run(10 * SYNC_PERIOD)
    first = content(nodes[0])
    assert len(first[0]) == 10 and len(first[1]) == expected_msgs
    assert all(content(n) == first for n in nodes)
    assert all(n.core.rejected == 0 for n in nodes)


def test_a_node_that_was_offline_catches_up() -> None:
    """Node 2 is offline while node 0 publishes; once back it syncs through node 1."""
    authors = _authors()
    author = key_pairs()[1]
    net, nodes = build(3, {(0, 1), (1, 2)}, authors)  # type: ignore[arg-type]
    net.clock.advance(T0)
    connect_all(net, nodes)
    net.run(5)
    net.set_online(addr(2), False)
    grp, meta = make_group(key_pairs()[4], author, "late", T0)
    net.feed(addr(0), nodes[0].core.publish_group, grp, meta)
    net.run(2 * SYNC_PERIOD)
    assert meta.group_id in content(nodes[1])[0]
    assert meta.group_id not in content(nodes[2])[0]
    net.set_online(addr(2), True)
    net.run(3 * SYNC_PERIOD)
    assert content(nodes[2]) == content(nodes[0])


def _core() -> NxsCore:
    core = NxsCore(SERVICE, GxsStore(None, SERVICE), auto_subscribe=True)
    core.peer_connected(ssl(1), T0)
    core.drain(T0)
    return core


def _transac(txn: int, flag: int, n: int) -> NxsTransacItem:
    return nxs_item_class(SERVICE, NxsTransacItem)(  # type: ignore[return-value]
        transaction_number=txn, transact_flag=NxsTransacFlags(flag), n_items=n, update_ts=T0)


def test_a_transaction_that_never_ends_is_dropped_at_the_timeout() -> None:
    """BEGIN_P1 for 5 items, 2 sent: the state lives until TRANSAC_TIMEOUT, then goes."""
    core = _core()
    begin = NxsTransacFlags.BEGIN_P1 | NxsTransacFlags.TYPE_GRPS
    core.item_received(ssl(1), _transac(9, begin, 5), T0)
    out = core.drain(T0)
    assert [o.item.transact_flag for o in out if isinstance(o, SendItem)] == [
        NxsTransacFlags.BEGIN_P2 | NxsTransacFlags.TYPE_GRPS]
    grp = nxs_item_class(SERVICE, NxsGrpItem)(transaction_number=9, pos=0,
                                             grp_id=GxsId(b"\1" * 16), grp=b"x", meta=b"y")
    core.item_received(ssl(1), grp, T0 + 1)
    core.item_received(ssl(1), grp, T0 + 2)
    assert core.peers[ssl(1)].open_count() == 1
    assert core.next_deadline() == T0 + SYNC_PERIOD
    core.handle_timer(T0 + TRANSAC_TIMEOUT - 1)
    assert core.peers[ssl(1)].open_count() == 1
    core.handle_timer(T0 + TRANSAC_TIMEOUT)
    assert core.peers[ssl(1)].open_count() == 0 and core.timed_out == 1


def test_open_transactions_per_friend_are_bounded() -> None:
    """A friend opening transactions without end gets END_FAIL_FULL past the bound."""
    core = _core()
    begin = NxsTransacFlags.BEGIN_P1 | NxsTransacFlags.TYPE_MSGS
    for txn in range(1, MAX_PENDING_PER_PEER + 5):
        core.item_received(ssl(1), _transac(txn, begin, 3), T0)
    assert core.peers[ssl(1)].open_count() == MAX_PENDING_PER_PEER
    flags = [o.item.transact_flag for o in core.drain(T0) if isinstance(o, SendItem)]
    assert flags.count(NxsTransacFlags.END_FAIL_FULL) == 4


def test_a_tampered_group_is_dropped_reported_and_not_forwarded() -> None:
    """A group with a bit flipped in its data: Rejected, not stored, never listed to others."""
    core = _core()
    author = key_pairs()[0]
    grp, meta = make_group(key_pairs()[3], author, "t", T0)
    lookup = {author.key_id: author.public}.get
    core.author_lookup = lookup
    begin = NxsTransacFlags.BEGIN_P1 | NxsTransacFlags.TYPE_GRPS
    core.item_received(ssl(1), _transac(3, begin, 1), T0)
    bad = nxs_item_class(SERVICE, NxsGrpItem)(transaction_number=3, pos=0,
                                             grp_id=meta.group_id, grp=b"Forum:t",
                                             meta=encode_grp_meta(meta))
    core.item_received(ssl(1), bad, T0)
    out = core.drain(T0)
    assert any(isinstance(o, Rejected) and "admin signature" in o.reason for o in out)
    assert not any(isinstance(o, GroupStored) for o in out)
    assert core.store.groups() == []
    good = dataclasses.replace(bad, grp=grp)
    core.item_received(ssl(1), _transac(4, begin, 1), T0)
    core.item_received(ssl(1), dataclasses.replace(good, transaction_number=4), T0)
    assert any(isinstance(o, GroupStored) for o in core.drain(T0))


def test_repeated_sync_is_cheap() -> None:
    """Once in sync, a sync round is one request per group list and per group, no answer."""
    authors = _authors()
    net, nodes = build(2, {(0, 1)}, authors)  # type: ignore[arg-type]
    net.clock.advance(T0)
    grp, meta = make_group(key_pairs()[3], key_pairs()[0], "g", T0)
    net.feed(addr(0), nodes[0].core.publish_group, grp, meta)
    connect_all(net, nodes)
    net.run(2.5 * SYNC_PERIOD)  # B's list changed when it got the group: A hears it once
    before = net.sent
    net.run(SYNC_PERIOD)
    # Each side: one SYNC_GRP_REQ and one SYNC_MSG_REQ for the one group; nothing answers.
    assert net.sent - before == 4


def test_grp_request_answered_only_when_our_list_changed() -> None:
    """update_ts at or above our server time: no answer; below: a GRP_LIST_RESP."""
    core = _core()
    grp, meta = make_group(key_pairs()[3], key_pairs()[0], "g", T0)
    core.author_lookup = {key_pairs()[0].key_id: key_pairs()[0].public}.get
    core.publish_group(grp, meta, T0)
    core.drain(T0)
    ts = core.store.grp_server_ts()
    req = nxs_item_class(SERVICE, NxsSyncGrpReqItem)
    core.item_received(ssl(1), req(transaction_number=0, flag=0, created_since=0,
                                   sync_hash="", update_ts=ts), T0)
    assert core.drain(T0) == []
    core.item_received(ssl(1), req(transaction_number=0, flag=0, created_since=0,
                                   sync_hash="", update_ts=ts - 1), T0)
    (out,) = core.drain(T0)
    assert out.item.transact_flag == NxsTransacFlags.BEGIN_P1 | NxsTransacFlags.TYPE_GRP_LIST_RESP
    assert out.item.n_items == 1 and out.item.update_ts == ts


def test_bytes_that_are_not_ours_are_ignored() -> None:
    """An item of another GXS service, or from a stranger, changes nothing."""
    core = _core()
    other = nxs_item_class(0x0217, NxsSyncGrpItem)(transaction_number=1, flag=2,
                                                   grp_id=GxsId(b"\1" * 16), publish_ts=1,
                                                   author_id=GxsId.null())
    core.item_received(ssl(1), other, T0)  # type: ignore[arg-type]
    core.item_received(ssl(5), _transac(1, 0x1001, 1), T0)
    assert core.drain(T0) == []
    with pytest.raises(KeyError):
        core.publish_message(b"m", make_message(make_group(key_pairs()[3], key_pairs()[0],
                                                           "x", T0)[1], key_pairs()[0],
                                                "m", T0)[1], T0)


def test_a_message_of_an_unknown_author_arrives_once_the_author_is_known() -> None:
    """B lacks the author's identity: the message is refused with AuthorWanted, and fetched
    again at the next round once B knows the author; a forged message is not asked again."""
    from services.gxs.nxs_core import REJECTED_RETRY_DELAY, AuthorWanted

    author = key_pairs()[1]
    authors = {author.key_id: author}
    net, nodes = build(2, {(0, 1)}, authors)  # type: ignore[arg-type]
    net.clock.advance(T0)
    known: dict[GxsId, object] = {}
    nodes[1].core.author_lookup = lambda g: known.get(g)  # type: ignore[assignment,return-value]
    grp, meta = make_group(key_pairs()[3], author, "g", T0)
    known[author.key_id] = author.public  # the group's own author signature needs it
    net.feed(addr(0), nodes[0].core.publish_group, grp, meta)
    connect_all(net, nodes)
    net.run(5)
    del known[author.key_id]
    msg, mmeta = make_message(meta, author, "who wrote this", T0)
    net.feed(addr(0), nodes[0].core.publish_message, msg, mmeta)
    net.run(SYNC_PERIOD + 5)
    assert AuthorWanted(author.key_id, ssl(0)) in nodes[1].events
    assert not nodes[1].core.store.has_message(mmeta.msg_id)
    known[author.key_id] = author.public
    net.run(SYNC_PERIOD + 5)
    assert nodes[1].core.store.has_message(mmeta.msg_id)
    # A message whose signature fails is remembered and not asked for again for a day.
    core = nodes[1].core
    assert core._rejected == {}
    bad = dataclasses.replace(mmeta, name="forged", msg_id=GxsMessageId(b"\x07" * 20))
    core._receive_message(ssl(0), nxs_item_class(SERVICE, NxsMsgItem)(  # type: ignore[call-arg]
        transaction_number=0, pos=0, msg_id=bad.msg_id, grp_id=meta.group_id, msg=msg,
        meta=encode_msg_meta(bad)), T0)
    assert core._rejected.get(bad.msg_id) == T0 + REJECTED_RETRY_DELAY


def test_messages_of_a_banned_author_are_refused() -> None:
    """Reputation bans an author: its messages are rejected, not stored."""
    author = key_pairs()[1]
    core = _core()
    core.author_lookup = {author.key_id: author.public}.get
    core.is_banned = lambda g: g == author.key_id
    grp, meta = make_group(key_pairs()[3], author, "g", T0)
    core.publish_group(grp, meta, T0)
    msg, mmeta = make_message(meta, author, "spam", T0)
    core.drain(T0)
    core._receive_message(ssl(1), nxs_item_class(SERVICE, NxsMsgItem)(  # type: ignore[call-arg]
        transaction_number=0, pos=0, msg_id=mmeta.msg_id, grp_id=meta.group_id, msg=msg,
        meta=encode_msg_meta(mmeta)), T0)
    assert not core.store.has_message(mmeta.msg_id)
    assert any(isinstance(o, Rejected) and "banned" in o.reason for o in core.drain(T0))


def test_the_social_cores_keep_the_core_contract() -> None:
    """NXS, lobby and reputation cores offer drain/next_deadline/handle_timer (pqi.core)."""
    from pqi.core import is_core
    from services.chat.lobby import LobbyCore
    from services.reputation.core import ReputationCore
    assert is_core(_core()) and is_core(LobbyCore(lambda g: None)) and is_core(ReputationCore())
    assert LobbyCore(lambda g: None).next_deadline() is None  # nothing to do without friends
