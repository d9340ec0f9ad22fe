# -*- test-case-name: tests.test_items_gxs_content -*-
"""The data items of channels (0x0217), forums (0x0215) and boards (0x0216, "Posted").

An NXS group or message item (`pqi.items.nxs`) carries its service's data item as an opaque
binary beside the metadata (`pqi.items.gxs`); signatures cover those exact bytes, so these
codecs reproduce RetroShare's bytes exactly (``rsgxschannelitems.cc``, ``rsgxsforumitems.cc``,
``rsposteditems.cc``, ``rsgxscommentitems.cc``).  A data item is a whole serialised item: the
8-byte item header (version 2, service, subtype, size), then its fields:

- channel group (0x02): description (string 0x00b3), image (``RsTlvImage`` 0x1060);
- channel post (0x03): body (string 0x0057), attached files (``RsTlvFileSet``), thumbnail;
- forum group (0x02): description, then the moderators (GXS id set 0x1025) and the pinned
  posts (message id set 0x1028), both absent in groups made before RetroShare 0.6.5;
- forum post (0x03): body;
- board group (0x02): description, image only when not empty;
- board post (0x03): link (string 0x0059), notes (0x0057), image only when not empty;
- comment (0xf1; channels and boards): text in a string TLV of type 1;
- vote (0xf2; channels and boards): a u32, `VOTE_UP` or `VOTE_DOWN`.

Which item a message is follows from the subtype; an optional part that was absent decodes as
None (or an empty image) and re-encodes absent, so every captured item round-trips.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from typing import Any, Final, Union

import construct as c

from pqi.items import ids
from pqi.wire import tlvtypes as tt
from pqi.wire.errors import EncodeError, InvalidValueError, TrailingBytesError
from pqi.wire.fields import GxsId, GxsMessageId, read_exact, u32
from pqi.wire.limits import MAX_SERIAL_SIZE
from pqi.wire.tlv import BinaryTLV, IdSetTLV, StringTLV, _read_tlv, nested_errors, tlv_header
from pqi.wire.tlvvalues import FileSet, FileSetTLV

__all__ = [
    "SUBTYPE_GROUP", "SUBTYPE_POST", "SUBTYPE_COMMENT", "SUBTYPE_VOTE", "VOTE_UP", "VOTE_DOWN",
    "TLV_STR_DESCR", "TLV_STR_LINK", "TLV_STR_COMMENT_TEXT", "TLV_GXSMSGIDSET", "TLV_IMAGE",
    "CONTENT_SERVICES", "Image", "ChannelGroup", "ChannelPost", "ForumGroup", "ForumPost",
    "BoardGroup", "BoardPost", "Comment", "Vote", "Content", "decode_content", "encode_content",
]

#: Subtypes of the data items (``RS_PKT_SUBTYPE_GXSCHANNEL_*``, ``..._GXSFORUM_*``,
#: ``..._POSTED_*``, ``..._GXSCOMMENT_*``).
SUBTYPE_GROUP: Final = 0x02
SUBTYPE_POST: Final = 0x03
SUBTYPE_COMMENT: Final = 0xF1
SUBTYPE_VOTE: Final = 0xF2
#: ``GXS_VOTE_UP`` / ``GXS_VOTE_DOWN``.
VOTE_UP: Final = 0x0002
VOTE_DOWN: Final = 0x0001

#: TLV types (``rstlvbase.h``; the comment text is typed 1, a literal in RetroShare).
TLV_STR_DESCR: Final = 0x00B3
TLV_STR_LINK: Final = 0x0059
TLV_STR_COMMENT_TEXT: Final = 0x0001
TLV_GXSMSGIDSET: Final = 0x1028
TLV_IMAGE: Final = 0x1060
_TLV_BIN_IMAGE: Final = 0x0130

#: The three services whose data items live here.
CONTENT_SERVICES: Final = (ids.SERVICE_CHANNELS, ids.SERVICE_FORUMS, ids.SERVICE_POSTED)

_ITEM_HEAD = struct.Struct(">BHBI")
_ITEM_VERSION: Final = 2


@dataclasses.dataclass(frozen=True)
class Image:
    """``RsTlvImage``: an image type (0 in practice) and the image bytes (PNG, JPEG...)."""

    image_type: int = 0
    data: bytes = b""


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """``RsGxsChannelGroupItem``: a channel's description and image."""

    description: str = ""
    image: Image = Image()


