# -*- test-case-name: tests.test_publish_making -*-
"""Making signed channel, forum and board groups and messages, as RetroShare makes them.

Sans-IO: values in, signed bytes out.  What the captured real groups show (captures2:
``capture-channel``, ``capture-forum``, ``capture-board``), and what we make the same way:

- a group has group flags PUBLIC (0x4), circle type PUBLIC (1), sign flags 0x208, an admin
  and a publish key pair (the group id is the admin key's id), and an author identity that
  signs it beside the admin key;
- a message's id is the hash of its signed bytes (`services.gxs.security`); the service's
  policy says who signs: channel posts the publish key (only who holds it can post), channel
  comments and every forum and board message the author identity;
- a new message's original id is its own id; an edit (``createPostV2`` with an original id)
  carries the id of the first version as original id, so every version of a post names the
  same first version, and the newest version is the one shown;
- a forum reply's parent is the message it answers and its thread is the parent's thread
  (RetroShare copies ``mThreadId`` from the parent: a reply to a thread start, whose thread
  id is null, has a null thread id too); a comment or vote names the post as thread and
  the post or comment it is about as parent;
- a group update (new moderators or pinned posts) is the same group re-signed by its admin
  key with a later publish time.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from pqi.items.gxs import KEY_DISTRIB_ADMIN, KEY_DISTRIB_PUBLISH, MAX_GROUP_NAME, GrpMeta, MsgMeta
from pqi.items.gxs_content import Content, encode_content
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, GxsMessageId
from services.gxs.policy import policy_for
from services.gxs.security import (
    FLAG_PRIVACY_PUBLIC,
    KeyPair,
    generate_key_pair,
    new_group,
    sign_message,
)

__all__ = ["NewGroup", "make_group", "update_group", "make_message", "CIRCLE_TYPE_PUBLIC",
           "GROUP_SIGN_FLAGS", "MAX_TITLE"]

#: ``GXS_CIRCLE_TYPE_PUBLIC``.
CIRCLE_TYPE_PUBLIC: Final = 1
#: The sign flags of every captured channel, forum and board group.
GROUP_SIGN_FLAGS: Final = 0x208
#: Longest message title we make (the group name bound of RetroShare applies to groups only;
#: titles are bounded here so one post cannot carry a large text in its metadata).
MAX_TITLE: Final = 512


@dataclasses.dataclass(frozen=True)
class NewGroup:
    """A group we made: its data and signed metadata, and its two key pairs."""

    grp: bytes
    meta: GrpMeta
    admin: KeyPair
    publish: KeyPair

    @property
    def grp_id(self) -> GxsId:
        return self.meta.group_id

    def private_keys(self) -> tuple[NxsRsaKey, NxsRsaKey]:
        return (self.admin.private, self.publish.private)


def make_group(service: int, name: str, content: Content, now: int,
               author: NxsRsaKey | None = None, admin: KeyPair | None = None,
               publish: KeyPair | None = None) -> NewGroup:
    """A new group of ``service`` named ``name``, signed by fresh keys (or those given) and
    by the ``author`` identity's private key when given."""
    if not name or len(name) > MAX_GROUP_NAME:
        raise ValueError(f"a group name has 1 to {MAX_GROUP_NAME} characters")
    admin = admin or generate_key_pair(now, KEY_DISTRIB_ADMIN)
    publish = publish or generate_key_pair(now, KEY_DISTRIB_PUBLISH)
    if not (admin.public.key_flags & KEY_DISTRIB_ADMIN
            and publish.public.key_flags & KEY_DISTRIB_PUBLISH):
        raise ValueError("the admin pair needs the ADMIN flag, the publish pair PUBLISH")
    grp = encode_content(service, content)
    meta = GrpMeta(group_id=admin.key_id, name=name, group_flags=FLAG_PRIVACY_PUBLIC,
                   publish_ts=now, circle_type=CIRCLE_TYPE_PUBLIC,
                   author_id=author.key_id if author is not None else GxsId.null(),
                   sign_flags=GROUP_SIGN_FLAGS)
    return NewGroup(grp, new_group(grp, meta, admin, publish, author), admin, publish)


def update_group(service: int, old: GrpMeta, content: Content, admin_private: NxsRsaKey,
                 now: int, author: NxsRsaKey | None = None) -> tuple[bytes, GrpMeta]:
    """The group re-signed with new data by its admin key, published later than ``old``."""
    if admin_private.key_id != old.group_id:
        raise ValueError("only the group's admin key can update it")
    admin = KeyPair(next(k for k in old.keys.public_keys() if k.key_id == old.group_id),
                    admin_private)
    publish_pub = next((k for k in old.keys.public_keys() if k.key_id != old.group_id), None)
    # Only the public half goes into the key set (`new_group` reads ``publish.public``).
    publish = None if publish_pub is None else KeyPair(publish_pub, publish_pub)
    if old.author_id != GxsId.null() and (author is None or author.key_id != old.author_id):
        raise ValueError("the group's author identity must sign its update")
    grp = encode_content(service, content)
    meta = dataclasses.replace(old, publish_ts=max(now, old.publish_ts + 1))
    return grp, new_group(grp, meta, admin, publish, author)


def make_message(service: int, group: GrpMeta, content: Content, now: int, *, title: str = "",
                 author: NxsRsaKey | None = None, publish: NxsRsaKey | None = None,
                 parent: GxsMessageId | None = None, thread: GxsMessageId | None = None,
                 original: GxsMessageId | None = None) -> tuple[bytes, MsgMeta]:
    """A signed message of ``group``: the signatures its service's policy asks for.

    ``author``/``publish`` are the private keys that sign; ``original`` the first version's
    id when this is an edit.
    """
    if len(title) > MAX_TITLE:
        raise ValueError(f"a title has at most {MAX_TITLE} characters")
    msg = encode_content(service, content)
    null = GxsMessageId.null()
    meta = MsgMeta(group_id=group.group_id, thread_id=thread or null, parent_id=parent or null,
                   orig_msg_id=original or null,
                   author_id=author.key_id if author is not None else GxsId.null(),
                   name=title, publish_ts=now)
    signed = sign_message(msg, meta, group, policy_for(service), publish_key=publish,
                          author_key=author)
    return msg, signed

