"""Captured NXS exchanges replayed into our identity service: it answers as RetroShare did.

Lines are alice's capture (captures2): ``in`` lines are what bob sent her, ``out`` lines what
she sent.  Where our answer is not byte-identical the difference is a transaction number or
an update time (ours count from our own state), and a group the real node had that never left
it (alice's anonymous identity); docs/gxs.md explains each.
"""

from __future__ import annotations

import dataclasses

import pqi
from pqi.items.nxs import NxsGrpItem, NxsItem, NxsSyncGrpItem, NxsSyncGrpReqItem, NxsTransacItem
from pqi.wire.fields import GxsId, SslId
from services.gxs.nxs_core import NxsCore, SendItem
from services.gxs.store import GxsStore
from tests.captures2_items import nodes, raw
from tests.gxs_fixtures import captured_groups

BOB = SslId.from_hex(nodes()["bob"]["ssl_id"])
ALICE = SslId.from_hex(nodes()["alice"]["ssl_id"])
T = 1_796_531_000.0


def _item(line: int) -> NxsItem:
    item = pqi.decode(raw("alice", line))
    assert isinstance(item, NxsItem)
    return item


def _core(*ids: str) -> NxsCore:
    """An identity-service core holding the captured identity groups ``ids``."""
    store = GxsStore(None, 0x0211)
    for hexid in ids:
        item, _ = captured_groups()[0x0211, GxsId.from_hex(hexid)]
        store.put_group(item.grp, item.meta, int(T), subscribed=True)
    return NxsCore(0x0211, store, auto_subscribe=True)


def _sent(core: NxsCore) -> list[NxsItem]:
    return [o.item for o in core.drain(T) if isinstance(o, SendItem)]


def _modulo(item: NxsItem) -> NxsItem:
    """The item with transaction number and update time zeroed (ours are our own)."""
    fields = {f: 0 for f in ("transaction_number", "update_ts") if hasattr(item, f)}
    return dataclasses.replace(item, **fields)


def test_serving_a_group_request_as_bob_did() -> None:
    """alice asks bob for his identity (alice:96, 99): P2, END, then GRPS with his group.

    P2 and END are byte-identical to bob's (alice:97, 103); the GRPS announcement equals his
    (alice:104) but for our transaction number and update time, and the group item (alice:107)
    carries the very same group and metadata bytes.
    """
    core = _core(nodes()["bob"]["gxs_id_signed"])
    core.peer_connected(ALICE, T)
    core.drain(T)
    core.item_received(ALICE, _item(96), T)
    assert [pqi.encode(i) for i in _sent(core)] == [raw("alice", 97)]
    core.item_received(ALICE, _item(99), T)
    end, grps = _sent(core)
    assert pqi.encode(end) == raw("alice", 103)
    assert _modulo(grps) == _modulo(_item(104))
    p2 = dataclasses.replace(_item(105), transaction_number=grps.transaction_number)
    core.item_received(ALICE, p2, T)
    (group,) = _sent(core)
    real = _item(107)
    assert isinstance(group, NxsGrpItem) and isinstance(real, NxsGrpItem)
    assert (group.grp, group.meta, group.grp_id, group.pos) == (real.grp, real.meta,
                                                                 real.grp_id, real.pos)
    assert _modulo(group) == _modulo(real)


def test_requesting_a_group_as_alice_did() -> None:
    """Bob's GRPS transaction to alice (alice:104, 107): P2 and END as hers, group stored."""
    core = _core()
    core.peer_connected(BOB, T)
    core.drain(T)
    core.item_received(BOB, _item(104), T)
    assert [pqi.encode(i) for i in _sent(core)] == [raw("alice", 105)]
    core.item_received(BOB, _item(107), T)
    assert [pqi.encode(i) for i in _sent(core)] == [raw("alice", 113)]
    assert core.store.has_group(GxsId.from_hex(nodes()["bob"]["gxs_id_signed"]))


