"""GXS tunnel (0x0028) and global router (0x0018) items against real-node captures.

The captures (``captures2``, README "Where to look") hold the distant chat alice -> carol and
the distant mail alice -> carol: the DH public keys travel in clear inside turtle generic
data (alice:349, carol:277), the global router's transaction chunk and its acknowledgements
(alice:420, carol:323, bob:743) carry the routed mail item.
"""

from __future__ import annotations

import pytest

import pqi
from pqi.items.grouter import (
    GRouterDataItem,
    GRouterFlags,
    GRouterTransactionAcknItem,
    GRouterTransactionChunkItem,
)
from pqi.items.gxstunnel import GxsTunnelDhPublicKeyItem
from pqi.items.turtle import TurtleGenericDataItem
from pqi.wire.errors import DecodeError, LimitExceededError
from pqi.wire.fields import GxsId
from services.gxs.security import verify_ok
from services.gxstunnel.crypto import CLEAR_PREFIX, DH_PRIME, tunnel_id
from tests.captures2_items import nodes, raw

pytestmark = pytest.mark.usefixtures("captures2")


def _gxs_id(name: str) -> GxsId:
    return GxsId.from_hex(nodes()[name]["gxs_id_signed"])


def _dh_item(node: str, line: int) -> tuple[TurtleGenericDataItem, GxsTunnelDhPublicKeyItem]:
    outer = pqi.decode(raw(node, line))
    assert isinstance(outer, TurtleGenericDataItem)
    assert outer.data[:8] == CLEAR_PREFIX
    inner = pqi.decode(outer.data[8:])
    assert isinstance(inner, GxsTunnelDhPublicKeyItem)
    return outer, inner


@pytest.mark.parametrize(("node", "line", "who"), [("alice", 349, "alice"),
                                                   ("carol", 277, "carol")])
def test_captured_dh_public_key(node: str, line: int, who: str) -> None:
    """Each end's DH item decodes, re-encodes byte for byte, is signed by its identity over
    the public value, and that value lies in RetroShare's group."""
    outer, item = _dh_item(node, line)
    assert pqi.encode(item) == outer.data[8:]
    assert item.signature.key_id == item.gxs_key.key_id == _gxs_id(who)
    assert verify_ok(item.public_key, item.gxs_key, item.signature)
    assert 1 < int.from_bytes(item.public_key, "big") < DH_PRIME - 1
    forged = item.public_key[:-1] + bytes([item.public_key[-1] ^ 1])
    assert not verify_ok(forged, item.gxs_key, item.signature)


def test_captured_distant_chat_id_is_the_tunnel_id() -> None:
    """The distant chat id alice's node gave is our tunnel id of the two identities."""
    chat = nodes()["alice"]["created"]["distant_chat_to_carol"]
    ours = tunnel_id(GxsId.from_hex(chat["from_gxs_id"]), GxsId.from_hex(chat["to_gxs_id"]))
    assert ours.hex() == chat["distant_chat_id"]
    assert tunnel_id(_gxs_id("carol"), _gxs_id("alice")) == tunnel_id(_gxs_id("alice"),
                                                                      _gxs_id("carol"))


def test_captured_grouter_chunk_and_ack() -> None:
    """The routed mail: one chunk holding the whole routed data item (to carol's identity,
    signed by alice's, encrypted), acknowledged by carol and bob with its propagation id."""
    chunk = pqi.decode(raw("alice", 420))
    assert isinstance(chunk, GRouterTransactionChunkItem)
    assert pqi.encode(chunk) == raw("alice", 420)
    assert chunk.chunk.start == 0 and chunk.chunk.total == len(chunk.chunk.data)
    data = pqi.decode(chunk.chunk.data)
    assert isinstance(data, GRouterDataItem)
    assert pqi.encode(data) == chunk.chunk.data
    assert data.destination_key == _gxs_id("carol")
    assert data.signature.key_id == _gxs_id("alice")
    assert data.flags == GRouterFlags.ENCRYPTED
    for node, line in (("carol", 323), ("bob", 743)):
        ack = pqi.decode(raw(node, line))
        assert isinstance(ack, GRouterTransactionAcknItem)
        assert ack.propagation_id == chunk.propagation_id
        assert pqi.encode(ack) == raw(node, line)


def test_chunk_longer_than_its_item_is_refused() -> None:
    """A chunk announcing more bytes than the item holds, or more than the bound, is a
    DecodeError, never a short read."""
    good = raw("alice", 420)
    head, body = good[:8], bytearray(good[8:])
    body[12:16] = (len(body)).to_bytes(4, "big")  # chunk_size beyond the end
    with pytest.raises(DecodeError):
        pqi.decode(head + bytes(body))
    body[12:16] = (0xFFFFFFFF).to_bytes(4, "big")
    with pytest.raises(LimitExceededError):
        pqi.decode(head + bytes(body))
