# -*- test-case-name: tests.test_nxs_core -*-
"""The NXS synchronisation core of one GXS service (``RsGxsNetService``), sans-IO.

What travels, as the captures show it (every exchange is a *transaction*: the sender announces
``n`` items with ``TRANSAC BEGIN_P1|<type>`` and its update time, the receiver answers
``BEGIN_P2``, the sender sends the ``n`` items carrying the transaction number, the receiver
answers ``END_SUCCESS`` once it holds them all):

1. every `SYNC_PERIOD` seconds, and when a friend connects or sends a pull request, we ask each
   friend ``SYNC_GRP_REQ`` with the friend's group update time we last synced to;
2. a friend whose group list changed since then answers a ``GRP_LIST_RESP`` transaction of
   ``SYNC_GRP`` entries (group id, publish time, author) for the groups it subscribes to;
3. we ask the groups we lack or hold an older version of (``GRP_LIST_REQ``), and it sends them
   (``GRPS``: whole ``NXS_GRP`` items);
4. the same per subscribed group for messages: ``SYNC_MSG_REQ`` with the group's message
   update time -> ``MSG_LIST_RESP`` of ``SYNC_MSG`` -> ``MSG_LIST_REQ`` in slices of
   `MAX_REQLIST_SIZE` -> ``MSGS``;
5. after we publish, a ``SYNC_PULL_REQUEST`` asks friends to sync with us now.

Every group and message received is checked (`services.gxs.security`) before it is stored;
one that fails is dropped and reported (`Rejected`), never stored nor offered on.  Encrypted
(circle) data is not readable without circle keys, which we do not have: such items are
counted, dropped and reported, and the transaction completes without them, as a RetroShare
node outside the circle does.

Bounds: `MAX_TRANSACTION_ITEMS` items per transaction, `MAX_PENDING_PER_PEER` open
transactions per friend, `MAX_PEERS` friends; a transaction that does not end within
`TRANSAC_TIMEOUT` seconds is dropped with whatever it held.

Inputs: `peer_connected`, `peer_disconnected`, `item_received`, `publish_group`,
`publish_message`, `subscribe`, `request_groups`; outputs (`drain`): `SendItem`,
`GroupStored`, `MessageStored`, `Rejected`, `AuthorWanted`.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Callable
from typing import Any, Final

from pqi.items.gxs import (
    GrpMeta,
    MsgMeta,
    decode_grp_meta,
    decode_msg_meta,
    encode_grp_meta,
    encode_msg_meta,
)
from pqi.items.nxs import (
    NxsEncryptedDataItem,
    NxsGrpItem,
    NxsItem,
    NxsMsgItem,
    NxsPullRequestItem,
    NxsRsaKey,
    NxsSyncGrpItem,
    NxsSyncGrpReqItem,
    NxsSyncGrpStatsItem,
    NxsSyncMsgItem,
    NxsSyncMsgReqItem,
    NxsTransacFlags,
    NxsTransacItem,
    nxs_item_class,
)
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, GxsMessageId, SslId
from services.gxs.policy import policy_for
from services.gxs.security import (
    SignatureError,
    UnknownAuthorError,
    check_group,
    check_message,
)
from services.gxs.store import GxsStore, StoreFullError

__all__ = [
    "NxsCore", "SendItem", "GroupStored", "MessageStored", "Rejected", "AuthorWanted",
    "SYNC_PERIOD", "REJECTED_RETRY_DELAY", "MAX_REJECTED",
    "TRANSAC_TIMEOUT", "MSG_REQ_PERIOD", "MAX_REQLIST_SIZE", "MAX_TRANSACTION_ITEMS",
    "MAX_PENDING_PER_PEER", "MAX_PEERS", "MAX_OUTPUTS", "FLAG_REQUEST", "FLAG_RESPONSE",
    "STATS_REQUEST", "STATS_RESPONSE",
]

#: Seconds between two sync rounds with each friend (``SYNC_PERIOD``).
SYNC_PERIOD: Final = 60
#: A transaction not ended after this many seconds is dropped (``TRANSAC_TIMEOUT``).
TRANSAC_TIMEOUT: Final = 2000
#: Messages older than this are neither requested nor sent (``RS_GXS_DEFAULT_MSG_REQ_PERIOD``,
#: one month): a message sync request says "created since now minus this".
MSG_REQ_PERIOD: Final = 86400 * 30
#: Most message ids we request in one transaction (``MAX_REQLIST_SIZE``).
MAX_REQLIST_SIZE: Final = 20
#: Most items one transaction may announce (ours and a friend's).
MAX_TRANSACTION_ITEMS: Final = 10_000
#: Most transactions open with one friend at once (both directions).
MAX_PENDING_PER_PEER: Final = 64
#: Most friends the core keeps state for.
MAX_PEERS: Final = 1_000
#: Most outputs waiting for `drain` (a driver drains after every input; this is a safety cap).
MAX_OUTPUTS: Final = 100_000
#: A message that failed its checks is not asked for again for this long
#: (``REJECTED_MESSAGE_RETRY_DELAY``); one whose author was unknown is asked again next round.
REJECTED_RETRY_DELAY: Final = 24 * 3600
#: Most rejected message ids remembered.
MAX_REJECTED: Final = 10_000
#: ``RsNxsSyncGrpItem``/``RsNxsSyncMsgItem`` flags.
FLAG_REQUEST: Final = 0x01
FLAG_RESPONSE: Final = 0x02
#: ``RsNxsSyncGrpStatsItem`` request types.
STATS_REQUEST: Final = 0x01
STATS_RESPONSE: Final = 0x02

_TYPE_MASK: Final = 0xFF00
_ENDS: Final = (NxsTransacFlags.END_SUCCESS | NxsTransacFlags.CANCEL | NxsTransacFlags.END_FAIL_NUM
                | NxsTransacFlags.END_FAIL_TIMEOUT | NxsTransacFlags.END_FAIL_FULL)


@dataclasses.dataclass(frozen=True)
class SendItem:
    """Send ``item`` to friend ``peer``."""

    peer: SslId
    item: NxsItem


@dataclasses.dataclass(frozen=True)
class GroupStored:
    """A checked group (new or newer) was stored; ``peer`` None when we published it."""

    service: int
    grp_id: GxsId
    peer: SslId | None


@dataclasses.dataclass(frozen=True)
class MessageStored:
    """A checked message was stored."""

    service: int
    grp_id: GxsId
    msg_id: GxsMessageId
    peer: SslId | None


@dataclasses.dataclass(frozen=True)
class AuthorWanted:
    """A message names an author identity we do not know: ask ``peer`` for it (the identity
    service's ``request``); the message is fetched again at the next sync round."""

    author: GxsId
    peer: SslId


@dataclasses.dataclass(frozen=True)
class Rejected:
    """Something a friend sent was refused (bad signature, over a bound, unknown author...)."""

    service: int
    peer: SslId
    reason: str


class _Kind(enum.IntEnum):
    GRP_LIST_RESP = NxsTransacFlags.TYPE_GRP_LIST_RESP
    MSG_LIST_RESP = NxsTransacFlags.TYPE_MSG_LIST_RESP
    GRP_LIST_REQ = NxsTransacFlags.TYPE_GRP_LIST_REQ
    MSG_LIST_REQ = NxsTransacFlags.TYPE_MSG_LIST_REQ
    GRPS = NxsTransacFlags.TYPE_GRPS
    MSGS = NxsTransacFlags.TYPE_MSGS


@dataclasses.dataclass
class _Outgoing:
    kind: _Kind
    items: list[NxsItem]
    update_ts: int
    deadline: float
    sent: bool = False


@dataclasses.dataclass
class _Incoming:
    kind: _Kind
    expected: int
    update_ts: int
    deadline: float
    items: list[NxsItem] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Peer:
    next_sync: float
    outgoing: dict[int, _Outgoing] = dataclasses.field(default_factory=dict)
    incoming: dict[int, _Incoming] = dataclasses.field(default_factory=dict)

    def open_count(self) -> int:
        return len(self.outgoing) + len(self.incoming)


class NxsCore:
    """NXS sync of one GXS service with our friends (see the module docstring).

    ``author_lookup`` gives an identity's public key (for author signatures); ``is_banned``
    says whether reputation hides an identity (its messages are refused, as RetroShare refuses
    LOCALLY_NEGATIVE authors); ``auto_subscribe`` makes every group received subscribed
    (identities: a node keeps all it learns).
    """

    def __init__(self, service: int, store: GxsStore, *,
                 author_lookup: Callable[[GxsId], NxsRsaKey | None] | None = None,
                 is_banned: Callable[[GxsId], bool] = lambda _g: False,
                 auto_subscribe: bool = False, sync_period: float = SYNC_PERIOD,
                 transac_timeout: float = TRANSAC_TIMEOUT,
                 distant_group: Callable[[SslId], GxsId | None] = lambda _p: None) -> None:
        self.service = service
        self.store = store
        self.policy = policy_for(service)
        self.author_lookup = author_lookup
        self.is_banned = is_banned
        self.auto_subscribe = auto_subscribe
        self.sync_period = sync_period
        self.transac_timeout = transac_timeout
        #: The one group a distant (tunnel) peer may sync, None for friends.
        self.distant_group = distant_group
        self.peers: dict[SslId, _Peer] = {}
        self._next_txn = 1
        self._out: list[Any] = []
        #: Message ids that failed their checks, with when we may ask for them again.
        self._rejected: collections.OrderedDict[GxsMessageId, float] = \
            collections.OrderedDict()
        self._cls = {base: nxs_item_class(service, base) for base in (
            NxsSyncGrpReqItem, NxsSyncGrpItem, NxsSyncGrpStatsItem, NxsGrpItem,
            NxsSyncMsgItem, NxsSyncMsgReqItem, NxsMsgItem, NxsTransacItem, NxsPullRequestItem)}
        #: Counters, for status and tests.
        self.rejected = 0
        self.encrypted_dropped = 0
        self.timed_out = 0

    # --- the core contract -----------------------------------------------------------------

    def drain(self, now: float) -> list[Any]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        times = [p.next_sync for p in self.peers.values()]
        for p in self.peers.values():
            times.extend(t.deadline for t in p.outgoing.values())
            times.extend(t.deadline for t in p.incoming.values())
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for peer, state in self.peers.items():
            for table in (state.outgoing, state.incoming):
                for txn in [n for n, t in table.items() if t.deadline <= now]:
                    del table[txn]
                    self.timed_out += 1
            if state.next_sync <= now:
                self._sync_with(peer, now)

    # --- inputs ----------------------------------------------------------------------------

    def peer_connected(self, peer: SslId, now: float) -> None:
        """A friend is online: sync with it now, then every `SYNC_PERIOD`."""
        if peer not in self.peers and len(self.peers) >= MAX_PEERS:
            return
        self.peers[peer] = _Peer(next_sync=now)
        self._sync_with(peer, now)

    def peer_disconnected(self, peer: SslId, now: float) -> None:
        """Drop the friend's open transactions (a new connection starts afresh)."""
        self.peers.pop(peer, None)

    def publish_group(self, grp: bytes, meta: GrpMeta, now: float,
                      private_keys: tuple[NxsRsaKey, ...] = ()) -> None:
        """Store a group we made (already signed) and ask friends to pull it."""
        check_group(grp, meta, meta.group_id, self.policy, self.author_lookup)
        self.store.put_group(grp, encode_grp_meta(meta), int(now), subscribed=True)
        for key in private_keys:
            self.store.put_private_key(key)
        self._emit(GroupStored(self.service, meta.group_id, None))
        self._pull_request()

    def publish_message(self, msg: bytes, meta: MsgMeta, now: float) -> None:
        """Store a message we made (already signed) and ask friends to pull it."""
        group = self.store.group_meta(meta.group_id)
        if group is None:
            raise KeyError(f"no group {meta.group_id}")
        check_message(msg, meta, meta.msg_id, group, self.policy, self.author_lookup)
        self.store.put_message(msg, encode_msg_meta(meta), int(now))
        self._emit(MessageStored(self.service, meta.group_id, meta.msg_id, None))
        self._pull_request()

    def request_groups(self, peer: SslId, grp_ids: list[GxsId], now: float) -> None:
        """Ask ``peer`` for these groups now (``requestGrp``: an identity a lobby needs)."""
        if peer not in self.peers:
            return
        wanted: list[NxsItem] = [
            self._cls[NxsSyncGrpItem](transaction_number=0, flag=FLAG_REQUEST, grp_id=g,
                                      publish_ts=0, author_id=GxsId.null())
            for g in grp_ids[:MAX_REQLIST_SIZE] if not self.store.has_group(g)]
        self._start(peer, _Kind.GRP_LIST_REQ, wanted, 0, now)

    def subscribe(self, grp_id: GxsId, subscribed: bool, now: float) -> None:
        self.store.set_subscribed(grp_id, subscribed, int(now))
        if subscribed:
            for peer in self.peers:
                if self._allowed(peer, grp_id):
                    self._send(peer, self._msg_sync_request(peer, grp_id, now))

    def item_received(self, peer: SslId, item: NxsItem, now: float) -> None:
        """An NXS item of this service from friend ``peer``."""
        state = self.peers.get(peer)
        if state is None or item.SERVICE != self.service:
            return
        if isinstance(item, NxsSyncGrpReqItem):
            self._on_grp_request(peer, item, now)
        elif isinstance(item, NxsSyncMsgReqItem):
            self._on_msg_request(peer, item, now)
        elif isinstance(item, NxsSyncGrpStatsItem):
            self._on_stats(peer, item)
        elif isinstance(item, NxsPullRequestItem):
            self._sync_with(peer, now)
        elif isinstance(item, NxsTransacItem):
            self._on_transac(peer, state, item, now)
        elif isinstance(item, NxsEncryptedDataItem):
            self.encrypted_dropped += 1
            self._reject(peer, "encrypted (circle) data we hold no key for")
            self._count_item(peer, state, item, now)
        else:
            self._count_item(peer, state, item, now)

    # --- requests --------------------------------------------------------------------------

    def _sync_with(self, peer: SslId, now: float) -> None:
        state = self.peers[peer]
        state.next_sync = now + self.sync_period
        self._send(peer, self._cls[NxsSyncGrpReqItem](
            transaction_number=0, flag=0, created_since=0, sync_hash="",
            update_ts=self.store.peer_grp_ts(peer)))
        for grp_id, _, _ in self.store.groups(subscribed_only=True):
            if self._allowed(peer, grp_id):
                self._send(peer, self._msg_sync_request(peer, grp_id, now))

    def _allowed(self, peer: SslId, grp_id: GxsId) -> bool:
        """Whether ``peer`` may sync ``grp_id``: friends any group, a distant peer only the
        group its tunnel is for (so it learns nothing of our other groups)."""
        only = self.distant_group(peer)
        return only is None or only == grp_id

    def _msg_sync_request(self, peer: SslId, grp_id: GxsId, now: float) -> NxsItem:
        return self._cls[NxsSyncMsgReqItem](
            transaction_number=0, flag=0, created_since=max(0, int(now) - MSG_REQ_PERIOD),
            sync_hash="", grp_id=grp_id, update_ts=self.store.peer_msg_ts(peer, grp_id))

    def _on_grp_request(self, peer: SslId, item: NxsSyncGrpReqItem, now: float) -> None:
        server_ts = self.store.grp_server_ts()
        if server_ts <= item.update_ts:
            return
        entries: list[NxsItem] = [
            self._cls[NxsSyncGrpItem](transaction_number=0, flag=FLAG_RESPONSE, grp_id=gid,
                                      publish_ts=ts, author_id=author)
            for gid, ts, author in self.store.groups(subscribed_only=True)
            if self._allowed(peer, gid)]
        self._start(peer, _Kind.GRP_LIST_RESP, entries, server_ts, now)

    def _on_msg_request(self, peer: SslId, item: NxsSyncMsgReqItem, now: float) -> None:
        if not self.store.subscribed(item.grp_id) or not self._allowed(peer, item.grp_id):
            return
        server_ts = self.store.msg_server_ts(item.grp_id)
        if server_ts <= item.update_ts:
            return
        entries: list[NxsItem] = [
            self._cls[NxsSyncMsgItem](transaction_number=0, flag=FLAG_RESPONSE,
                                      grp_id=item.grp_id, msg_id=mid, author_id=author)
            for mid, author in self.store.message_ids(item.grp_id, since=item.created_since)]
        self._start(peer, _Kind.MSG_LIST_RESP, entries, server_ts, now)

    def _on_stats(self, peer: SslId, item: NxsSyncGrpStatsItem) -> None:
        if item.request_type != STATS_REQUEST or not self.store.subscribed(item.grp_id) \
                or not self._allowed(peer, item.grp_id):
            return
        self._send(peer, self._cls[NxsSyncGrpStatsItem](
            request_type=STATS_RESPONSE, grp_id=item.grp_id,
            number_of_posts=self.store.message_count(item.grp_id),
            last_post_ts=self.store.last_post_ts(item.grp_id)))

    # --- transactions ----------------------------------------------------------------------

    def _start(self, peer: SslId, kind: _Kind, items: list[NxsItem], update_ts: int,
               now: float) -> bool:
        """Open an outgoing transaction: announce it; the items leave on BEGIN_P2.

        False when it could not be opened (nothing to send counts as done: True).
        """
        state = self.peers[peer]
        if not items:
            return True
        if len(items) > MAX_TRANSACTION_ITEMS or state.open_count() >= MAX_PENDING_PER_PEER:
            return False
        txn = self._next_txn
        self._next_txn = self._next_txn % 0xFFFFFFFF + 1
        stamped = [dataclasses.replace(it, transaction_number=txn) for it in items]
        state.outgoing[txn] = _Outgoing(kind, stamped, update_ts, now + self.transac_timeout)
        self._send(peer, self._cls[NxsTransacItem](
            transaction_number=txn, transact_flag=NxsTransacFlags.BEGIN_P1 | NxsTransacFlags(kind),
            n_items=len(items), update_ts=update_ts))
        return True

    def _transac(self, txn: int, flag: NxsTransacFlags) -> NxsItem:
        return self._cls[NxsTransacItem](transaction_number=txn, transact_flag=flag,
                                         n_items=0, update_ts=0)

    def _on_transac(self, peer: SslId, state: _Peer, item: NxsTransacItem, now: float) -> None:
        flag = int(item.transact_flag)
        txn = item.transaction_number
        if flag & NxsTransacFlags.BEGIN_P1:
            try:
                kind = _Kind(flag & _TYPE_MASK)
            except ValueError:
                self._reject(peer, f"transaction type 0x{flag & _TYPE_MASK:04x}")
                return
            if item.n_items > MAX_TRANSACTION_ITEMS or item.n_items == 0:
                self._reject(peer, f"transaction of {item.n_items} items")
                self._send(peer, self._transac(txn, NxsTransacFlags.END_FAIL_FULL))
                return
            if txn in state.incoming or state.open_count() >= MAX_PENDING_PER_PEER:
                self._reject(peer, "too many open transactions")
                self._send(peer, self._transac(txn, NxsTransacFlags.END_FAIL_FULL))
                return
            state.incoming[txn] = _Incoming(kind, item.n_items, item.update_ts,
                                            now + self.transac_timeout)
            self._send(peer, self._transac(txn, NxsTransacFlags.BEGIN_P2 | NxsTransacFlags(kind)))
        elif flag & NxsTransacFlags.BEGIN_P2:
            out = state.outgoing.get(txn)
            if out is not None and not out.sent:
                out.sent = True
                for it in out.items:
                    self._send(peer, it)
        elif flag & _ENDS:
            state.outgoing.pop(txn, None)

    def _count_item(self, peer: SslId, state: _Peer, item: NxsItem, now: float) -> None:
        txn = getattr(item, "transaction_number", None)
        incoming = state.incoming.get(txn) if txn is not None else None
        if incoming is None:
            return
        if not isinstance(item, NxsEncryptedDataItem):
            incoming.items.append(item)
        incoming.expected -= 1
        if incoming.expected > 0:
            return
        del state.incoming[txn]
        self._send(peer, self._transac(txn, NxsTransacFlags.END_SUCCESS))
        self._complete(peer, incoming, now)

    def _complete(self, peer: SslId, txn: _Incoming, now: float) -> None:
        if txn.kind == _Kind.GRP_LIST_RESP:
            self._on_grp_list(peer, txn, now)
        elif txn.kind == _Kind.MSG_LIST_RESP:
            self._on_msg_list(peer, txn, now)
        elif txn.kind == _Kind.GRP_LIST_REQ:
            self._serve_groups(peer, txn, now)
        elif txn.kind == _Kind.MSG_LIST_REQ:
            self._serve_messages(peer, txn, now)
        elif txn.kind == _Kind.GRPS:
            for it in txn.items:
                if isinstance(it, NxsGrpItem):
                    self._receive_group(peer, it, now)
        elif txn.kind == _Kind.MSGS:
            for it in txn.items:
                if isinstance(it, NxsMsgItem):
                    self._receive_message(peer, it, now)

    def _on_grp_list(self, peer: SslId, txn: _Incoming, now: float) -> None:
        wanted: list[NxsItem] = []
        for it in txn.items:
            if not isinstance(it, NxsSyncGrpItem) or not self._allowed(peer, it.grp_id):
                continue
            have = self.store.group_meta(it.grp_id)
            if have is None or have.publish_ts < it.publish_ts:
                wanted.append(self._cls[NxsSyncGrpItem](
                    transaction_number=0, flag=FLAG_REQUEST, grp_id=it.grp_id, publish_ts=0,
                    author_id=GxsId.null()))
        self.store.set_peer_grp_ts(peer, txn.update_ts)
        self._start(peer, _Kind.GRP_LIST_REQ, wanted, 0, now)

    def _on_msg_list(self, peer: SslId, txn: _Incoming, now: float) -> None:
        wanted: list[NxsItem] = []
        grp_id = None
        for it in txn.items:
            if not isinstance(it, NxsSyncMsgItem) or not self.store.subscribed(it.grp_id) \
                    or not self._allowed(peer, it.grp_id):
                continue
            grp_id = it.grp_id
            if self._rejected.get(it.msg_id, 0.0) > now:
                continue
            if not self.store.has_message(it.msg_id):
                wanted.append(self._cls[NxsSyncMsgItem](
                    transaction_number=0, flag=FLAG_REQUEST, grp_id=it.grp_id,
                    msg_id=it.msg_id, author_id=GxsId.null()))
        # Requests of at most MAX_REQLIST_SIZE ids each; if the open-transaction bound stops
        # some, the friend's time is not recorded and the next sync lists them again.
        started = all([self._start(peer, _Kind.MSG_LIST_REQ,
                                   wanted[i:i + MAX_REQLIST_SIZE], 0, now)
                       for i in range(0, len(wanted), MAX_REQLIST_SIZE)])
        if grp_id is not None and started:
            self.store.set_peer_msg_ts(peer, grp_id, txn.update_ts)

    def _serve_groups(self, peer: SslId, txn: _Incoming, now: float) -> None:
        out: list[NxsItem] = []
        for it in txn.items:
            if not isinstance(it, NxsSyncGrpItem) or not self._allowed(peer, it.grp_id):
                continue
            g = self.store.group(it.grp_id)
            if g is not None and g.subscribed:
                out.append(self._cls[NxsGrpItem](transaction_number=0, pos=0,
                                                 grp_id=it.grp_id, grp=g.grp,
                                                 meta=g.meta_bytes))
        self._start(peer, _Kind.GRPS, out, self.store.grp_server_ts(), now)

    def _serve_messages(self, peer: SslId, txn: _Incoming, now: float) -> None:
        out: list[NxsItem] = []
        for it in txn.items:
            if not isinstance(it, NxsSyncMsgItem) or not self.store.subscribed(it.grp_id) \
                    or not self._allowed(peer, it.grp_id):
                continue
            m = self.store.message(it.msg_id)
            if m is not None and m.meta.group_id == it.grp_id:
                out.append(self._cls[NxsMsgItem](transaction_number=0, pos=0,
                                                 msg_id=it.msg_id, grp_id=it.grp_id,
                                                 msg=m.msg, meta=m.meta_bytes))
        update = self.store.msg_server_ts(out[0].grp_id) if out else 0  # type: ignore
        self._start(peer, _Kind.MSGS, out, update, now)

    # --- receiving data --------------------------------------------------------------------

    def _receive_group(self, peer: SslId, item: NxsGrpItem, now: float) -> None:
        if not self._allowed(peer, item.grp_id):
            self._reject(peer, f"group {item.grp_id}: not the group of this distant peer")
            return
        try:
            meta = decode_grp_meta(item.meta)
            have = self.store.group_meta(item.grp_id)
            if have is not None:
                if have.publish_ts >= meta.publish_ts:
                    return
                old_admin = next((k for k in have.keys.public_keys()
                                  if k.key_id == item.grp_id), None)
                new_admin = next((k for k in meta.keys.public_keys()
                                  if k.key_id == item.grp_id), None)
                if old_admin is None or new_admin is None or \
                        old_admin.key_data != new_admin.key_data:
                    raise SignatureError("group update changes the admin key")
            check_group(item.grp, meta, item.grp_id, self.policy, self.author_lookup)
            self.store.put_group(item.grp, item.meta, int(now),
                                 subscribed=True if self.auto_subscribe else None)
        except UnknownAuthorError as e:
            # Transient: ask for the author, and make the peer list its groups again.
            self._emit(AuthorWanted(e.author, peer))
            self.store.set_peer_grp_ts(peer, 0)
            self._reject(peer, f"group {item.grp_id}: {e}")
            return
        except (DecodeError, SignatureError, StoreFullError) as e:
            self._reject(peer, f"group {item.grp_id}: {e}")
            return
        self._emit(GroupStored(self.service, item.grp_id, peer))

    def _receive_message(self, peer: SslId, item: NxsMsgItem, now: float) -> None:
        if self.store.has_message(item.msg_id):
            return
        try:
            meta = decode_msg_meta(item.meta)
            group = self.store.group_meta(item.grp_id)
            if not self._allowed(peer, item.grp_id):
                raise SignatureError("message of another group than the distant peer's")
            if group is None or not self.store.subscribed(item.grp_id):
                raise SignatureError(f"message of a group we do not follow ({item.grp_id})")
            if meta.author_id != GxsId.null() and self.is_banned(meta.author_id):
                raise SignatureError(f"author {meta.author_id} is banned")
            check_message(item.msg, meta, item.msg_id, group, self.policy,
                          self.author_lookup)
            self.store.put_message(item.msg, item.meta, int(now))
        except UnknownAuthorError as e:
            # Transient: ask for the author, and make the friend list the group again.
            self._emit(AuthorWanted(e.author, peer))
            self.store.set_peer_msg_ts(peer, item.grp_id, 0)
            self._reject(peer, f"message {item.msg_id}: {e}")
            return
        except (DecodeError, SignatureError, StoreFullError) as e:
            self._rejected[item.msg_id] = now + REJECTED_RETRY_DELAY
            while len(self._rejected) > MAX_REJECTED:
                self._rejected.popitem(last=False)
            self._reject(peer, f"message {item.msg_id}: {e}")
            return
        self._emit(MessageStored(self.service, item.grp_id, item.msg_id, peer))

    # --- outputs ---------------------------------------------------------------------------

    def _pull_request(self) -> None:
        for peer in self.peers:
            self._send(peer, self._cls[NxsPullRequestItem]())

    def _send(self, peer: SslId, item: NxsItem) -> None:
        self._emit(SendItem(peer, item))

    def _reject(self, peer: SslId, reason: str) -> None:
        self.rejected += 1
        self._emit(Rejected(self.service, peer, reason))

    def _emit(self, output: Any) -> None:
        if len(self._out) < MAX_OUTPUTS:
            self._out.append(output)
