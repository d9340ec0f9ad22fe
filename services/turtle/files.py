# -*- test-case-name: tests.test_turtle_files -*-
"""Anonymous file transfer over turtle tunnels: the file client of the router (ftServer's
turtle side), plugged into the existing multi-source transfer service.

Tunnels are dug for H(H), the SHA-1 of the file's SHA-1, so relays never learn which file
moves; both ends know the real hash, and every file item crosses the tunnel encrypted with
the key derived from it (`crypto`).  To the transfer service a tunnel end is just another
peer, its *virtual peer id*: `FileTunnels` translates the ft items the service sends to a
virtual peer into encrypted turtle file items, and the turtle file items that arrive into
the ft items the service already handles, so one download mixes friends and tunnels.

- serving end: a tunnel request is answered for H(H) of a file in an anonymously shared
  folder (`anonymous_files`); the file is served to that tunnel's virtual peer only
  (`lookup_for`, an index of the upload server);
- downloading end: `want` starts digging for H(H); each tunnel found joins the download as a
  source (``peer_connected`` of the transfer service).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Final

from twisted.logger import Logger
from zope.interface import implementer

from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.items.ft import (
    FtChunkCrcItem,
    FtChunkCrcRequestItem,
    FtChunkMapItem,
    FtChunkMapRequestItem,
    FtDataItem,
    FtDataRequestItem,
)
from pqi.items.ids import SERVICE_FILE_TRANSFER
from pqi.items.turtle import (
    TurtleChunkCrcItem,
    TurtleChunkCrcRequestItem,
    TurtleDirection,
    TurtleFileDataItem,
    TurtleFileMapItem,
    TurtleFileMapRequestItem,
    TurtleFileRequestItem,
    TurtleGenericDataItem,
)
from pqi.wire.errors import DecodeError
from pqi.wire.fields import PgpId, Sha1Hash, SslId
from pqi.wire.item import decode, encode
from pqi.wire.tlvvalues import FileData, FileItem

from . import crypto
from .interfaces import ITurtleClientService

__all__ = ["FileTunnels", "TunnelPeer", "MAX_WANTED", "TUNNEL_PEER_NAME"]

#: Files we dig tunnels for at most (each is a monitored hash of the router).
MAX_WANTED: Final = 256
#: The location name a virtual peer shows in the transfer service.
TUNNEL_PEER_NAME: Final = "tunnel"


@dataclasses.dataclass(frozen=True)
class TunnelPeer:
    """One tunnel end: the file it is for, and whether we dug it (CLIENT end is the
    downloader's side: it receives with direction CLIENT)."""

    file_hash: Sha1Hash
    tunnel_hash: Sha1Hash
    size: int
    serving: bool


@implementer(ITurtleClientService)
class FileTunnels:
    """The file client of the turtle router.

    ``transfers``: the `FileTransferService`; ``anonymous_files()``: (hash, path, size) of
    every file shared anonymously; ``send_tunnel_item(virtual_peer, item)``: hands a turtle
    item to the router for that tunnel (False: the tunnel is gone); ``direct_sources(hash)``:
    the friends whose file lists show that file (the only friends an anonymous download is
    asked of: the others must not learn its hash); ``version()``: changes whenever the
    anonymously shared files may have (H(H) of each is recomputed then).
    """

    service_id = SERVICE_FILE_TRANSFER
    log = Logger()

    def __init__(self, transfers: Any,
                 anonymous_files: Callable[[], Iterable[tuple[Sha1Hash, str, int]]],
                 send_tunnel_item: Callable[[SslId, Any], bool],
                 direct_sources: Callable[[Sha1Hash], Iterable[SslId]] = lambda h: (),
                 version: Callable[[], object] = lambda: None) -> None:
        self.transfers = transfers
        self._version = version
        self._served_version: object = None
        self.listed_by = direct_sources
        self._anonymous_files = anonymous_files
        #: Other files served through tunnels (`serve_also`): (files(), version()) pairs.
        self._also: list[tuple[Callable[[], Iterable[tuple[Sha1Hash, str, int]]],
                               Callable[[], object]]] = []
        self._send_tunnel_item = send_tunnel_item
        #: H(H) -> (real hash, path, size) of what we serve; rebuilt by `refresh`.
        self._served: dict[Sha1Hash, tuple[Sha1Hash, str, int]] | None = None
        #: H(H) -> (real hash, size) of the files we dig tunnels for.
        self.wanted: dict[Sha1Hash, tuple[Sha1Hash, int]] = {}
        #: Our tunnel ends (bounded by the router's tunnel table).
        self.peers: dict[SslId, TunnelPeer] = {}
        #: Tunnel items refused, by reason.
        self.refused: dict[str, int] = {}

    # --- what we serve ---------------------------------------------------------------------

    def refresh(self) -> None:
        """The shares changed: recompute H(H) of the anonymously shared files on next use."""
        self._served = None

    def serve_also(self, files: Callable[[], Iterable[tuple[Sha1Hash, str, int]]],
                   version: Callable[[], object]) -> None:
        """Serve ``files()`` (hash, path, size) through tunnels too (a channel's attachments
        go to its subscribers this way); ``version()`` changes whenever they may have."""
        self._also.append((files, version))

    def _served_files(self) -> dict[Sha1Hash, tuple[Sha1Hash, str, int]]:
        version = (self._version(), tuple(v() for _, v in self._also))
        if self._served is None or version != self._served_version:
            self._served_version = version
            everything = list(self._anonymous_files())
            for files, _ in self._also:
                everything.extend(files())
            self._served = {crypto.hash_of_hash(h): (h, path, size)
                            for h, path, size in everything}
        return self._served

    def lookup(self, file_hash: bytes) -> tuple[str, int] | None:
        """Nothing to anyone by hash alone (the upload server asks `lookup_for`)."""
        return None

    def lookup_for(self, file_hash: bytes, peer: SslId) -> tuple[str, int] | None:
        """(path, size) of ``file_hash`` for the virtual peer of a tunnel we serve it on."""
        tp = self.peers.get(peer)
        if tp is None or not tp.serving or tp.file_hash != file_hash:
            return None
        found = self._served_files().get(tp.tunnel_hash)
        return None if found is None else (found[1], found[2])

    # --- what we fetch ---------------------------------------------------------------------

    def want(self, file_hash: Sha1Hash, size: int) -> Sha1Hash:
        """Look for tunnels to ``file_hash``; returns H(H), the hash to dig for."""
        hh = crypto.hash_of_hash(file_hash)
        if hh not in self.wanted and len(self.wanted) >= MAX_WANTED:
            raise OverflowError(f"already {MAX_WANTED} files looked for through tunnels")
        self.wanted[hh] = (file_hash, size)
        return hh

    def unwant(self, file_hash: Sha1Hash) -> Sha1Hash:
        """Stop looking for ``file_hash``; returns H(H)."""
        hh = crypto.hash_of_hash(file_hash)
        self.wanted.pop(hh, None)
        return hh

    def may_ask(self, peer: SslId, item: Any) -> bool:
        """Whether the transfer service may send ``item`` to the friend ``peer``: requests
        for an anonymous download go only to friends known to have the file."""
        file_hash = _requested_hash(item)
        return file_hash is None or self.friend_serves(peer, file_hash)

    def friend_serves(self, peer: SslId, file_hash: Sha1Hash) -> bool:
        """Whether friend ``peer`` is a source of ``file_hash`` we may ask: any friend for a
        download by hash, only listing friends for an anonymous one."""
        if crypto.hash_of_hash(file_hash) not in self.wanted:
            return True
        return peer in set(self.listed_by(file_hash))

    def is_tunnel(self, peer: SslId) -> bool:
        """Whether ``peer`` is the virtual peer of one of our tunnels."""
        return peer in self.peers

    # --- ITurtleClientService ---------------------------------------------------------------

    def handle_tunnel_request(self, file_hash: Sha1Hash, peer_id: SslId) -> bool:
        return file_hash in self._served_files()

    def receive_search_request(self, data: bytes, max_hits: int) -> bytes | None:
        return None  # file searches use the dedicated items, not generic ones

    def receive_search_result(self, request_id: int, data: bytes) -> None:
        pass

    def add_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId,
                         direction: TurtleDirection) -> None:
        if direction is TurtleDirection.CLIENT:  # we answered the tunnel: we serve
            found = self._served_files().get(file_hash)
            if found is None:
                return
            self.peers[virtual_peer] = TunnelPeer(found[0], file_hash, found[2], True)
            return
        wanted = self.wanted.get(file_hash)
        if wanted is None:
            return
        self.peers[virtual_peer] = TunnelPeer(wanted[0], file_hash, wanted[1], False)
        self.transfers.peer_connected(self._identity(virtual_peer))

    def remove_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId) -> None:
        tp = self.peers.pop(virtual_peer, None)
        if tp is not None and not tp.serving:
            self.transfers.peer_disconnected(self._identity(virtual_peer),
                                             DisconnectReason.CLOSED)

    def receive_turtle_data(self, item: Any, file_hash: Sha1Hash, virtual_peer: SslId,
                            direction: TurtleDirection) -> None:
        tp = self.peers.get(virtual_peer)
        if tp is None:
            self._refuse("no such tunnel end")
            return
        if not isinstance(item, TurtleGenericDataItem):
            self._refuse("clear file item in an encrypted tunnel")
            return
        try:
            inner = decode(crypto.decrypt(crypto.file_key(tp.file_hash), item.data))
        except DecodeError:
            self._refuse("undecryptable or malformed item")
            return
        ft = self._to_ft(tp, inner)
        if ft is None:
            self._refuse("item not for this end of the tunnel")
            return
        self.transfers.receive(self._identity(virtual_peer), ft)

    # --- the sender the transfer service uses for virtual peers -----------------------------

    def send(self, peer: SslId, item: Any) -> bool:
        """Send a transfer-service item to a virtual peer, encrypted in its tunnel."""
        tp = self.peers.get(peer)
        if tp is None:
            return False
        inner = self._to_turtle(tp, item)
        if inner is None:
            return False
        data = crypto.encrypt(crypto.file_key(tp.file_hash), encode(inner))
        return self._send_tunnel_item(peer, TurtleGenericDataItem(tunnel_id=0, data=data))

    # --- translation ------------------------------------------------------------------------

    def _to_turtle(self, tp: TunnelPeer, item: Any) -> Any:
        if getattr(item, "hash", None) not in (None, tp.file_hash):
            return None
        if isinstance(item, FtDataItem):
            if not tp.serving or item.data.file.hash != tp.file_hash:
                return None
            return TurtleFileDataItem(tunnel_id=0, chunk_offset=item.data.offset,
                                      chunk_data=item.data.data)
        if isinstance(item, FtDataRequestItem):
            if tp.serving or item.file.hash != tp.file_hash:
                return None
            return TurtleFileRequestItem(tunnel_id=0, chunk_offset=item.offset,
                                         chunk_size=item.chunk_size)
        if isinstance(item, FtChunkMapRequestItem):
            return TurtleFileMapRequestItem(tunnel_id=0, direction=0)
        if isinstance(item, FtChunkMapItem):
            return TurtleFileMapItem(tunnel_id=0, direction=0, chunk_map=item.chunk_map)
        if isinstance(item, FtChunkCrcRequestItem):
            return TurtleChunkCrcRequestItem(tunnel_id=0, chunk_number=item.chunk_number)
        if isinstance(item, FtChunkCrcItem):
            return TurtleChunkCrcItem(tunnel_id=0, chunk_number=item.chunk_number,
                                      check_sum=item.check_sum)
        return None

    def _to_ft(self, tp: TunnelPeer, item: Any) -> Any:
        h, file = tp.file_hash, FileItem(tp.size, tp.file_hash)
        if tp.serving:
            if isinstance(item, TurtleFileRequestItem):
                return FtDataRequestItem(offset=item.chunk_offset, chunk_size=item.chunk_size,
                                         file=file)
            if isinstance(item, TurtleFileMapRequestItem):
                return FtChunkMapRequestItem(is_client=False, hash=h)
            if isinstance(item, TurtleChunkCrcRequestItem):
                return FtChunkCrcRequestItem(hash=h, chunk_number=item.chunk_number)
            return None
        if isinstance(item, TurtleFileDataItem):
            return FtDataItem(data=FileData(file, item.chunk_offset, item.chunk_data))
        if isinstance(item, TurtleFileMapItem):
            return FtChunkMapItem(is_client=True, hash=h, chunk_map=item.chunk_map)
        if isinstance(item, TurtleChunkCrcItem):
            return FtChunkCrcItem(hash=h, chunk_number=item.chunk_number,
                                  check_sum=item.check_sum)
        if isinstance(item, TurtleFileMapRequestItem):
            return FtChunkMapRequestItem(is_client=True, hash=h)
        return None

    @staticmethod
    def _identity(virtual_peer: SslId) -> PeerIdentity:
        return PeerIdentity(virtual_peer, PgpId.null(), TUNNEL_PEER_NAME)

    def _refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


def _requested_hash(item: Any) -> Sha1Hash | None:
    """The file a downloader's request names (None for anything else)."""
    if isinstance(item, FtDataRequestItem):
        return item.file.hash
    if isinstance(item, FtChunkMapRequestItem) and not item.is_client:
        return item.hash
    if isinstance(item, FtChunkCrcRequestItem):
        return item.hash
    return None
