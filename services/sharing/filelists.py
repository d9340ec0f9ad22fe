# -*- test-case-name: tests.test_filelists -*-
"""File lists (service 0x0019): friends sync each other's shared trees, one directory a time.

Client side, per connected friend: ask for the root at once and again every
``resync_period`` (120 s, RetroShare's ``DELAY_BETWEEN_REMOTE_DIRECTORY_SYNC_REQ``), each
request carrying the recursive modification time we hold; a directory whose content arrives
makes its subdirectories stale, and stale directories are asked for on the next sweep
(immediately after a response, and every ``sweep_period`` seconds).  Unchanged directories
cost one "up to date" answer each.  Responses are accepted only for requests we have pending
with that friend, their content only if its SHA-1 matches the checksum.

Server side: a request for a directory we share and the friend may see is answered with its
content when the friend's time differs from ours, else with ENTRY_UP_TO_DATE; a directory we
do not have, or hide from that friend, is answered ENTRY_WAS_REMOVED.  Content over 20000
bytes is sent in parts (SYNC_PARTIAL, the last one also SYNC_PARTIAL_END), all with the same
request id and the checksum of the whole.

Request ids are a keyed hash of (friend, directory hash), as RetroShare makes them, so a
repeated request for the same directory reuses its id.  A request with no answer at all after
``retry_after`` seconds (2 s) is sent again with the same id, at most `MAX_RETRIES` times:
one item lost (RetroShare drops the items of services it has not enabled yet) costs seconds,
not the 600 s of ``request_timeout``.  The sweep runs every ``min(sweep_period,
retry_after / 2)`` seconds for that.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import secrets
from collections.abc import Callable
from typing import Any, Final

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.filelists import (
    FileListsBannedHashesItem,
    FileListsFlags,
    FileListsSyncRequestItem,
    FileListsSyncResponseItem,
)
from pqi.items.ids import SERVICE_FILE_DATABASE
from pqi.wire.errors import DecodeError
from pqi.wire.fields import Sha1Hash, SslId
from services.base import Service
from services.spec import ServiceSpec

from .dirlist import MAX_DIR_CONTENT_SIZE, decode_dir, encode_dir
from .index import SharedIndex
from .remote import MAX_REMOTE_ENTRIES, RemoteTree, TreeFullError

__all__ = ["FileListsService", "SPEC", "split_response", "MAX_RESPONSE_PART", "RESYNC_PERIOD",
           "SWEEP_PERIOD", "REQUEST_TIMEOUT", "RETRY_AFTER", "MAX_RETRIES", "MAX_IN_FLIGHT",
           "EMPTY_CHECKSUM"]

#: Largest content in one sync response (``MAX_DIR_SYNC_RESPONSE_DATA_SIZE``).
MAX_RESPONSE_PART: Final = 20000
#: Seconds between two requests for a friend's root: RetroShare's
#: ``DELAY_BETWEEN_REMOTE_DIRECTORY_SYNC_REQ``.  An unchanged list costs one small request and
#: an "up to date" answer; a friend's new share shows within this delay, not minutes.
RESYNC_PERIOD: Final = 10.0
#: Seconds between sweeps for stale directories and expired requests.
SWEEP_PERIOD: Final = 10.0
#: A request unanswered this long is forgotten (and asked again).
REQUEST_TIMEOUT: Final = 600.0
#: Seconds without any answer before a request is sent again.
RETRY_AFTER: Final = 2.0
#: Times one request is sent again before it waits for ``request_timeout``.
MAX_RETRIES: Final = 3
#: Most sync requests we keep outstanding with one friend (the rest wait their turn).
MAX_IN_FLIGHT: Final = 64
#: Checksum of an empty content (what up-to-date and removed answers carry).
EMPTY_CHECKSUM: Final = Sha1Hash(hashlib.sha1(b"").digest())

_F = FileListsFlags


@dataclasses.dataclass
class _Pending:
    peer: SslId
    entry_hash: Sha1Hash
    sent: float
    checksum: Sha1Hash | None = None
    parts: bytearray = dataclasses.field(default_factory=bytearray)
    known_ts: int = 0
    retries: int = 0


#: The file-lists service as RetroShare announces it; on a node it is part of file sharing
#: (`services.sharing.manager.SPEC` extends this).
SPEC: Final = ServiceSpec(
    SERVICE_FILE_DATABASE, "file_database",
    items=(FileListsSyncRequestItem, FileListsSyncResponseItem, FileListsBannedHashesItem))


class FileListsService(Service):
    """Serves our index to friends and keeps a `RemoteTree` of each friend's.

    ``on_tree_changed(ssl_id)`` is called when a friend's tree changed.  Counters:
    ``served`` (requests answered), ``dropped`` (responses refused: unsolicited, bad checksum,
    undecodable content, over the limits).
    """

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, index: SharedIndex | None,
                 *, resync_period: float = RESYNC_PERIOD, sweep_period: float = SWEEP_PERIOD,
                 request_timeout: float = REQUEST_TIMEOUT, retry_after: float = RETRY_AFTER,
                 max_entries: int = MAX_REMOTE_ENTRIES, max_in_flight: int = MAX_IN_FLIGHT,
                 on_tree_changed: Callable[[SslId], None] | None = None) -> None:
        super().__init__(sender, reactor)
        self.index = index
        self.resync_period = resync_period
        self.sweep_period = sweep_period
        self.request_timeout = request_timeout
        self.retry_after = retry_after
        self.max_entries = max_entries
        self.max_in_flight = max_in_flight
        self._in_flight: collections.Counter[SslId] = collections.Counter()
        self._partial_bytes: collections.Counter[SslId] = collections.Counter()
        self.on_tree_changed = on_tree_changed
        self.trees: dict[SslId, RemoteTree] = {}
        #: The node's banned files (`services.banlist.files.BannedFiles`): sent to friends as
        #: H(H) in 0x04 items, and fed with theirs; None: an empty list is sent.
        self.banned_files: Any = None
        self._pending: dict[int, _Pending] = {}
        self._bias = secrets.randbits(64)
        self._session = secrets.randbits(32)
        self._loop: task.LoopingCall | None = None
        self.served = 0
        self.dropped = 0

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = task.LoopingCall(self.sweep)
        self._loop.clock = self.reactor
        self._loop.start(min(self.sweep_period, self.retry_after / 2), now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        tree = self.trees.setdefault(peer.ssl_id, RemoteTree(peer.ssl_id, self.max_entries))
        self._send_banned(peer.ssl_id)
        self._request(peer.ssl_id, tree.root.hash, tree.root.recurs_modif_ts)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        for rid in [r for r, p in self._pending.items() if p.peer == peer.ssl_id]:
            self._forget(rid)

    # --- client side ----------------------------------------------------------------------------

    def request_id(self, peer: SslId, entry_hash: bytes) -> int:
        digest = hashlib.sha1(bytes(peer) + bytes(entry_hash)).digest()
        return int.from_bytes(digest[:8], "little") ^ self._bias

    def _request(self, peer: SslId, entry_hash: Sha1Hash, known_ts: int) -> bool:
        rid = self.request_id(peer, entry_hash)
        if rid in self._pending or self._in_flight[peer] >= self.max_in_flight:
            return False
        if not self._send_request(peer, entry_hash, known_ts, rid):
            return False
        self._pending[rid] = _Pending(peer, entry_hash, self.reactor.seconds(),
                                      known_ts=known_ts)
        self._in_flight[peer] += 1
        return True

    def _send_request(self, peer: SslId, entry_hash: Sha1Hash, known_ts: int,
                      rid: int) -> bool:
        return self.send(peer, FileListsSyncRequestItem(
            entry_hash=entry_hash, flags=_F.SYNC_REQUEST,
            last_known_recurs_modf_ts=known_ts & 0xFFFFFFFF, request_id=rid))

    def _forget(self, rid: int) -> None:
        p = self._pending.pop(rid)
        self._in_flight[p.peer] -= 1
        self._partial_bytes[p.peer] -= len(p.parts)
        if self._in_flight[p.peer] <= 0:
            del self._in_flight[p.peer]
            self._partial_bytes.pop(p.peer, None)

    def _ask_stale(self, ssl_id: SslId) -> None:
        tree = self.trees.get(ssl_id)
        if tree is None:
            return
        for d in tree.stale():
            if self._in_flight[ssl_id] >= self.max_in_flight:
                return
            if d is not tree.root:
                self._request(ssl_id, d.hash, d.recurs_modif_ts)

    def refresh(self, ssl_id: SslId) -> bool:
        """Ask friend ``ssl_id`` for its root now (rather than at the next re-sync)."""
        tree = self.trees.get(ssl_id)
        if tree is None or ssl_id not in self.peers:
            return False
        return self._request(ssl_id, tree.root.hash, tree.root.recurs_modif_ts)

    def sweep(self) -> None:
        """Forget expired requests, send again unanswered ones, ask for stale directories and
        for roots due a re-sync."""
        now = self.reactor.seconds()
        for rid in [r for r, p in self._pending.items()
                    if now - p.sent >= self.request_timeout]:
            self._forget(rid)
        for rid, p in list(self._pending.items()):
            if (p.retries < MAX_RETRIES and p.checksum is None
                    and now - p.sent >= self.retry_after):
                p.retries += 1
                p.sent = now
                self._send_request(p.peer, p.entry_hash, p.known_ts, rid)
        for ssl_id in list(self.peers):
            tree = self.trees.get(ssl_id)
            if tree is None:
                continue
            root = tree.root
            if root.update_time == 0.0 or now - root.update_time >= self.resync_period:
                self._request(ssl_id, root.hash, root.recurs_modif_ts)
            self._ask_stale(ssl_id)

    def _response(self, peer: PeerIdentity, item: FileListsSyncResponseItem) -> None:
        pending = self._pending.get(item.request_id)
        if pending is None or pending.peer != peer.ssl_id or pending.entry_hash != item.entry_hash:
            self._drop("unsolicited response", peer)
            return
        flags = item.flags
        content = item.content
        if flags & _F.SYNC_PARTIAL:
            if pending.checksum is None:
                if flags & _F.SYNC_PARTIAL_END:
                    self._drop("partial response ends before it began", peer)
                    return
                pending.checksum = item.checksum
            elif pending.checksum != item.checksum:
                self._drop("partial responses with different checksums", peer)
                self._forget(item.request_id)
                return
            if self._partial_bytes[peer.ssl_id] + len(content) > MAX_DIR_CONTENT_SIZE:
                self._drop("partial responses over MAX_DIR_CONTENT_SIZE", peer)
                self._forget(item.request_id)
                return
            pending.parts += content
            self._partial_bytes[peer.ssl_id] += len(content)
            if not flags & _F.SYNC_PARTIAL_END:
                return
            content = bytes(pending.parts)
        self._forget(item.request_id)
        if hashlib.sha1(content).digest() != item.checksum:
            self._drop("checksum mismatch", peer)
            return
        tree = self.trees.get(peer.ssl_id)
        if tree is None or item.entry_hash not in tree.dirs:
            self._drop("response for a directory we do not hold", peer)
            return
        now = self.reactor.seconds()
        if flags & _F.ENTRY_WAS_REMOVED:
            tree.removed(item.entry_hash, now)
            self._ask_stale(peer.ssl_id)
        elif flags & _F.ENTRY_UP_TO_DATE:
            tree.up_to_date(item.entry_hash, now)
            self._ask_stale(peer.ssl_id)
            return
        elif flags & _F.SYNC_DIR_CONTENT:
            try:
                tree.apply(item.entry_hash, decode_dir(content), now)
            except (DecodeError, TreeFullError) as e:
                self._drop(f"directory content refused: {e}", peer)
                return
            self._ask_stale(peer.ssl_id)
        else:
            self._drop("response with no content flag", peer)
            return
        if self.on_tree_changed is not None:
            self.on_tree_changed(peer.ssl_id)

    def _drop(self, why: str, peer: PeerIdentity) -> None:
        self.dropped += 1
        self.log.warn("file list from {peer}: {why}", peer=peer.ssl_id.to_hex(), why=why)

    # --- server side ------------------------------------------------------------------------------

    def _serve(self, peer: PeerIdentity, item: FileListsSyncRequestItem) -> None:
        self.served += 1
        content = None if self.index is None else self.index.content_for(item.entry_hash,
                                                                          peer.ssl_id)
        base = dict(entry_hash=item.entry_hash, request_id=item.request_id)
        if content is None:
            self.send(peer.ssl_id, FileListsSyncResponseItem(
                checksum=EMPTY_CHECKSUM, flags=_F.SYNC_RESPONSE | _F.ENTRY_WAS_REMOVED,
                last_known_recurs_modf_ts=0, content=b"", **base))
            return
        if self.banned_files is not None and self.banned_files.changed_at > \
                content.recurs_modif_ts:
            # What friends may see changed with our banned files: every directory counts as
            # modified then, so friends fetch the filtered content again.
            content = dataclasses.replace(
                content, recurs_modif_ts=min(0xFFFFFFFF, int(self.banned_files.changed_at)))
        ts = content.recurs_modif_ts
        if item.last_known_recurs_modf_ts == ts:
            self.send(peer.ssl_id, FileListsSyncResponseItem(
                checksum=EMPTY_CHECKSUM, flags=_F.SYNC_RESPONSE | _F.ENTRY_UP_TO_DATE,
                last_known_recurs_modf_ts=ts, content=b"", **base))
            return
        for response in split_response(item.entry_hash, item.request_id, ts,
                                       encode_dir(content)):
            self.send(peer.ssl_id, response)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, FileListsSyncRequestItem):
            self._serve(peer, item)
        elif isinstance(item, FileListsSyncResponseItem):
            self._response(peer, item)
        elif isinstance(item, FileListsBannedHashesItem):
            if self.banned_files is not None:
                self.banned_files.received(peer.ssl_id, item)

    def _send_banned(self, ssl_id: SslId) -> None:
        if self.banned_files is None:
            self.send(ssl_id, FileListsBannedHashesItem(session_id=self._session,
                                                        encrypted_hashes=frozenset()))
            return
        for item in self.banned_files.items_for(ssl_id, self.reactor.seconds()):
            self.send(ssl_id, item)

    def send_banned_files(self) -> None:
        """Our banned-files list changed: send it again to every friend online."""
        for ssl_id in list(self.peers):
            self._send_banned(ssl_id)


def split_response(entry_hash: Sha1Hash, request_id: int, ts: int,
                   data: bytes) -> list[FileListsSyncResponseItem]:
    """The response item(s) carrying ``data``, in parts of at most `MAX_RESPONSE_PART`."""
    checksum = Sha1Hash(hashlib.sha1(data).digest())
    flags = _F.SYNC_RESPONSE | _F.SYNC_DIR_CONTENT
    parts = [data[i:i + MAX_RESPONSE_PART] for i in range(0, len(data), MAX_RESPONSE_PART)]
    if len(parts) <= 1:
        parts, partial = [data], False
    else:
        partial = True
    out = []
    for i, part in enumerate(parts):
        f = flags
        if partial:
            f |= _F.SYNC_PARTIAL
            if i == len(parts) - 1:
                f |= _F.SYNC_PARTIAL_END
        out.append(FileListsSyncResponseItem(
            entry_hash=entry_hash, checksum=checksum, flags=f, last_known_recurs_modf_ts=ts,
            request_id=request_id, content=part))
    return out
