"""Channels, forums and boards between nodes in a line, on one clock (deterministic).

Nodes 0 - 1 - 2 are friends in a line as in the captures (0 and 2 are not friends): a
channel made on 0 is followed by 1, then by 2 through 1's copy; posts, comments, votes,
edits, forum threads and replies, moderators and pinned posts travel and show as RetroShare
shows them; a post not signed by the publish key is refused by every node; a restart loses
nothing and duplicates nothing; the follow list is bounded.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from pqi.items.gxs import encode_msg_meta
from pqi.items.gxs_content import BoardPost, ChannelPost, ForumPost, Vote
from pqi.items.nxs import NxsMsgItem, NxsTransacItem, nxs_item_class
from pqi.items.nxs import NxsTransacFlags as F
from pqi.wire.fields import GxsMessageId, Sha1Hash
from pqi.wire.tlvvalues import FileItem
from services.gxs.security import SignatureError, generate_key_pair
from services.publish import service as publish_service
from services.publish.events import (
    BoardMessageStored,
    ChannelMessageStored,
    ChannelStored,
    ForumMessageStored,
)
from services.publish.files import ChannelFiles
from services.publish.making import make_message
from services.publish.service import (
    BoardService,
    ChannelService,
    ForumService,
    PublishError,
)
from tests.publish_net import PublishNet, peer_identity


def _channel_line(base_dirs=None) -> tuple[PublishNet, object]:
    net = PublishNet(ChannelService, 3, base_dirs)
    net.line()
    grp = net.nodes[0].create("capture-channel", "alice's channel ✓")
    net.run(1)
    net.nodes[1].subscribe(grp)
    net.run(1)
    net.nodes[2].subscribe(grp)
    net.run(1)
    return net, grp


def test_channel_post_reaches_the_far_end_through_a_subscriber() -> None:
    """0 posts; 2 (not 0's friend) gets the post through 1, with its file reference."""
    net, grp = _channel_line()
    a, b, c = net.nodes
    f = FileItem(5 << 20, Sha1Hash(b"\x07" * 20), "big.bin")
    post = a.post(grp, "First post with a file", "<p>body</p>", (f,))
    net.run(2)
    got = c.message(post)
    assert got is not None and got.content == ChannelPost("<p>body</p>",
                                                          got.content.files, got.content.thumbnail)
    assert got.content.files.items == (f,)
    assert not got.read and b.message(post) is not None
    assert ChannelMessageStored(grp, post, peer_identity(1).ssl_id) in net.events[2]
    assert ChannelStored(grp, peer_identity(1).ssl_id) in net.events[2]
    info = c.group(grp)
    assert info.subscribed and not info.admin and not info.publisher and info.messages == 1


def test_only_the_publish_key_posts_in_a_channel() -> None:
    """A subscriber cannot post; a post signed by another key is refused by every node."""
    net, grp = _channel_line()
    a, b, c = net.nodes
    with pytest.raises(PublishError):
        b.post(grp, "not mine", "x")
    group = b.store.group_meta(grp)
    forged_key = generate_key_pair(int(net.clock.seconds()), 0x20)
    with pytest.raises(SignatureError):
        make_message(b.SERVICE, dataclasses.replace(group), ChannelPost("x"),
                     int(net.clock.seconds()), title="forged", publish=None)
    msg, meta = make_message(b.SERVICE, group, ChannelPost("forged"),
                             int(net.clock.seconds()), title="forged",
                             publish=forged_key.private)
    # Bob's store takes it unchecked (as a broken or hostile node would): carol refuses it.
    b.store.put_message(msg, encode_msg_meta(meta),
                        int(net.clock.seconds()))
    net.run(2)
    assert c.message(meta.msg_id) is None
    assert any("publish signature" in r for r in c.refused)
    # The same message sent to alice in a transaction of its own: refused too.
    cls = nxs_item_class(a.SERVICE, NxsTransacItem)
    a.receive(peer_identity(1), cls(transaction_number=77, transact_flag=F.BEGIN_P1 | F.TYPE_MSGS,
                                    n_items=1, update_ts=0))
    a.receive(peer_identity(1), nxs_item_class(a.SERVICE, NxsMsgItem)(
        transaction_number=77, pos=0, msg_id=meta.msg_id, grp_id=grp, msg=msg,
        meta=encode_msg_meta(meta)))
    assert a.message(meta.msg_id) is None
    assert any("publish signature" in r for r in a.refused)


def test_comments_votes_and_edits_on_a_channel() -> None:
    """Subscribers comment and vote (signed by their identities); an edit replaces the post
    everywhere, every version naming the first as original."""
    net, grp = _channel_line()
    a, b, c = net.nodes
    post = a.post(grp, "v1", "first")
    net.run(2)
    comment = c.comment(grp, post, "carol's comment ✓")
    vote = b.vote(grp, post, up=True)
    down = c.vote(grp, post, up=False)
    net.clock.advance(1)  # versions are ordered by publish time (whole seconds)
    v2 = a.post(grp, "v2", "second", original=post)
    net.clock.advance(1)
    v3 = a.post(grp, "v3", "third", original=v2)
    net.run(3)
    for node in net.nodes:
        shown = {m.msg_id: m for m in node.messages(grp)}
        assert v3 in shown and post not in shown and v2 not in shown
        assert shown[v3].versions == 3 and shown[v3].original == post
        assert shown[comment].kind == "comment" and shown[comment].thread == post
        assert node.votes(grp, post) == (1, 1)
        assert {vote, down} <= set(shown)
    assert a.message(v3).content.body == "third"


def test_a_forum_thread_from_the_far_end_gets_a_reply() -> None:
    """A thread started on 2 gets a reply from 0; edits by the author or a moderator count,
    others' do not; the admin pins a post."""
    net = PublishNet(ForumService, 3)
    net.line()
    a, b, c = net.nodes
    moderator = net.identities[1]
    grp = a.create("capture-forum", "bob's forum ✓", moderators=frozenset({moderator}))
    net.run(1)
    b.subscribe(grp)
    net.run(1)
    c.subscribe(grp)
    net.run(1)
    thread = c.post(grp, "Thread by carol", "<p>Opening post</p>")
    net.run(2)
    reply = a.post(grp, "Re: Thread by carol", "<p>alice replies</p>", parent=thread)
    net.run(2)
    got = c.message(reply)
    assert got is not None and got.parent == thread and got.content == ForumPost(
        "<p>alice replies</p>")
    assert any(isinstance(e, ForumMessageStored) and e.msg_id == reply for e in net.events[2])
    by_alice = a.post(grp, "Thread by carol", "<p>alice rewrote it</p>", original=thread)
    by_mod = b.post(grp, "Re: Thread by carol", "<p>moderated</p>", original=reply)
    a.pin(grp, thread)
    net.run(3)
    for node in net.nodes:
        shown = {m.original: m for m in node.messages(grp)}
        assert shown[thread].msg_id == thread  # alice is neither author nor moderator
        assert shown[reply].msg_id == by_mod  # bob moderates
        assert node.message(by_alice) is not None  # stored, just not shown
        assert node.group(grp).content.pinned == frozenset({thread})
    with pytest.raises(PublishError):
        c.pin(grp, thread)


def test_board_posts_comments_and_votes() -> None:
    """A link post, a comment and votes travel; each identity's newest vote counts once."""
    net = PublishNet(BoardService, 3)
    net.line()
    a, b, c = net.nodes
    grp = a.create("capture-board", "alice's board")
    net.run(1)
    b.subscribe(grp)
    net.run(1)
    c.subscribe(grp)
    net.run(1)
    post = a.post(grp, "A link post", "https://retroshare.cc", "notes with ✓")
    net.run(2)
    c.vote(grp, post, up=True)
    net.clock.advance(1)
    c.vote(grp, post, up=False)
    b.vote(grp, post, up=True)
    b.comment(grp, post, "bob's comment")
    net.run(3)
    for node in net.nodes:
        assert node.message(post).content == BoardPost("https://retroshare.cc", "notes with ✓")
        assert node.votes(grp, post) == (1, 1)
    assert sum(isinstance(e, BoardMessageStored) for e in net.events[0]) == 5
    assert [m for m in c.all_messages(grp) if isinstance(m.content, Vote)]


def test_restarting_a_node_mid_sync_loses_and_duplicates_nothing(tmp_path) -> None:
    """The middle node restarts between posts: every post reaches the far end once, read
    marks and subscriptions survive."""
    dirs = [tmp_path / f"n{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
    net, grp = _channel_line(dirs)
    a = net.nodes[0]
    first = a.post(grp, "one", "1")
    net.deliver()  # the pull request only: the middle node has not fetched it yet
    b = net.restart(1)
    assert b.store.subscribed(grp)
    net.connect(0, 1)
    net.connect(1, 2)
    second = a.post(grp, "two", "2")
    net.run(3)
    c = net.nodes[2]
    c.mark_read(first)
    c = net.restart(2)
    net.connect(1, 2)
    third = a.post(grp, "three", "3")
    net.run(3)
    ids = [m.msg_id for m in c.all_messages(grp)]
    assert sorted(ids) == sorted([first, second, third])
    assert c.message(first).read and not c.message(third).read
    assert c.store.message_count(grp) == 3


def test_the_follow_list_is_bounded(monkeypatch) -> None:
    """News from friends is kept for ``follow``, at most MAX_NEWS entries, newest last."""
    monkeypatch.setattr(publish_service, "MAX_NEWS", 3)
    net = PublishNet(ForumService, 2)
    net.connect(0, 1)
    grp = net.nodes[0].create("f", "")
    net.run(1)
    net.nodes[1].subscribe(grp)
    net.run(1)
    posts = [net.nodes[0].post(grp, f"t{i}", "x") for i in range(5)]
    net.run(2)
    news = net.nodes[1].news_after(0)
    assert len(news) == 3 and net.nodes[1].last_seq() == 5
    assert [n for n, _ in news] == [3, 4, 5]
    assert {m.msg_id for _, m in news} < set(posts)
    assert net.nodes[0].news_after(0) == []  # our own posts are not news


class _Transfers:
    """The transfer service as channel files use it."""

    def __init__(self) -> None:
        self.extra = self
        self.files: dict[Sha1Hash, tuple[str, int]] = {}
        self.downloads: dict[Sha1Hash, tuple[int, str]] = {}

    def add(self, file_hash, path, size) -> None:
        self.files[file_hash] = (path, size)

    def lookup(self, file_hash):
        return self.files.get(file_hash)

    def share_file(self, path) -> FileItem:
        data = open(path, "rb").read()
        file_hash = Sha1Hash(hashlib.sha1(data).digest())
        self.add(file_hash, str(path), len(data))
        return FileItem(len(data), file_hash, str(path).rsplit("/", 1)[-1])

    def download(self, file_hash, size, name) -> None:
        self.downloads[file_hash] = (size, name)


def test_channel_files_are_served_and_auto_downloaded(tmp_path) -> None:
    """The publisher serves an attached file by hash (again after a restart); a subscriber
    with auto-download fetches it, one without does not until asked."""
    dirs = [tmp_path / f"n{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
    net, grp = _channel_line(dirs)
    transfers = [_Transfers() for _ in range(3)]
    for node, t in zip(net.nodes, transfers, strict=True):
        node.files = ChannelFiles(node, t)
    net.nodes[2].files.set_auto_download(grp, True)
    path = tmp_path / "attachment.txt"
    path.write_bytes(b"channel file " * 100)
    item = net.nodes[0].files.attach(grp, path)
    post = net.nodes[0].post(grp, "with a file", "", (item,))
    assert transfers[0].lookup(item.hash) == (str(path.resolve()), item.size)
    net.run(2)
    assert transfers[2].downloads == {item.hash: (item.size, item.name)}
    assert transfers[1].downloads == {}
    assert net.nodes[1].files.download(grp, post) == [item]
    assert transfers[1].downloads == {item.hash: (item.size, item.name)}
    a = net.restart(0)
    again = _Transfers()
    a.files = ChannelFiles(a, again)
    assert again.lookup(item.hash) == (str(path.resolve()), item.size)
    assert not net.nodes[1].files.auto_download(grp)


def test_posting_needs_a_subscription_and_an_identity() -> None:
    """Unknown groups, unsubscribed groups and a node without identity are refused."""
    net = PublishNet(ForumService, 2)
    net.connect(0, 1)
    grp = net.nodes[0].create("f", "")
    net.run(1)
    with pytest.raises(PublishError):
        net.nodes[1].post(grp, "t", "x")
    with pytest.raises(PublishError):
        net.nodes[0].post(grp, "t", "x", parent=GxsMessageId(b"1" * 20))
    net.nodes[1].identities.own.clear()
    net.nodes[1].subscribe(grp)
    with pytest.raises(PublishError):
        net.nodes[1].post(grp, "t", "x")
    with pytest.raises(PublishError):
        net.nodes[1].mark_read(GxsMessageId(b"2" * 20))