@dataclasses.dataclass(frozen=True)
class ChannelPost:
    """``RsGxsChannelPostItem``: a post's body, attached files and thumbnail."""

    body: str = ""
    files: FileSet = FileSet()
    thumbnail: Image = Image()


@dataclasses.dataclass(frozen=True)
class ForumGroup:
    """``RsGxsForumGroupItem``: description, moderators and pinned posts.

    ``admins`` and ``pinned`` are None in a group made before they existed (both absent).
    """

    description: str = ""
    admins: frozenset[GxsId] | None = frozenset()
    pinned: frozenset[GxsMessageId] | None = frozenset()


@dataclasses.dataclass(frozen=True)
class ForumPost:
    """``RsGxsForumMsgItem``: a thread start or a reply (the title is the metadata's name)."""

    body: str = ""


@dataclasses.dataclass(frozen=True)
class BoardGroup:
    """``RsGxsPostedGroupItem``: description and an image (None: not sent)."""

    description: str = ""
    image: Image | None = None


@dataclasses.dataclass(frozen=True)
class BoardPost:
    """``RsGxsPostedPostItem``: a link, notes, an image (None: not sent)."""

    link: str = ""
    notes: str = ""
    image: Image | None = None


@dataclasses.dataclass(frozen=True)
class Comment:
    """``RsGxsCommentItem``: a comment on a channel or board post (or on a comment)."""

    text: str = ""


@dataclasses.dataclass(frozen=True)
class Vote:
    """``RsGxsVoteItem``: `VOTE_UP` or `VOTE_DOWN` on a post or comment."""

    vote_type: int = VOTE_UP


Content = Union[ChannelGroup, ChannelPost, ForumGroup, ForumPost, BoardGroup, BoardPost,
                Comment, Vote]


class _ImageTLV(c.Construct):
    """``RsTlvImage``: a TLV holding the u32 image type and a binary TLV of the bytes."""

    _BODY = c.Struct("image_type" / u32, "data" / BinaryTLV(_TLV_BIN_IMAGE))

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Image:
        _, base, payload = _read_tlv(stream, path, TLV_IMAGE)
        sub = io.BytesIO(payload)
        with nested_errors(sub, base):
            body = self._BODY.parse_stream(sub)
        if sub.tell() != len(payload):
            raise TrailingBytesError("bytes after the image data", offset=base + sub.tell())
        return Image(body.image_type, body.data)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        body = self._BODY.build({"image_type": obj.image_type, "data": obj.data})
        stream.write(tlv_header(TLV_IMAGE, len(body)) + body)
        return obj


ImageTLV = _ImageTLV()

_DESCR = StringTLV(TLV_STR_DESCR)
_MSG = StringTLV(tt.STR_MSG)
#: (service, subtype) -> (class, mandatory fields, optional trailing fields).  Optional fields
#: are read only while bytes remain and written only when not None (RetroShare's rule for
#: forum lists, board images); an empty board image is not written either.
_LAYOUTS: Final[dict[tuple[int, int], tuple[type, c.Struct, tuple[tuple[str, Any], ...]]]] = {
    (ids.SERVICE_CHANNELS, SUBTYPE_GROUP): (
        ChannelGroup, c.Struct("description" / _DESCR, "image" / ImageTLV), ()),
    (ids.SERVICE_CHANNELS, SUBTYPE_POST): (
        ChannelPost, c.Struct("body" / _MSG, "files" / FileSetTLV, "thumbnail" / ImageTLV), ()),
    (ids.SERVICE_FORUMS, SUBTYPE_GROUP): (
        ForumGroup, c.Struct("description" / _DESCR),
        (("admins", IdSetTLV(tt.GXSIDSET, GxsId)),
         ("pinned", IdSetTLV(TLV_GXSMSGIDSET, GxsMessageId)))),
    (ids.SERVICE_FORUMS, SUBTYPE_POST): (ForumPost, c.Struct("body" / _MSG), ()),
    (ids.SERVICE_POSTED, SUBTYPE_GROUP): (
        BoardGroup, c.Struct("description" / _DESCR), (("image", ImageTLV),)),
    (ids.SERVICE_POSTED, SUBTYPE_POST): (
        BoardPost, c.Struct("link" / StringTLV(TLV_STR_LINK), "notes" / _MSG),
        (("image", ImageTLV),)),
}
for _svc in (ids.SERVICE_CHANNELS, ids.SERVICE_POSTED):
    _LAYOUTS[_svc, SUBTYPE_COMMENT] = (
        Comment, c.Struct("text" / StringTLV(TLV_STR_COMMENT_TEXT)), ())
    _LAYOUTS[_svc, SUBTYPE_VOTE] = (Vote, c.Struct("vote_type" / u32), ())

