"""The upload side as a producer: data requests are answered while the peer's link has room,
and a full link is waited for, not polled, when the glue hears when it has room again (on a
node, the link's ``on_room``); without that signal the server still polls every
`ROOM_POLL` seconds."""

from __future__ import annotations

import random

from twisted.internet.task import Clock

from pqi.interfaces import PeerIdentity
from pqi.items.ft import FtDataItem, FtDataRequestItem
from pqi.wire.fields import PgpId, Sha1Hash, SslId
from pqi.wire.tlvvalues import FileItem
from services.transfer.server import MAX_FT_CHUNK, RECHECK_BYTES, ROOM_POLL, UploadServer
from services.transfer.service import FileTransferService
from tests.service_fakes import RecordingSender

PEER = PeerIdentity(SslId(b"\x03" * 16), PgpId(b"\x03" * 8))
SIZE = 8 * MAX_FT_CHUNK


class Index:
    """One shared file."""

    def __init__(self, path: str, file_hash: Sha1Hash) -> None:
        self.path, self.file_hash = path, file_hash

    def lookup(self, file_hash: Sha1Hash) -> tuple[str, int] | None:
        return (self.path, SIZE) if file_hash == self.file_hash else None


def shared(tmp_path) -> tuple[str, Sha1Hash]:
    path = tmp_path / "shared.bin"
    path.write_bytes(random.Random(5).randbytes(SIZE))
    return str(path), Sha1Hash(b"\x42" * 20)


def test_full_link_polls_without_a_room_signal_and_waits_with_one(tmp_path) -> None:
    """A request whose peer's link is full: the server asks to be pumped again after
    `ROOM_POLL` s by default, and asks for no timer at all with ``poll=None``."""
    path, h = shared(tmp_path)
    server = UploadServer()
    server.indexes.append(Index(path, h))
    assert server.request(PEER.ssl_id, h, SIZE, 0, MAX_FT_CHUNK)
    items, wait = server.pump(0.0, lambda peer: 0)
    assert items == [] and wait == ROOM_POLL
    items, wait = server.pump(0.0, lambda peer: 0, poll=None)
    assert items == [] and wait is None
    assert server.waiting_with_room(lambda peer: 1) and not server.waiting_with_room(
        lambda peer: 0)
    items, wait = server.pump(0.0, lambda peer: 1, poll=None)
    assert [len(item.data.data) for _, item in items] == [MAX_FT_CHUNK] and wait is None
    assert not server.waiting_with_room(lambda peer: 1)  # nothing left to send


class CountingIndex(Index):
    """`Index` that counts its lookups."""

    lookups = 0

    def lookup(self, file_hash: Sha1Hash) -> tuple[str, int] | None:
        self.lookups += 1
        return super().lookup(file_hash)


def test_items_of_one_request_share_a_lookup_and_a_ban_stops_them(tmp_path) -> None:
    """A request's items share one lookup of the file (the index, the ban list, a ``stat``)
    for every `RECHECK_BYTES` served; a file banned in the middle of a request is no longer
    served once that much has gone, and the bytes before are the file's."""
    path, h = shared(tmp_path)
    data = open(path, "rb").read()
    server = UploadServer()
    index = CountingIndex(path, h)
    server.indexes.append(index)
    banned: set[bytes] = set()
    server.file_filter = lambda file_hash: file_hash in banned
    assert server.request(PEER.ssl_id, h, SIZE, 0, SIZE)
    assert index.lookups == 1  # the request's own check
    items, _ = server.pump(0.0, lambda peer: MAX_FT_CHUNK)  # one item
    assert index.lookups == 2
    banned.add(h)
    sent = [item for _, item in items]
    for _ in range(SIZE // MAX_FT_CHUNK):
        more, _ = server.pump(0.0, lambda peer: MAX_FT_CHUNK)
        sent += [item for _, item in more]
    served = sum(len(item.data.data) for item in sent)
    assert RECHECK_BYTES <= served < RECHECK_BYTES + MAX_FT_CHUNK < SIZE
    assert index.lookups == 2  # banned: refused before the index is asked
    assert b"".join(bytes(item.data.data) for item in sent) == data[:served]
    assert server.refused["read failed"] == 1


def service(tmp_path, room: dict[SslId, int]) -> tuple[FileTransferService, Clock, Sha1Hash,
                                                        list]:
    path, h = shared(tmp_path)
    watchers: list = []
    clock = Clock()
    svc = FileTransferService(RecordingSender(), clock, partials_dir=tmp_path / "p",
                              incoming_dir=tmp_path / "in", hash_in_thread=False,
                              room=lambda peer: room.get(peer, 0),
                              watch_room=watchers.append, sync_in_thread=False)
    svc.add_index(Index(path, h))
    svc.start()
    svc.peer_connected(PEER)
    return svc, clock, h, watchers


def data_sent(svc: FileTransferService) -> list[int]:
    return [item.data.offset for _, item in svc.sender.sent if isinstance(item, FtDataItem)]


def test_service_waits_for_the_room_signal_instead_of_polling(tmp_path) -> None:
    """With ``watch_room`` the service registers one callback; while the link is full no timer
    is armed (the clock has no call), and the callback sends what waits."""
    room = {PEER.ssl_id: 0}
    svc, clock, h, watchers = service(tmp_path, room)
    assert len(watchers) == 1
    svc.receive(PEER, FtDataRequestItem(offset=0, chunk_size=2 * MAX_FT_CHUNK,
                                        file=FileItem(SIZE, h)))
    assert data_sent(svc) == [] and clock.getDelayedCalls() == []
    clock.advance(1.0)
    assert data_sent(svc) == []
    room[PEER.ssl_id] = MAX_FT_CHUNK  # the link drained: one item's room
    watchers[0](PEER.ssl_id)
    assert data_sent(svc) == [0]
    # The room function says the link still has room after the send (its transport took
    # the item): the service pumps again on the next turn, without another signal.
    clock.advance(0)
    assert data_sent(svc) == [0, MAX_FT_CHUNK]
    assert clock.getDelayedCalls() == []
    svc.stop()


def test_service_without_a_room_signal_polls_a_full_link(tmp_path) -> None:
    """Without ``watch_room`` (a service outside a node) a full link is looked at again every
    `ROOM_POLL` s, so the upload still goes once the link has room."""
    path, h = shared(tmp_path)
    room = {PEER.ssl_id: 0}
    clock = Clock()
    svc = FileTransferService(RecordingSender(), clock, partials_dir=tmp_path / "p",
                              incoming_dir=tmp_path / "in", hash_in_thread=False,
                              room=lambda peer: room[peer], sync_in_thread=False)
    svc.add_index(Index(path, h))
    svc.start()
    svc.peer_connected(PEER)
    svc.receive(PEER, FtDataRequestItem(offset=0, chunk_size=MAX_FT_CHUNK,
                                        file=FileItem(SIZE, h)))
    assert data_sent(svc) == []
    assert [c.getTime() for c in clock.getDelayedCalls()] == [ROOM_POLL]
    room[PEER.ssl_id] = MAX_FT_CHUNK
    clock.advance(ROOM_POLL)
    assert data_sent(svc) == [0]
    svc.stop()
