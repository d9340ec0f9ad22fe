"""File-list sync (0x0019) between two services over an in-memory pipe, and against the
items real RetroShare nodes exchanged."""

from __future__ import annotations

import collections
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

import pqi
from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.items.filelists import (
    FileListsBannedHashesItem,
    FileListsFlags,
    FileListsSyncRequestItem,
    FileListsSyncResponseItem,
)
from pqi.wire.fields import PgpId, Sha1Hash, SslId
from pqi.wire.item import decode, encode
from services.sharing.dirlist import DirContent, RemoteFile, decode_dir, encode_dir
from services.sharing.filelists import (
    EMPTY_CHECKSUM,
    MAX_RESPONSE_PART,
    MAX_RETRIES,
    RETRY_AFTER,
    FileListsService,
    split_response,
)
from services.sharing.remote import RemoteTree, TreeFullError
from tests.service_fakes import RecordingSender, peer

F = FileListsFlags
ROOT = Sha1Hash.null()
A, B = peer(1), peer(2)
ALICE = PeerIdentity(SslId.from_hex("86192d6a6926c8af956f3601f1a77d19"),
                     PgpId.from_hex("CC22FB383D1957C2"), "alice-loc")
BOB = PeerIdentity(SslId.from_hex("4ea22c330cebe3bec367aef3aaf496b6"),
                   PgpId.from_hex("1FF918C2EAD0CCC1"), "bob-loc")


def h(n: int) -> Sha1Hash:
    return Sha1Hash(hashlib.sha1(bytes([n])).digest())


class StaticIndex:
    """The index interface the service serves from, over fixed directory contents;
    ``hidden`` maps a directory to the friends it is hidden from."""

    def __init__(self, dirs: dict[Sha1Hash, DirContent],
                 hidden: dict[Sha1Hash, set[SslId]] | None = None) -> None:
        self.dirs = dirs
        self.hidden = hidden or {}

    def content_for(self, hash_: bytes, ssl_id: SslId) -> DirContent | None:
        d = self.dirs.get(Sha1Hash(hash_))
        if d is None or ssl_id in self.hidden.get(Sha1Hash(hash_), set()):
            return None
        if hash_ == ROOT:
            return DirContent(d.name, d.recurs_modif_ts, d.modif_ts,
                              tuple(s for s in d.subdirs
                                    if ssl_id not in self.hidden.get(s, set())), d.files)
        return d


def tree_of(n_files: int = 2, ts: int = 100) -> dict[Sha1Hash, DirContent]:
    files = tuple(RemoteFile(f"file-{i}.bin", 1000 + i, h(100 + i), ts) for i in range(n_files))
    return {
        ROOT: DirContent("", ts, 0, (h(1), h(2))),
        h(1): DirContent("music", ts, ts, (h(3),), files[:1]),
        h(2): DirContent("films", ts, ts, (), files[1:]),
        h(3): DirContent("old", ts, ts, (), (RemoteFile("song.ogg", 5, h(99), ts),)),
    }


class Pipe:
    """Carries items between two services through a wire round trip, counting them."""

    def __init__(self) -> None:
        self.queue: collections.deque = collections.deque()
        self.log: list[tuple[str, object]] = []

    def sender(self, to: str, services: dict, me: PeerIdentity):
        pipe = self

        class Sender(RecordingSender):
            def send(self, ssl_id: SslId, item: object) -> bool:
                wire = decode(encode(item))  # type: ignore[arg-type]
                pipe.log.append((to, wire))
                pipe.queue.append((services, to, me, wire))
                return True

        return Sender()

    def pump(self, rounds: int = 10_000, observe=None) -> None:
        for _ in range(rounds):
            if not self.queue:
                return
            services, to, me, item = self.queue.popleft()
            services[to].receive(me, item)
            if observe is not None:
                observe()
        raise AssertionError("pipe never went quiet")

    def take(self, kind: type) -> list:
        out = [i for _, i in self.log if isinstance(i, kind)]
        self.log.clear()
        return out


