"""The file side of turtle routing without a network: answering anonymous searches from the
anonymously shared files only, the ft <-> turtle item translation with end-to-end
encryption at both tunnel ends, the guard that keeps an anonymous download's hash away
from friends who do not list it, the persisted set of anonymous downloads, and the share
flags RetroShare writes."""

from __future__ import annotations

import dataclasses

import pytest

import pqi
from pqi.interfaces import PeerIdentity
from pqi.items.ft import (
    FtChunkCrcItem,
    FtChunkCrcRequestItem,
    FtChunkMapItem,
    FtChunkMapRequestItem,
    FtDataItem,
    FtDataRequestItem,
)
from pqi.items.turtle import (
    RegexpExpression,
    TurtleDirection,
    TurtleFileInfo,
    TurtleGenericDataItem,
    TurtleRegexpSearchRequestItem,
    TurtleStringSearchRequestItem,
)
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.tlvvalues import FileData, FileItem
from services.sharing.shares import ShareList, Visibility
from services.turtle import crypto, fileprint
from services.turtle.files import FileTunnels
from services.turtle.search import anonymous_hits
from services.turtle.service import TunnelAwareSender
from services.turtle.store import MAX_ANONYMOUS_DOWNLOADS, AnonymousDownloads

REAL = Sha1Hash(b"\x5a" * 20)
SIZE = 3 * 1024 * 1024 + 5


@dataclasses.dataclass(frozen=True)
class F:
    name: str
    size: int
    hash: Sha1Hash


def test_anonymous_hits_match_names_ignoring_case_once_per_hash():
    """The whole search string, any case, inside a name; a file shared twice is one hit;
    blank searches and boolean expressions get no local answer."""
    files = [F("Holiday-NEEDLE.mkv", 10, REAL), F("copy of holiday-needle.mkv", 10, REAL),
             F("other.txt", 3, Sha1Hash(b"\x01" * 20))]
    item = TurtleStringSearchRequestItem(match_string="needle", request_id=1, depth=1)
    assert anonymous_hits(files, item) == [TurtleFileInfo(10, REAL, "Holiday-NEEDLE.mkv")]
    blank = TurtleStringSearchRequestItem(match_string="  ", request_id=1, depth=1)
    assert anonymous_hits(files, blank) == []
    empty = TurtleRegexpSearchRequestItem(request_id=1, depth=1,
                                          expression=RegexpExpression())
    assert anonymous_hits(files, empty) == []


def _regexp(tokens, ints, strings=()):
    return TurtleRegexpSearchRequestItem(request_id=1, depth=1, expression=RegexpExpression(
        tuple(tokens), tuple(ints), tuple(strings)))


def test_regexp_searches_as_retroshare_evaluates_them():
    """Name contains all of two words (ignoring case) AND size in range; an extension test
    (also what a path test does in RetroShare); xor; a relation reads "operand OP value";
    equality is case-sensitive whatever the flag; malformed expressions answer nothing."""
    big = F("Big.Movie.MKV", 700 << 20, Sha1Hash(b"\x01" * 20))
    small = F("small movie.txt", 10, Sha1Hash(b"\x02" * 20))
    files = [big, small]
    names = lambda item: [h.name for h in anonymous_hits(files, item)]  # noqa: E731
    # COMP(and, NAME(all, ic, 2: "movie", "BIG"), SIZE_MB(inrange, 100, 1000))
    both = _regexp([7, 4, 8], [0, 1, 1, 2, 5, 100, 1000], ["movie", "BIG"])
    assert names(both) == ["Big.Movie.MKV"]
    assert names(_regexp([6], [0, 1, 1], ["mkv"])) == ["Big.Movie.MKV"]
    assert names(_regexp([5], [0, 0, 1], ["txt"])) == ["small movie.txt"]
    # XOR(NAME(any, ic, "movie"): both, SIZE(greater, 1000): "1000 > size", the small one)
    xor = _regexp([7, 4, 2], [2, 0, 1, 1, 2, 1000, 0], ["movie"])
    assert names(xor) == ["Big.Movie.MKV"]
    assert names(_regexp([4], [2, 1, 1], ["big.movie.mkv"])) == []
    assert names(_regexp([4], [2, 1, 1], ["Big.Movie.MKV"])) == ["Big.Movie.MKV"]
    hash_hex = big.hash.to_hex()
    assert names(_regexp([3], [2, 0, 1], [hash_hex])) == ["Big.Movie.MKV"]
    for broken in (_regexp([7, 4], [0, 0, 0, 0]), _regexp([9], []), _regexp([4], [0, 0, 5]),
                   _regexp([2], [9, 0, 0]), _regexp([7] * 40 + [2], [0] * 60)):
        assert names(broken) == []


