"""Making channel, forum and board groups and messages: RetroShare's layout and rules.

The captured real groups and posts (captures2) check with our code under each service's
policy; what we make has the captured groups' flags and keys and checks with the same code;
a post signed by any key but the group's publish key, or a comment without its author's
signature, fails; the captured posts' data, decoded and re-encoded by us, keep their ids.
"""

from __future__ import annotations

import pytest

from pqi.items import ids as service_ids
from pqi.items.gxs import (
    KEY_DISTRIB_ADMIN,
    KEY_DISTRIB_PUBLISH,
    SIGN_TYPE_ADMIN,
    SIGN_TYPE_IDENTITY,
    SIGN_TYPE_PUBLISH,
)
from pqi.items.gxs_content import (
    BoardGroup,
    BoardPost,
    ChannelGroup,
    ChannelPost,
    Comment,
    ForumGroup,
    ForumPost,
    Vote,
    decode_content,
    encode_content,
)
from services.gxs.policy import policy_for
from services.gxs.security import (
    KeyPair,
    SignatureError,
    check_group,
    check_message,
    key_pair_from,
    load_private,
    message_id,
)
from services.publish.making import (
    CIRCLE_TYPE_PUBLIC,
    GROUP_SIGN_FLAGS,
    make_group,
    make_message,
    update_group,
)
from tests.gxs_fixtures import captured_groups, captured_messages, identity_keys, key_pairs

CHANNELS, FORUMS, BOARDS = (service_ids.SERVICE_CHANNELS, service_ids.SERVICE_FORUMS,
                            service_ids.SERVICE_POSTED)
NOW = 1_700_000_500


def _publish_pair(i: int) -> KeyPair:
    """Pool key ``i`` as a publish key pair (the pool holds admin pairs)."""
    return key_pair_from(load_private(key_pairs()[i].private), NOW - 100, KEY_DISTRIB_PUBLISH)


def _captured(service: int):
    groups = {g: (it, meta) for (s, g), (it, meta) in captured_groups().items() if s == service}
    msgs = [(it, meta) for (s, _), (it, meta) in captured_messages().items() if s == service]
    return groups, msgs


@pytest.mark.parametrize("service", [CHANNELS, FORUMS, BOARDS])
def test_captured_groups_and_messages_check_under_the_service_policy(service: int) -> None:
    """Every captured group and message of the service passes our checks, and its data,
    decoded and re-encoded, gives back the captured message id."""
    groups, msgs = _captured(service)
    assert len(groups) == 1 and msgs
    lookup = identity_keys().get
    for grp_id, (it, meta) in groups.items():
        check_group(it.grp, meta, grp_id, policy_for(service), lookup)
        assert (meta.sign_flags, meta.circle_type, meta.group_flags) == (
            GROUP_SIGN_FLAGS, CIRCLE_TYPE_PUBLIC, 0x4)
    for it, meta in msgs:
        group = groups[meta.group_id][1]
        check_message(it.msg, meta, it.msg_id, group, policy_for(service), lookup)
        again = encode_content(service, decode_content(service, it.msg))
        assert message_id(again, meta) == it.msg_id


def test_captured_channel_post_is_publish_signed_and_comment_author_signed() -> None:
    """The real channel post carries only the publish signature, bob's comment only his."""
    _, msgs = _captured(CHANNELS)
    kinds = {type(decode_content(CHANNELS, it.msg)): meta for it, meta in msgs}
    assert [t for t, _ in kinds[ChannelPost].signatures.signatures] == [SIGN_TYPE_PUBLISH]
    assert [t for t, _ in kinds[Comment].signatures.signatures] == [SIGN_TYPE_IDENTITY]


def test_a_post_in_the_captured_channel_needs_alices_publish_key() -> None:
    """A post made for the real channel with any other key fails the check every node runs."""
    groups, _ = _captured(CHANNELS)
    (group,) = (meta for _, meta in groups.values())
    other = key_pairs()[0]
    msg, meta = make_message(CHANNELS, group, ChannelPost("not alice"), group.publish_ts + 60,
                             title="forged", publish=other.private)
    with pytest.raises(SignatureError, match="publish signature"):
        check_message(msg, meta, meta.msg_id, group, policy_for(CHANNELS))


@pytest.mark.parametrize("service,content", [
    (CHANNELS, ChannelGroup("c")), (FORUMS, ForumGroup("f")), (BOARDS, BoardGroup("b"))])