def pair(index: StaticIndex, **kwargs) -> tuple[FileListsService, FileListsService, Pipe,
                                                Clock]:
    clock = Clock()
    clock.advance(1_000_000)
    pipe = Pipe()
    services: dict[str, FileListsService] = {}
    server = FileListsService(pipe.sender("b", services, A), clock, index)  # type: ignore
    client = FileListsService(pipe.sender("a", services, B), clock, None, **kwargs)
    services.update(a=server, b=client)
    server.peer_connected(B)
    client.peer_connected(A)
    return server, client, pipe, clock


def listing(tree: RemoteTree) -> dict[str, tuple]:
    return {f"{p}/{f.name}": (f.size, f.hash) for p, f in tree.walk()}


def test_client_syncs_whole_tree() -> None:
    """On connect the client asks for the root and then every subdirectory it learns of,
    until it holds the server's whole tree with names and paths."""
    server, client, pipe, _ = pair(StaticIndex(tree_of()))
    pipe.pump()
    tree = client.trees[A.ssl_id]
    assert listing(tree) == {"music/file-0.bin": (1000, h(100)), "films/file-1.bin": (1001, h(101)),
                             "music/old/song.ogg": (5, h(99))}
    assert tree.path_of(h(3)) == "music/old" and tree.stale() == []
    assert client.dropped == 0 and server.served == 4


def test_resync_costs_up_to_date_answers_only() -> None:
    """120 s later the client asks for the root again with the time it holds; an unchanged
    tree is answered ENTRY_UP_TO_DATE with no content, and nothing else is asked."""
    server, client, pipe, clock = pair(StaticIndex(tree_of()))
    client.start()
    pipe.pump()
    pipe.log.clear()
    clock.advance(120)
    pipe.pump()
    client.stop()
    items = [i for _, i in pipe.log]
    assert [(type(i), i.entry_hash, i.last_known_recurs_modf_ts) for i in items] == [
        (FileListsSyncRequestItem, ROOT, 100), (FileListsSyncResponseItem, ROOT, 100)]
    assert (items[1].flags == F.SYNC_RESPONSE | F.ENTRY_UP_TO_DATE and items[1].content == b""
            and items[1].checksum == EMPTY_CHECKSUM)


def test_change_below_propagates() -> None:
    """A file added deep down changes the recursive times on its way up: the client re-reads
    the root and that branch, the other branch answers up-to-date, and the new file appears."""
    dirs = tree_of()
    index = StaticIndex(dirs)
    server, client, pipe, clock = pair(index)
    pipe.pump()
    dirs[h(3)] = DirContent("old", 200, 100, (), (RemoteFile("song.ogg", 5, h(99), 100),
                                                    RemoteFile("new.ogg", 7, h(98), 200)))
    dirs[h(1)] = DirContent("music", 200, 100, (h(3),), dirs[h(1)].files)
    dirs[ROOT] = DirContent("", 200, 0, (h(1), h(2)))
    pipe.log.clear()
    clock.advance(120)
    client.sweep()
    pipe.pump()
    responses = [i for t, i in pipe.log if isinstance(i, FileListsSyncResponseItem)]
    by_dir = {r.entry_hash: r.flags for r in responses}
    assert by_dir == {ROOT: F.SYNC_RESPONSE | F.SYNC_DIR_CONTENT,
                      h(1): F.SYNC_RESPONSE | F.SYNC_DIR_CONTENT,
                      h(2): F.SYNC_RESPONSE | F.ENTRY_UP_TO_DATE,
                      h(3): F.SYNC_RESPONSE | F.SYNC_DIR_CONTENT}
    assert listing(client.trees[A.ssl_id])["music/old/new.ogg"] == (7, h(98))