class Transfers:
    """Records what the file client hands to the transfer service."""

    def __init__(self) -> None:
        self.received: list = []
        self.connected: list = []
        self.disconnected: list = []

    def receive(self, peer: PeerIdentity, item) -> None:
        self.received.append((peer.ssl_id, item))

    def peer_connected(self, peer: PeerIdentity) -> None:
        self.connected.append(peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason) -> None:
        self.disconnected.append(peer.ssl_id)


def _pair(tmp_path):
    """A serving and a downloading file client joined by one tunnel (items cross directly)."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    serve_t, fetch_t = Transfers(), Transfers()
    links: dict[str, list] = {"to_server": [], "to_client": []}
    server = FileTunnels(serve_t, lambda: [(REAL, str(path), SIZE)],
                         lambda vp, item: links["to_client"].append(item) or True)
    client = FileTunnels(fetch_t, lambda: [],
                         lambda vp, item: links["to_server"].append(item) or True,
                         direct_sources=lambda h: [SslId(b"\x03" * 16)])
    hh = client.want(REAL, SIZE)
    assert server.handle_tunnel_request(hh, SslId(b"\x02" * 16))
    assert not server.handle_tunnel_request(REAL, SslId(b"\x02" * 16))
    vp = fileprint.virtual_peer_id(0x1234)
    server.add_virtual_peer(hh, vp, TurtleDirection.CLIENT)
    client.add_virtual_peer(hh, vp, TurtleDirection.SERVER)
    return server, client, serve_t, fetch_t, links, vp, str(path)


def test_items_cross_the_tunnel_encrypted_and_translated(tmp_path):
    """A downloader's ft requests become encrypted turtle items the server turns back into
    ft requests for the real hash and size; the server's answers come back the same way."""
    server, client, serve_t, fetch_t, links, vp, path = _pair(tmp_path)
    assert fetch_t.connected == [vp] and serve_t.connected == []
    file = FileItem(SIZE, REAL)
    requests = [FtDataRequestItem(offset=0, chunk_size=4096, file=file),
                FtChunkMapRequestItem(is_client=False, hash=REAL),
                FtChunkCrcRequestItem(hash=REAL, chunk_number=2)]
    answers = [FtDataItem(data=FileData(file, 0, b"abc")),
               FtChunkMapItem(is_client=True, hash=REAL, chunk_map=(0xFFFFFFFF,)),
               FtChunkCrcItem(hash=REAL, chunk_number=2, check_sum=Sha1Hash(b"\x09" * 20))]
    for item in requests:
        assert client.send(vp, item)
    for item in answers:
        assert server.send(vp, item)
    for generic in links["to_server"]:
        assert isinstance(generic, TurtleGenericDataItem) and REAL not in generic.data
        server.receive_turtle_data(generic, crypto.hash_of_hash(REAL), vp,
                                   TurtleDirection.SERVER)
    for generic in links["to_client"]:
        client.receive_turtle_data(generic, crypto.hash_of_hash(REAL), vp,
                                   TurtleDirection.CLIENT)
    assert [item for _, item in serve_t.received] == requests
    assert [item for _, item in fetch_t.received] == answers
    assert server.lookup_for(REAL, vp) == (path, SIZE)
    assert server.lookup_for(REAL, SslId(b"\x04" * 16)) is None and server.lookup(REAL) is None


def test_wrong_direction_items_and_other_files_are_refused(tmp_path):
    """A data item sent to the server end, or an ft item for another file, goes nowhere."""
    server, client, serve_t, fetch_t, links, vp, _ = _pair(tmp_path)
    other = FileItem(10, Sha1Hash(b"\x01" * 20))
    assert not client.send(vp, FtDataRequestItem(offset=0, chunk_size=1, file=other))
    assert not client.send(vp, FtDataItem(data=FileData(FileItem(SIZE, REAL), 0, b"z")))
    sealed = crypto.encrypt(crypto.file_key(REAL), pqi.encode(
        FtDataItem(data=FileData(FileItem(SIZE, REAL), 0, b"z"))))
    server.receive_turtle_data(TurtleGenericDataItem(tunnel_id=1, data=sealed),
                               crypto.hash_of_hash(REAL), vp, TurtleDirection.SERVER)
    assert serve_t.received == [] and sum(server.refused.values()) == 1