_SUBTYPES: Final = {ChannelGroup: SUBTYPE_GROUP, ChannelPost: SUBTYPE_POST,
                    ForumGroup: SUBTYPE_GROUP, ForumPost: SUBTYPE_POST,
                    BoardGroup: SUBTYPE_GROUP, BoardPost: SUBTYPE_POST,
                    Comment: SUBTYPE_COMMENT, Vote: SUBTYPE_VOTE}


def decode_content(service: int, data: bytes) -> Content:
    """Decode the data binary of a group or message of ``service``; `DecodeError` otherwise."""
    stream = io.BytesIO(bytes(data))
    version, svc, subtype, size = _ITEM_HEAD.unpack(read_exact(stream, 8, "gxs_data"))
    if svc != service or size != len(data) or version != _ITEM_VERSION:
        raise InvalidValueError(f"not a data item of service 0x{service:04x} (version "
                                f"{version}, service 0x{svc:04x}, {size} of {len(data)} bytes)",
                                field="gxs_data", offset=0)
    layout = _LAYOUTS.get((svc, subtype))
    if layout is None:
        raise InvalidValueError(f"no data item 0x{subtype:02x} in service 0x{svc:04x}",
                                field="gxs_data.subtype", offset=3)
    cls, body, optional = layout
    with nested_errors(stream, 0):
        fields = dict(body.parse_stream(stream))
        for name, con in optional:
            fields[name] = con.parse_stream(stream) if stream.tell() < len(data) else None
    if stream.tell() != len(data):
        raise TrailingBytesError(f"{len(data) - stream.tell()} bytes after the last field of "
                                 f"{cls.__name__}", offset=stream.tell())
    fields.pop("_io", None)
    if cls is ForumGroup and (fields["admins"] is None) != (fields["pinned"] is None):
        raise InvalidValueError("forum group with moderators but no pinned posts",
                                field="gxs_data.pinned", offset=stream.tell())
    return cls(**fields)  # type: ignore[no-any-return]


def encode_content(service: int, content: Content) -> bytes:
    """The data binary of ``content`` as ``service`` sends it."""
    layout = _LAYOUTS.get((service, _SUBTYPES.get(type(content), -1)))
    if layout is None or layout[0] is not type(content):
        raise EncodeError(f"{type(content).__name__} is no data item of service "
                          f"0x{service:04x}")
    cls, body, optional = layout
    if isinstance(content, ForumGroup) and (content.admins is None) != (content.pinned is None):
        raise EncodeError("a forum group has both moderators and pinned posts, or neither")
    try:
        out = body.build({f.name: getattr(content, f.name) for f in dataclasses.fields(cls)
                          if f.name not in dict(optional)})
        for name, con in optional:
            value = getattr(content, name)
            if value is None or (isinstance(value, Image) and not value.data
                                 and not value.image_type):
                continue
            out += con.build(value)
    except (c.ConstructError, struct.error, ValueError, TypeError) as e:
        raise EncodeError(f"{cls.__name__}: {e!r}") from e
    size = 8 + len(out)
    if size > MAX_SERIAL_SIZE:
        raise EncodeError(f"{cls.__name__} of {size} bytes is above MAX_SERIAL_SIZE")
    return _ITEM_HEAD.pack(_ITEM_VERSION, service, _SUBTYPES[cls], size) + out