def test_large_directory_split_and_reassembled() -> None:
    """A directory over 20000 bytes goes in parts with the same request id and checksum,
    PARTIAL on each and PARTIAL_END on the last; the client rebuilds the whole."""
    files = tuple(RemoteFile(f"a-rather-long-file-name-number-{i:05d}.dat", i, h(i % 250), 7)
                  for i in range(700))
    index = StaticIndex({ROOT: DirContent("", 7, 0, (h(1),)), h(1): DirContent("big", 7, 7, (),
                                                                                 files)})
    server, client, pipe, _ = pair(index)
    pipe.pump()
    parts = [i for t, i in pipe.log if isinstance(i, FileListsSyncResponseItem)
             and i.entry_hash == h(1)]
    whole = encode_dir(index.dirs[h(1)])
    assert len(parts) == -(-len(whole) // MAX_RESPONSE_PART) >= 3
    assert all(len(p.content) == MAX_RESPONSE_PART for p in parts[:-1])
    assert [p.flags for p in parts] == (
        [F.SYNC_RESPONSE | F.SYNC_DIR_CONTENT | F.SYNC_PARTIAL] * (len(parts) - 1)
        + [F.SYNC_RESPONSE | F.SYNC_DIR_CONTENT | F.SYNC_PARTIAL | F.SYNC_PARTIAL_END])
    assert len({(p.request_id, p.checksum) for p in parts}) == 1
    assert parts[0].checksum == hashlib.sha1(whole).digest()
    assert client.trees[A.ssl_id].find("big").files == files


def test_split_response_small_is_one_item() -> None:
    """Content up to 20000 bytes is one plain response."""
    (one,) = split_response(h(1), 5, 9, b"x" * MAX_RESPONSE_PART)
    assert one.flags == F.SYNC_RESPONSE | F.SYNC_DIR_CONTENT and len(one.content) == 20000


def test_hidden_folder_not_listed_and_removed() -> None:
    """A folder hidden from a friend is left out of its root and answered
    ENTRY_WAS_REMOVED if asked for directly."""
    index = StaticIndex(tree_of(), hidden={h(2): {B.ssl_id}})
    server, client, pipe, _ = pair(index)
    pipe.pump()
    assert "films/file-1.bin" not in listing(client.trees[A.ssl_id])
    sender = RecordingSender()
    server.sender = sender
    server.receive(B, FileListsSyncRequestItem(entry_hash=h(2), flags=F.SYNC_REQUEST,
                                               last_known_recurs_modf_ts=0, request_id=1))
    ((_, answer),) = sender.sent
    assert answer.flags == F.SYNC_RESPONSE | F.ENTRY_WAS_REMOVED and answer.content == b""


def test_removed_folder_disappears_from_client() -> None:
    """When the server stops sharing a folder, the client's next sync drops it."""
    dirs = tree_of()
    server, client, pipe, clock = pair(StaticIndex(dirs))
    pipe.pump()
    del dirs[h(2)]
    dirs[ROOT] = DirContent("", 300, 0, (h(1),))
    clock.advance(120)
    client.sweep()
    pipe.pump()
    tree = client.trees[A.ssl_id]
    assert h(2) not in tree.dirs and "films/file-1.bin" not in listing(tree)


def test_bad_responses_dropped() -> None:
    """Unsolicited responses, checksum mismatches, a partial that ends before it began and
    partials with differing checksums are dropped and counted, the tree left unchanged."""
    server, client, pipe, _ = pair(StaticIndex({ROOT: DirContent("", 1, 0)}))
    pipe.queue.clear()
    rid = client.request_id(A.ssl_id, ROOT)
    content = encode_dir(DirContent("", 5, 0, (h(1),)))
    good = hashlib.sha1(content).digest()

    def resp(flags, checksum, request_id=rid, data=content):
        return FileListsSyncResponseItem(entry_hash=ROOT, checksum=Sha1Hash(checksum),
                                         flags=F.SYNC_RESPONSE | flags,
                                         last_known_recurs_modf_ts=5, request_id=request_id,
                                         content=data)

    client.receive(A, resp(F.SYNC_DIR_CONTENT, good, request_id=rid ^ 1))
    client.receive(B, resp(F.SYNC_DIR_CONTENT, good))
    client.receive(A, resp(F.SYNC_DIR_CONTENT, bytes(20)))
    assert client.dropped == 3
    client._request(A.ssl_id, ROOT, 0)
    client.receive(A, resp(F.SYNC_DIR_CONTENT | F.SYNC_PARTIAL | F.SYNC_PARTIAL_END, good))
    client.receive(A, resp(F.SYNC_DIR_CONTENT | F.SYNC_PARTIAL, good, data=content[:10]))
    client.receive(A, resp(F.SYNC_DIR_CONTENT | F.SYNC_PARTIAL, bytes(20), data=content[10:]))
    assert client.dropped == 5
    assert client.trees[A.ssl_id].root.subdirs == []
    client._request(A.ssl_id, ROOT, 0)
    client.receive(A, resp(F.SYNC_DIR_CONTENT, hashlib.sha1(b"\x00").digest(), data=b"\x00"))
    assert client.dropped == 6


def test_tree_cannot_loop_or_overflow() -> None:
    """A subdirectory hash already used elsewhere is ignored (no loops), and content that
    would push a friend's tree past max_entries is refused."""
    tree = RemoteTree(A.ssl_id, max_entries=6)
    tree.apply(ROOT, DirContent("", 1, 0, (h(1), h(2))), 1.0)
    subs = tree.apply(h(1), DirContent("x", 1, 1, (h(2), ROOT, h(1), h(3))), 1.0)
    assert subs == [h(3)] and tree.refused_subdirs == 3
    with pytest.raises(TreeFullError):
        tree.apply(h(2), DirContent("y", 1, 1, (), tuple(
            RemoteFile(str(i), 1, h(i), 1) for i in range(5))), 1.0)
    assert len(tree) == 4 and tree.dirs[h(2)].files == ()


def test_disconnect_forgets_pending_keeps_tree() -> None:
    """A dropped link forgets pending requests (their answers will not come) but keeps the
    friend's tree browsable."""
    server, client, pipe, _ = pair(StaticIndex(tree_of()))
    pipe.pump()
    client._request(A.ssl_id, h(1), 0)
    client.peer_disconnected(A, DisconnectReason.CLOSED)
    assert client._pending == {}
    assert "music/file-0.bin" in listing(client.trees[A.ssl_id])


def test_banned_hashes_exchanged() -> None:
    """Without a ban list each side sends an empty banned-hashes list on connect; with one,
    the friend's list is recorded there."""
    from services.banlist.files import BannedFiles
    server, client, pipe, _ = pair(StaticIndex(tree_of()))
    sent = [i for _, i in pipe.log if isinstance(i, FileListsBannedHashesItem)]
    assert len(sent) == 2 and all(i.encrypted_hashes == frozenset() for i in sent)
    pipe.pump()
    client.banned_files = BannedFiles()
    client.receive(A, FileListsBannedHashesItem(session_id=1,
                                                encrypted_hashes=frozenset({h(5)})))
    assert client.banned_files.peer_hashes(A.ssl_id) == frozenset({h(5)})


# --- against the captures --------------------------------------------------------------------

def _capture(captures, name: str, lines: set[int]) -> dict[int, bytes]:
    out = {}
    with open(captures / f"{name}.items.jsonl") as f:
        for n, text in enumerate(f, 1):
            if n in lines:
                out[n] = bytes.fromhex(json.loads(text)["hex"])
    return out


def test_server_answers_like_retroshare(captures) -> None:
    """Serving bob's tree (decoded from bob's own responses), our service answers alice's
    captured requests with exactly the bytes bob sent: up-to-date (bob:25 -> 26), root
    content (232 -> 234), folder contents (256 -> 257, 276 -> 278)."""
    raw = _capture(captures, "bob", {25, 26, 232, 234, 256, 257, 276, 278})
    dirs = {}
    for n in (234, 257, 278):
        item = pqi.decode(raw[n])
        dirs[item.entry_hash] = decode_dir(item.content)
    old_root = StaticIndex({ROOT: DirContent("", 1795610752, 0)})
    index = StaticIndex(dirs)
    for request, response, idx in ((25, 26, old_root), (232, 234, index), (256, 257, index),
                                   (276, 278, index)):
        sender = RecordingSender()
        service = FileListsService(sender, Clock(), idx)  # type: ignore[arg-type]
        service.receive(ALICE, pqi.decode(raw[request]))
        ((to, answer),) = sender.sent
        assert to == ALICE.ssl_id and encode(answer) == raw[response], (request, response)


def test_client_syncs_from_captured_responses(captures) -> None:
    """Playing alice, our client asks bob for the root; fed bob's captured responses it asks
    for the same directories with the same request ids alice used (RetroShare's id rule),
    and ends with bob's tree."""
    raw = _capture(captures, "bob", {232, 234, 256, 257, 276, 278})
    sender = RecordingSender()
    service = FileListsService(sender, Clock(), None)
    first = pqi.decode(raw[232])
    service._bias = first.request_id ^ (service.request_id(BOB.ssl_id, ROOT) ^ service._bias)
    service.peer_connected(BOB)
    for request_line, response_line in ((232, 234), (256, 257), (276, 278)):
        ours = [i for _, i in sender.sent if isinstance(i, FileListsSyncRequestItem)]
        theirs = pqi.decode(raw[request_line])
        assert ours[-1].request_id == theirs.request_id
        assert ours[-1].entry_hash == theirs.entry_hash
        service.receive(BOB, pqi.decode(raw[response_line]))
    assert listing(service.trees[BOB.ssl_id]) == {
        "bob-shared/hello-from-bob.txt": (115, Sha1Hash.from_hex(
            "4c229910f03cc27e474fd07a113237a6c90f6da0")),
        "bob-shared/data/random-3MiB.bin": (3145728, Sha1Hash.from_hex(
            "296d87a4a8e805015977af16ffa749af8ba1bd0e")),
        "bob-shared/data/needle-5MiB.bin": (5242880, Sha1Hash.from_hex(
            "a70bb987f5357e1bfd896b729715b2bdcac9968f")),
    }
    assert service.dropped == 0


def test_unanswered_request_expires_and_is_asked_again() -> None:
    """A request with no answer is forgotten after REQUEST_TIMEOUT and the directory asked
    for again on the next sweep (same request id); retries are off here (MAX_RETRIES used)."""
    sender = RecordingSender()
    clock = Clock()
    client = FileListsService(sender, clock, None, request_timeout=600, resync_period=10_000,
                              retry_after=10_000)
    client.peer_connected(A)
    (first,) = [i for _, i in sender.sent if isinstance(i, FileListsSyncRequestItem)]
    sender.sent.clear()
    clock.advance(599)
    client.sweep()
    assert sender.sent == []
    clock.advance(1)
    client.sweep()
    ((_, again),) = sender.sent
    assert again.request_id == first.request_id and again.entry_hash == ROOT


def test_unanswered_request_is_sent_again_after_retry_after_at_most_max_retries() -> None:
    """One lost request costs RETRY_AFTER seconds, not REQUEST_TIMEOUT: with no answer it is
    sent again (same id) every RETRY_AFTER seconds, MAX_RETRIES times, then it waits; an
    answer to a re-sent request completes it."""
    sender = RecordingSender()
    clock = Clock()
    client = FileListsService(sender, clock, None, resync_period=10_000)
    client.peer_connected(A)
    (first,) = [i for _, i in sender.sent if isinstance(i, FileListsSyncRequestItem)]
    sender.sent.clear()
    clock.advance(RETRY_AFTER - 0.5)
    client.sweep()
    assert sender.sent == []
    resent = []
    for _ in range(MAX_RETRIES + 2):
        clock.advance(RETRY_AFTER)
        client.sweep()
        resent += [i for _, i in sender.sent if isinstance(i, FileListsSyncRequestItem)]
        sender.sent.clear()
    assert len(resent) == MAX_RETRIES
    assert {i.request_id for i in resent} == {first.request_id}
    client.receive(A, FileListsSyncResponseItem(
        entry_hash=ROOT, checksum=EMPTY_CHECKSUM, flags=F.SYNC_RESPONSE | F.ENTRY_UP_TO_DATE,
        last_known_recurs_modf_ts=0, request_id=first.request_id, content=b""))
    assert client.dropped == 0 and client.trees[A.ssl_id].root.update_time == clock.seconds()


def test_stale_tracking() -> None:
    """Only directories never synced or whose parent changed are stale; an up-to-date answer
    or content clears them, a dropped branch takes its stale entries with it."""
    tree = RemoteTree(A.ssl_id)
    assert [d.hash for d in tree.stale()] == [ROOT]
    tree.apply(ROOT, DirContent("", 1, 0, (h(1), h(2))), 1.0)
    assert {d.hash for d in tree.stale()} == {h(1), h(2)}
    tree.up_to_date(h(1), 2.0)
    tree.apply(h(2), DirContent("b", 1, 1, (h(3),)), 2.0)
    assert {d.hash for d in tree.stale()} == {h(3)}
    tree.apply(ROOT, DirContent("", 2, 0, (h(1),)), 3.0)
    assert {d.hash for d in tree.stale()} == {h(1)} and h(3) not in tree.dirs
    assert len(tree) == 2


def test_requests_in_flight_are_capped() -> None:
    """A folder with 200 subfolders is synced with never more than max_in_flight requests
    outstanding, and completely."""
    subs = tuple(h(i) for i in range(10, 210))
    dirs = {ROOT: DirContent("", 5, 0, (h(1),)), h(1): DirContent("many", 5, 5, subs)}
    dirs.update({s: DirContent(f"d{i}", 5, 5, (), (RemoteFile("f", 1, h(1), 5),))
                 for i, s in enumerate(subs)})
    server, client, pipe, _ = pair(StaticIndex(dirs), max_in_flight=8)
    seen: list[int] = []
    pipe.pump(observe=lambda: seen.append(len(client._pending)))
    assert max(seen) == 8
    assert len(listing(client.trees[A.ssl_id])) == 200 and client._pending == {}
    assert client._in_flight == {}


def test_partials_capped(monkeypatch) -> None:
    """Partial responses of one friend are reassembled only up to MAX_DIR_CONTENT_SIZE in
    all; beyond it the response is dropped and the request forgotten."""
    import services.sharing.filelists as filelists
    monkeypatch.setattr(filelists, "MAX_DIR_CONTENT_SIZE", 30_000)
    files = tuple(RemoteFile(f"a-rather-long-file-name-number-{i:05d}.dat", i, h(i % 250), 7)
                  for i in range(700))
    index = StaticIndex({ROOT: DirContent("", 7, 0, (h(1),)),
                         h(1): DirContent("big", 7, 7, (), files)})
    server, client, pipe, _ = pair(index)
    pipe.pump()
    parts = -(-len(encode_dir(index.dirs[h(1)])) // MAX_RESPONSE_PART)
    # the part crossing the cap is dropped, and the later parts as unsolicited
    assert client.dropped == parts - 1 and parts >= 3
    assert client._pending == {} and client._partial_bytes == {}
    assert client.trees[A.ssl_id].dirs[h(1)].files == ()


@pytest.mark.slow
@given(st.integers(0, 3 * MAX_RESPONSE_PART + 5), st.binary(min_size=1, max_size=16))
def test_split_then_reassembled_is_whole(size: int, pattern: bytes) -> None:
    """Whatever its size, content split into responses and fed to a client comes back whole,
    in parts of at most 20000 bytes."""
    data = (pattern * (size // len(pattern) + 1))[:size]
    client = FileListsService(RecordingSender(), Clock(), None)
    client.peer_connected(A)
    rid = client.request_id(A.ssl_id, ROOT)
    items = split_response(ROOT, rid, 1, data)
    assert all(len(i.content) <= MAX_RESPONSE_PART for i in items)
    assert b"".join(i.content for i in items) == data
    assert len(items) == max(1, -(-size // MAX_RESPONSE_PART))
    pending = client._pending[rid]
    for item in items[:-1]:
        client.receive(A, item)
    assert bytes(pending.parts) == data[:MAX_RESPONSE_PART * (len(items) - 1)]
    client.receive(A, items[-1])
    assert rid not in client._pending


def test_lists_survive_restart(tmp_path) -> None:
    """A friend's synced list saved to sqlite loads back identical with only its root stale;
    the first sync after the restart is one request answered up to date."""
    from services.sharing.remote_store import RemoteTreeStore
    server, client, pipe, clock = pair(StaticIndex(tree_of()))
    pipe.pump()
    store = RemoteTreeStore(tmp_path / "lists.sqlite")
    store.save(client.trees[A.ssl_id])
    store.close()
    loaded = RemoteTreeStore(tmp_path / "lists.sqlite").load()
    tree = loaded[A.ssl_id]
    assert listing(tree) == listing(client.trees[A.ssl_id])
    assert [d.hash for d in tree.stale()] == [ROOT]
    pipe2 = Pipe()
    services: dict[str, FileListsService] = {}
    server2 = FileListsService(pipe2.sender("b", services, A), clock, server.index)
    client2 = FileListsService(pipe2.sender("a", services, B), clock, None)
    client2.trees.update(loaded)
    services.update(a=server2, b=client2)
    client2.peer_connected(A)
    pipe2.pump()
    syncs = [i for _, i in pipe2.log if isinstance(i, (FileListsSyncRequestItem,
                                                       FileListsSyncResponseItem))]
    assert len(syncs) == 2 and syncs[1].flags == F.SYNC_RESPONSE | F.ENTRY_UP_TO_DATE
    assert listing(client2.trees[A.ssl_id]) == listing(client.trees[A.ssl_id])


def test_store_skips_rows_off_the_tree(tmp_path) -> None:
    """Stored directories that do not decode or hang from nothing are ignored on load."""
    import sqlite3

    from services.sharing.remote_store import RemoteTreeStore
    tree = RemoteTree(A.ssl_id)
    tree.apply(ROOT, DirContent("", 1, 0, (h(1),)), 1.0)
    tree.apply(h(1), DirContent("a", 1, 1, (), (RemoteFile("f", 1, h(9), 1),)), 1.0)
    store = RemoteTreeStore(tmp_path / "l.sqlite")
    store.save(tree)
    store.close()
    db = sqlite3.connect(tmp_path / "l.sqlite")
    with db:
        db.execute("INSERT INTO dirs VALUES (?, ?, ?)", (bytes(A.ssl_id), bytes(h(7)),
                                                         encode_dir(DirContent("x", 1, 1))))
        db.execute("UPDATE dirs SET content = ? WHERE hash = ?", (b"\x51", bytes(h(1))))
    db.close()
    loaded = RemoteTreeStore(tmp_path / "l.sqlite").load()[A.ssl_id]
    assert set(loaded.dirs) == {ROOT, h(1)} and loaded.dirs[h(1)].files == ()
    assert {d.hash for d in loaded.stale()} == {ROOT, h(1)}


def test_stored_lists_keep_names_not_utf8(tmp_path) -> None:
    """A friend's folder and file names that are not UTF-8 are saved (the store keeps the
    wire encoding) and load back identical, so the friend is asked for exactly those names."""
    from services.sharing.remote_store import RemoteTreeStore
    junk = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    tree = RemoteTree(A.ssl_id)
    tree.apply(ROOT, DirContent("", 1, 0, (h(1),)), 1.0)
    tree.apply(h(1), DirContent(junk, 1, 1, (), (RemoteFile(junk + ".txt", 1, h(9), 1),)), 1.0)
    store = RemoteTreeStore(tmp_path / "l.sqlite")
    store.save(tree)
    store.close()
    loaded = RemoteTreeStore(tmp_path / "l.sqlite").load()[A.ssl_id]
    assert loaded.dirs[h(1)].name == junk
    assert [f.name for f in loaded.dirs[h(1)].files] == [junk + ".txt"]