def test_groups_we_make_look_like_the_captured_ones(service: int, content) -> None:
    """Flags, circle, sign flags, key kinds and signatures as the captured groups have them."""
    author = key_pairs()[1]
    new = make_group(service, "name", content, NOW, author.private, key_pairs()[2],
                     _publish_pair(3))
    _, real = next(iter(_captured(service)[0].values()))
    for field in ("group_flags", "circle_type", "sign_flags", "authen_flags", "api_version"):
        assert getattr(new.meta, field) == getattr(real, field), field
    assert sorted(k.key_flags for k in new.meta.keys.keys) == sorted(
        k.key_flags for k in real.keys.keys) == [0x21, 0x41]
    assert [t for t, _ in new.meta.signatures.signatures] == [SIGN_TYPE_IDENTITY,
                                                              SIGN_TYPE_ADMIN]
    assert new.grp_id == key_pairs()[2].key_id
    check_group(new.grp, new.meta, new.grp_id, policy_for(service),
                {author.key_id: author.public}.get)
    assert {k.key_flags & (KEY_DISTRIB_ADMIN | KEY_DISTRIB_PUBLISH)
            for k in new.private_keys()} == {KEY_DISTRIB_ADMIN, KEY_DISTRIB_PUBLISH}


def test_messages_we_make_check_and_need_the_right_keys() -> None:
    """Channel posts need the publish key, comments and votes an author; forum and board
    messages an author; each checks with the same code as captured ones."""
    author = key_pairs()[1]
    lookup = {author.key_id: author.public}.get
    chan = make_group(CHANNELS, "c", ChannelGroup("c"), NOW, author.private, key_pairs()[2],
                      _publish_pair(3))
    msg, post = make_message(CHANNELS, chan.meta, ChannelPost("p"), NOW,
                             publish=chan.publish.private)
    check_message(msg, post, post.msg_id, chan.meta, policy_for(CHANNELS), lookup)
    assert post.orig_msg_id == post.msg_id
    for content in (Comment("c"), Vote()):
        m, meta = make_message(CHANNELS, chan.meta, content, NOW, author=author.private,
                               parent=post.msg_id, thread=post.msg_id)
        check_message(m, meta, meta.msg_id, chan.meta, policy_for(CHANNELS), lookup)
        with pytest.raises(SignatureError):
            make_message(CHANNELS, chan.meta, content, NOW, parent=post.msg_id)
    with pytest.raises(SignatureError):
        make_message(CHANNELS, chan.meta, ChannelPost("p"), NOW)
    for service, group, content in ((FORUMS, ForumGroup("f"), ForumPost("x")),
                                    (BOARDS, BoardGroup("b"), BoardPost("l", "n"))):
        g = make_group(service, "g", group, NOW, author.private, key_pairs()[4],
                       _publish_pair(5))
        m, meta = make_message(service, g.meta, content, NOW, author=author.private)
        check_message(m, meta, meta.msg_id, g.meta, policy_for(service), lookup)
        with pytest.raises(SignatureError):
            make_message(service, g.meta, content, NOW)


def test_an_edit_names_the_first_version_and_a_group_update_keeps_its_keys() -> None:
    """An edit's original id is the first version's; an update is re-signed by the admin
    key, later, with the same keys, and fails with another admin key."""
    author = key_pairs()[1]
    lookup = {author.key_id: author.public}.get
    forum = make_group(FORUMS, "f", ForumGroup("f"), NOW, author.private, key_pairs()[2],
                       _publish_pair(3))
    _, first = make_message(FORUMS, forum.meta, ForumPost("1"), NOW, author=author.private)
    m2, second = make_message(FORUMS, forum.meta, ForumPost("2"), NOW + 1,
                              author=author.private, original=first.msg_id)
    assert second.orig_msg_id == first.msg_id != second.msg_id
    check_message(m2, second, second.msg_id, forum.meta, policy_for(FORUMS), lookup)
    pinned = ForumGroup("f", frozenset(), frozenset({first.msg_id}))
    grp, meta = update_group(FORUMS, forum.meta, pinned, forum.admin.private, NOW,
                             author.private)
    assert meta.publish_ts == NOW + 1 and meta.keys == forum.meta.keys
    check_group(grp, meta, forum.grp_id, policy_for(FORUMS), lookup)
    assert decode_content(FORUMS, grp) == pinned
    with pytest.raises(ValueError):
        update_group(FORUMS, forum.meta, pinned, key_pairs()[4].private, NOW, author.private)
    with pytest.raises(ValueError):
        update_group(FORUMS, forum.meta, pinned, forum.admin.private, NOW)


def test_names_titles_and_key_kinds_are_checked() -> None:
    """Group names follow RetroShare's 50-character limit, titles have ours; the keys given
    must be an admin and a publish pair."""
    with pytest.raises(ValueError):
        make_group(FORUMS, "f", ForumGroup(), NOW, None, key_pairs()[2], key_pairs()[3])
    with pytest.raises(ValueError):
        make_group(FORUMS, "x" * 51, ForumGroup(), NOW, None, key_pairs()[2], _publish_pair(3))
    forum = make_group(FORUMS, "x" * 50, ForumGroup(), NOW, None, key_pairs()[2],
                       _publish_pair(3))
    with pytest.raises(ValueError):
        make_message(FORUMS, forum.meta, ForumPost(), NOW, title="t" * 513,
                     author=key_pairs()[1].private)
    assert forum.meta.name == "x" * 50