def test_removing_the_virtual_peer_removes_the_source(tmp_path):
    """A closed tunnel leaves the download's sources; the peer is no longer a tunnel."""
    server, client, serve_t, fetch_t, links, vp, _ = _pair(tmp_path)
    client.remove_virtual_peer(crypto.hash_of_hash(REAL), vp)
    assert fetch_t.disconnected == [vp] and not client.is_tunnel(vp)


def test_anonymous_download_requests_reach_only_listing_friends(tmp_path):
    """The sender the transfer service uses: requests for an anonymous download go to the
    tunnel and to friends whose lists show the file, never to other friends; other items
    and other downloads pass as before."""
    server, client, *_ , vp, _ = _pair(tmp_path)
    sent: list = []

    class Control:
        def send(self, peer, item):
            sent.append(peer)
            return True

        def connected_peers(self):
            return []

    sender = TunnelAwareSender(Control(), lambda: client)
    lister, stranger = SslId(b"\x03" * 16), SslId(b"\x04" * 16)
    req = FtChunkMapRequestItem(is_client=False, hash=REAL)
    assert sender.send(lister, req) and not sender.send(stranger, req)
    assert sender.send(stranger, FtChunkMapRequestItem(is_client=False,
                                                       hash=Sha1Hash(b"\x01" * 20)))
    assert sender.send(vp, req)
    assert sent == [lister, stranger]


def test_anonymous_downloads_persist_and_are_bounded(tmp_path):
    """The set survives a reload, forgets finished downloads, and refuses past its bound."""
    path = tmp_path / "turtle-downloads.json"
    store = AnonymousDownloads(path)
    hashes = [Sha1Hash(i.to_bytes(20, "big")) for i in range(MAX_ANONYMOUS_DOWNLOADS)]
    for h in hashes:
        store.add(h)
    with pytest.raises(OverflowError):
        store.add(Sha1Hash(b"\xff" * 20))
    store.keep_only(set(hashes[:3]))
    assert AnonymousDownloads(path).hashes == set(hashes[:3])
    assert not (tmp_path / "turtle-downloads.json.tmp").exists()


def test_share_flags_as_retroshare_writes_them(tmp_path):
    """Browsable + anonymous is RetroShare's 0x0c80 (carol's share in the captures); the
    anonymous flag persists and survives a visibility change."""
    (tmp_path / "d").mkdir()
    shares = ShareList(tmp_path / "shares.json")
    folder = shares.add(tmp_path / "d", "d", anonymous=True)
    assert folder.flags == 0x0C80
    assert shares.set_visibility("d", Visibility.NONE).flags == 0x0880
    assert ShareList(tmp_path / "shares.json").get("d").anonymous
    assert shares.set_visibility("d", Visibility.ALL, anonymous=False).flags == 0x0400


def test_wanted_files_are_bounded(tmp_path):
    """More than MAX_WANTED files looked for through tunnels is refused."""
    from services.turtle.files import MAX_WANTED
    client = FileTunnels(Transfers(), lambda: [], lambda vp, item: True)
    for i in range(MAX_WANTED):
        client.want(Sha1Hash(i.to_bytes(20, "big")), 10)
    client.want(Sha1Hash((0).to_bytes(20, "big")), 10)  # again: no new entry
    with pytest.raises(OverflowError):
        client.want(Sha1Hash(b"\xff" * 20), 10)


def test_kept_searches_and_hits_are_bounded(monkeypatch):
    """The skin keeps MAX_SEARCHES_KEPT searches (oldest forgotten) and at most
    MAX_HITS_KEPT distinct hits per search; more sightings of a hit are counted."""
    from twisted.internet.task import Clock

    import services.turtle.service as service_module
    from services.turtle.router import FileSearchResult
    from services.turtle.service import MAX_SEARCHES_KEPT, TurtleService
    monkeypatch.setattr(service_module, "MAX_HITS_KEPT", 3)

    class Sender:
        def send(self, peer, item):
            return True

        def connected_peers(self):
            return []

    svc = TurtleService(Sender(), Clock(), SslId(b"\x01" * 16))
    ids = [svc.search(f"s{i}") for i in range(MAX_SEARCHES_KEPT + 2)]
    assert len(svc.searches) == MAX_SEARCHES_KEPT and ids[0] not in svc.searches
    hits = tuple(TurtleFileInfo(1, Sha1Hash(bytes([i]) * 20), f"f{i}") for i in range(5))
    svc._output(FileSearchResult(ids[-1], hits))
    svc._output(FileSearchResult(ids[-1], hits[:1]))
    kept = svc.searches[ids[-1]]
    assert len(kept.hits) == 3 and kept.sightings[hits[0].hash] == 2