def test_answering_a_group_list_request_as_alice_did() -> None:
    """Bob's SYNC_GRP_REQ (alice:184): alice listed her identities (alice:192, 197-200).

    Our list holds the three identities that ever left a node; hers also named her anonymous
    identity (alice:198), whose group was never sent anywhere, so we cannot hold it.
    """
    core = _core(*(nodes()[n]["gxs_id_signed"] for n in ("alice", "bob", "carol")))
    core.peer_connected(BOB, T)
    core.drain(T)
    core.item_received(BOB, _item(184), T)
    (begin,) = _sent(core)
    assert isinstance(begin, NxsTransacItem)
    assert begin.transact_flag == _item(192).transact_flag and begin.n_items == 3
    p2 = dataclasses.replace(_item(195), transaction_number=begin.transaction_number)
    core.item_received(BOB, p2, T)
    ours = [_modulo(i) for i in _sent(core)]
    real = [_modulo(_item(n)) for n in (197, 199, 200)]
    assert all(isinstance(i, NxsSyncGrpItem) for i in ours)
    # The publish times are the groups' own, so each entry is identical to hers.
    assert ours == real


def test_our_sync_request_is_retroshares() -> None:
    """A friend connects: our first SYNC_GRP_REQ is byte-identical to alice's (alice:154)."""
    core = _core()
    core.peer_connected(BOB, T)
    (req,) = [i for i in _sent(core) if isinstance(i, NxsSyncGrpReqItem)]
    assert pqi.encode(req) == raw("alice", 154)


def test_our_message_sync_request_is_retroshares() -> None:
    """A subscribed channel: our SYNC_MSG_REQ equals alice's (alice:457), byte for byte, when
    made at the same second (it asks for the last month's messages)."""
    item, meta = captured_groups()[0x0217, GxsId.from_hex(nodes()["alice"]["created"]
                                                            ["channel"]["group_id"])]
    store = GxsStore(None, 0x0217)
    store.put_group(item.grp, item.meta, int(T), subscribed=True)
    core = NxsCore(0x0217, store)
    real = pqi.decode(raw("alice", 457))
    now = real.created_since + 86400 * 30  # type: ignore[union-attr]
    core.peer_connected(BOB, now)
    (req,) = [o.item for o in core.drain(now) if isinstance(o, SendItem)
              and not isinstance(o.item, NxsSyncGrpReqItem)]
    assert pqi.encode(req) == raw("alice", 457)


def _channel_core() -> tuple[NxsCore, GxsId]:
    """A channels core holding alice's captured channel and her post, as alice did."""
    created = nodes()["alice"]["created"]["channel"]
    gid = GxsId.from_hex(created["group_id"])
    item, _ = captured_groups()[0x0217, gid]
    store = GxsStore(None, 0x0217)
    store.put_group(item.grp, item.meta, int(T), subscribed=True)
    post = pqi.decode(raw("alice", 548))
    store.put_message(post.msg, post.meta, int(T))  # type: ignore[union-attr]
    core = NxsCore(0x0217, store)
    core.peer_connected(BOB, T)
    core.drain(T)
    return core, gid


def test_serving_a_channel_message_list_and_the_post_as_alice_did() -> None:
    """Bob asks alice for the channel's messages (alice:507), its stats (alice:508), then the
    post (alice:534, 539): the stats answer is byte-identical to hers (alice:518); the list
    entry (alice:523), P2 and END (alice:536, 540) are identical; the post (alice:548) carries
    the same message and metadata bytes; only transaction numbers and update times differ."""
    core, _ = _channel_core()
    core.item_received(BOB, _item(507), T)
    (begin,) = _sent(core)
    assert _modulo(begin) == _modulo(_item(517))
    core.item_received(BOB, _item(508), T)
    (stats,) = _sent(core)
    assert pqi.encode(stats) == raw("alice", 518)
    core.item_received(BOB, dataclasses.replace(_item(521),
                                                transaction_number=begin.transaction_number), T)
    (entry,) = _sent(core)
    assert _modulo(entry) == _modulo(_item(523))
    core.item_received(BOB, _item(534), T)
    assert [pqi.encode(i) for i in _sent(core)] == [raw("alice", 536)]
    core.item_received(BOB, _item(539), T)
    end, msgs = _sent(core)
    assert pqi.encode(end) == raw("alice", 540)
    assert _modulo(msgs) == _modulo(_item(542))
    core.item_received(BOB, dataclasses.replace(_item(545),
                                                transaction_number=msgs.transaction_number), T)
    (post,) = _sent(core)
    assert _modulo(post) == _modulo(_item(548))
    assert pqi.encode(dataclasses.replace(post, transaction_number=7)) == raw("alice", 548)
