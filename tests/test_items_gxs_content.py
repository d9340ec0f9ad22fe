"""Channel, forum and board data items: captured bytes round-trip, generated values too.

Every group and message data binary inside the channel (0x0217), forum (0x0215) and board
(0x0216) NXS items that real RetroShare 0.6.7 nodes exchanged in captures2 must decode to the
fields the README names and re-encode byte-identically; garbage is a `DecodeError`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pqi
from pqi.items import ids as service_ids
from pqi.items.gxs_content import (
    CONTENT_SERVICES,
    VOTE_UP,
    BoardGroup,
    BoardPost,
    ChannelGroup,
    ChannelPost,
    Comment,
    ForumGroup,
    ForumPost,
    Image,
    Vote,
    decode_content,
    encode_content,
)
from pqi.items.nxs import NxsGrpItem, NxsMsgItem
from pqi.wire.errors import DecodeError, EncodeError
from pqi.wire.fields import GxsId, GxsMessageId, Sha1Hash
from pqi.wire.tlvvalues import FileItem, FileSet
from tests.captures2_items import items
from tests.strategies_items import ids, safe_text

CHANNELS, FORUMS, BOARDS = (service_ids.SERVICE_CHANNELS, service_ids.SERVICE_FORUMS,
                            service_ids.SERVICE_POSTED)


def _captured() -> list[tuple[int, bytes]]:
    out = []
    for _, _, data in items(frozenset(CONTENT_SERVICES)):
        it = pqi.decode(data)
        if isinstance(it, NxsGrpItem):
            out.append((it.SERVICE, it.grp))
        elif isinstance(it, NxsMsgItem):
            out.append((it.SERVICE, it.msg))
    return out


def test_every_captured_data_item_round_trips() -> None:
    """All 42 group and message binaries of the three services re-encode byte-identically."""
    captured = _captured()
    assert len(captured) == 42
    for service, blob in captured:
        assert encode_content(service, decode_content(service, blob)) == blob


def test_captured_values_are_the_readme_objects() -> None:
    """The distinct captured items are the channel, forum and board the README lists."""
    found = {(s, decode_content(s, b)) for s, b in _captured()}
    attachment = FileItem(89, Sha1Hash.from_hex("7c4b3619a4ef959af61ccbfe399e46b4d3e8a83e"),
                          "channel-attachment.txt")
    expected = {
        (CHANNELS, ChannelGroup("alice's channel ✓", Image(0, b""))),
        (CHANNELS, ChannelPost("<p>Post body with an attachment — Grüße</p>",
                               FileSet((attachment,)), Image())),
        (CHANNELS, Comment("bob's comment on the channel post ✓")),
        (FORUMS, ForumGroup("bob's forum ✓", frozenset(), frozenset())),
        (FORUMS, ForumPost("<p>Opening post — ¡hola!</p>")),
        (FORUMS, ForumPost("<p>bob replies to himself</p>")),
        (FORUMS, ForumPost("<p>alice replies — Grüße</p>")),
        (BOARDS, BoardGroup("alice's board", None)),
        (BOARDS, BoardPost("https://retroshare.cc", "notes with ✓", None)),
        (BOARDS, Vote(VOTE_UP)),
    }
    assert found == expected


_images = st.builds(Image, st.integers(0, 2**32 - 1), st.binary(max_size=64))
_files = st.builds(FileSet, st.lists(st.builds(
    FileItem, st.integers(0, 2**64 - 1), ids(Sha1Hash), safe_text()), max_size=3).map(tuple),
    safe_text(), safe_text())
_contents = st.one_of(
    st.tuples(st.just(CHANNELS), st.builds(ChannelGroup, safe_text(), _images)),
    st.tuples(st.just(CHANNELS), st.builds(ChannelPost, safe_text(), _files, _images)),
    st.tuples(st.just(FORUMS), st.builds(
        ForumGroup, safe_text(), st.frozensets(ids(GxsId), max_size=4),
        st.frozensets(ids(GxsMessageId), max_size=4))),
    st.tuples(st.just(FORUMS), st.builds(ForumGroup, safe_text(), st.none(), st.none())),
    st.tuples(st.just(FORUMS), st.builds(ForumPost, safe_text())),
    st.tuples(st.just(BOARDS), st.builds(BoardGroup, safe_text(), st.none())),
    st.tuples(st.just(BOARDS), st.builds(BoardPost, safe_text(), safe_text(), st.none())),
    st.tuples(st.sampled_from((CHANNELS, BOARDS)), st.builds(Comment, safe_text())),
    st.tuples(st.sampled_from((CHANNELS, BOARDS)),
              st.builds(Vote, st.integers(0, 2**32 - 1))),
)


@given(_contents)
def test_generated_values_round_trip(case: tuple[int, object]) -> None:
    """Any value of any of the layouts encodes and decodes to itself."""
    service, value = case
    assert decode_content(service, encode_content(service, value)) == value  # type: ignore


@given(st.sampled_from((BOARDS,)), safe_text(), _images.filter(lambda i: bool(i.data)))
def test_board_image_is_sent_only_when_not_empty(service: int, notes: str, image: Image) -> None:
    """A board post with an image carries it; an empty image is left out, as RetroShare does."""
    with_image = BoardPost("l", notes, image)
    assert decode_content(service, encode_content(service, with_image)) == with_image
    empty = encode_content(service, BoardPost("l", notes, Image()))
    assert decode_content(service, empty) == BoardPost("l", notes, None)


def test_bad_input_is_a_decode_error() -> None:
    """Wrong service, wrong size, unknown subtype, truncation and trailing bytes are refused."""
    good = encode_content(FORUMS, ForumPost("hello"))
    for bad in (good[:-1], good + b"\0", good[:4] + b"\0\0\0\1" + good[8:],
                bytes([2, 2, 0x15, 0x77]) + good[4:], b""):
        with pytest.raises(DecodeError):
            decode_content(FORUMS, bad)
    with pytest.raises(DecodeError):
        decode_content(CHANNELS, good)
    with pytest.raises(DecodeError):
        decode_content(FORUMS, encode_content(FORUMS, ForumGroup("x", None, None)) +
                       bytes.fromhex("102500000006"))


def test_items_a_service_lacks_are_an_encode_error() -> None:
    """Forums have no comments or votes; a half-present forum list cannot be written."""
    with pytest.raises(EncodeError):
        encode_content(FORUMS, Comment("no"))
    with pytest.raises(EncodeError):
        encode_content(FORUMS, ForumGroup("x", frozenset(), None))
