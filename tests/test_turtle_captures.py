"""The turtle items real RetroShare 0.6.7 nodes exchanged (campaigns 1 and 2) against our
codecs, tunnel id prints and end-to-end crypto.

Campaign 2's 2 MiB file went carol -> bob -> alice through a tunnel dug for H(H): its
``GENERIC_DATA`` payloads must decrypt with the key derived from the real hash into file
items that reassemble the file, and re-encrypting with the captured nonces must give the
captured bytes.  A node's per-session bias is a secret; carol's was recovered once by
exhaustive search over the 2^32 seeds for the one that turns both tunnel requests she
answered into the tunnel ids she sent (only one seed does), and her two own tunnel requests,
which played no part in that search, must then follow from our prints.  bob's depth rule is
checked from the low bits of his bias that one of his forwards reveals, and his whole bias
(recovered from the two forwards of alice's requests) must give his three other forwards
and the tunnel he answered himself.
"""

from __future__ import annotations

import hashlib
import json

import pytest

import pqi
from pqi.items.turtle import (
    TurtleChunkCrcItem,
    TurtleFileDataItem,
    TurtleFileMapItem,
    TurtleFileMapRequestItem,
    TurtleFileRequestItem,
    TurtleGenericDataItem,
    TurtleOpenTunnelItem,
    TurtleTunnelOkItem,
)
from pqi.wire.fields import Sha1Hash, SslId
from services.turtle import crypto, fileprint

FILE_SHA1 = "25551db2171613d122d96b4340359571aa0ead46"
ALICE = SslId.from_hex("687a0fdd62388db640489a001087f376")
BOB = SslId.from_hex("ead234bddd951cbca7eb41e7177909c5")
CAROL = SslId.from_hex("11940c40ff3830db0ea6ec839a50218e")
#: carol's session bias, recovered from one answered request (see the module docstring);
#: the tests check it against her other captured values.
CAROL_BIAS = 0xA810B9E2
#: bob's, recovered the same way from two of his forwards (alice's two requests via carol).
BOB_BIAS = 0xA97AAF0E


def regenerate(label: bytes, size: int) -> bytes:
    """The README's rule: SHA-256(label + i as 8 bytes BE) for i = 0, 1, ..., cut to size."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(label + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:size])


def _turtle_lines(folder, node):
    out = []
    with open(folder / f"{node}.items.jsonl") as f:
        for number, line in enumerate(f, 1):
            d = json.loads(line)
            if d["service"] == "0x0014":
                out.append((number, d["dir"], SslId.from_hex(d["peer"]),
                            bytes.fromhex(d["hex"])))
    return out


@pytest.fixture(scope="module")
def turtle2(captures2):
    return {node: _turtle_lines(captures2, node) for node in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def file_hash(captures2) -> Sha1Hash:
    nodes = json.loads((captures2 / "nodes.json").read_text())
    return Sha1Hash.from_hex(nodes["carol"]["created"]["shared_file"]["sha1"])


def test_every_captured_turtle_item_round_trips(captures, captures2, turtle2):
    """Each turtle item of both campaigns decodes and re-encodes to the same bytes."""
    count = 0
    for folder in (captures, captures2):
        for node in ("alice", "bob", "carol"):
            for number, _, _, raw in _turtle_lines(folder, node):
                assert pqi.encode(pqi.decode(raw)) == raw, f"{folder.name}/{node}:{number}"
                count += 1
    assert count == sum(len(v) for v in turtle2.values()) + 4


def test_tunnel_hash_is_the_hash_of_the_file_hash(turtle2, file_hash):
    """alice:615 dug for SHA-1(real hash), never the real hash (nodes.json has the latter)."""
    number, _, _, raw = next(x for x in turtle2["alice"] if x[0] == 615)
    item = pqi.decode(raw)
    assert isinstance(item, TurtleOpenTunnelItem)
    assert item.file_hash == crypto.hash_of_hash(file_hash)
    assert item.file_hash != file_hash


def _open_tunnels(lines, direction):
    return [(n, p, pqi.decode(raw)) for n, d, p, raw in lines
            if d == direction and raw[3] == 0x03]


def test_serving_node_tunnel_ids(turtle2):
    """carol answered two tunnels (the file's and distant chat's); with her bias our
    ``generatePersonalFilePrint`` gives both tunnel ids she sent in TUNNEL_OK."""
    answers = {pqi.decode(raw).request_id: pqi.decode(raw).tunnel_id
               for _, d, _, raw in turtle2["carol"] if d == "out" and raw[3] == 0x04}
    checked = 0
    for _, _, req in _open_tunnels(turtle2["carol"], "in"):
        if req.request_id in answers:
            want = answers[req.request_id]
            assert fileprint.serving_tunnel_id(req.file_hash, CAROL, CAROL_BIAS,
                                               req.partial_tunnel_id) == want
            checked += 1
    assert checked == 2


def test_relay_depth_rule_matches_one_session_bias(turtle2):
    """bob forwarded five tunnel requests; at bob:829 -> bob:830 a depth-1 request left at
    depth 1 (the no-increment rule, ``(bias ^ partial) & 7 == 6``).  That one observation
    fixes the low three bits of bob's bias; with them our rule predicts the depth of every
    other forward: +1 for alice's two, unchanged for carol's two (bob:942, bob:1295)."""
    by_request: dict[int, dict[str, object]] = {}
    lines = {}
    for n, d, _, raw in turtle2["bob"]:
        if raw[3] == 0x03:
            item = pqi.decode(raw)
            by_request.setdefault(item.request_id, {})[d] = item
            lines[(item.request_id, d)] = n
    pairs = [(v["in"], v["out"]) for v in by_request.values() if len(v) == 2]
    assert len(pairs) == 5
    first = next(p for p in pairs if lines[(p[0].request_id, "in")] == 829)
    assert first[0].depth == first[1].depth == 1
    low3 = 6 ^ (first[0].partial_tunnel_id & 7)
    outcome = {}
    for got, sent in pairs:
        shifted = got.depth == 1 and ((low3 ^ got.partial_tunnel_id) & 7) == 6
        assert sent.depth == (got.depth if shifted else got.depth + 1)
        outcome[lines[(sent.request_id, "out")]] = shifted
    assert outcome == {617: False, 830: True, 942: True, 1087: False, 1295: True}


def test_relay_partial_ids_and_the_tunnel_bob_served(turtle2):
    """With bob's bias our relay print turns each incoming partial id into the one bob sent,
    for all five forwards (two of them gave the bias; three did not), and our serving print
    gives the tunnel id of the TUNNEL_OK bob answered himself (bob:1202 -> bob:1203)."""
    by_request: dict[int, dict[str, TurtleOpenTunnelItem]] = {}
    for _, d, _, raw in turtle2["bob"]:
        if raw[3] == 0x03:
            item = pqi.decode(raw)
            by_request.setdefault(item.request_id, {})[d] = item
    pairs = [(v["in"], v["out"]) for v in by_request.values() if len(v) == 2]
    assert len(pairs) == 5
    for got, sent in pairs:
        assert fileprint.relay_partial_id(got.file_hash, BOB, BOB_BIAS,
                                          got.partial_tunnel_id) == sent.partial_tunnel_id
    assert BOB_BIAS & 7 == 6  # the low bits the depth rule showed
    lines = {n: pqi.decode(raw) for n, _, _, raw in turtle2["bob"] if n in (1202, 1203)}
    req, ok = lines[1202], lines[1203]
    assert isinstance(ok, TurtleTunnelOkItem) and ok.request_id == req.request_id
    assert fileprint.serving_tunnel_id(req.file_hash, BOB, BOB_BIAS,
                                       req.partial_tunnel_id) == ok.tunnel_id


def test_asker_partial_ids(turtle2):
    """carol's own tunnel requests (carol:388, 562): the first print and the relay print of
    our code, with her bias, give the partial id she sent."""
    own = [(n, req) for n, _, req in _open_tunnels(turtle2["carol"], "out")]
    assert [n for n, _ in own] == [388, 562]
    for _, req in own:
        first = fileprint.first_partial_id(req.file_hash, CAROL, CAROL_BIAS)
        assert fileprint.relay_partial_id(req.file_hash, CAROL, CAROL_BIAS,
                                          first) == req.partial_tunnel_id
        assert req.depth == 1


def test_virtual_peer_id_shape():
    """A virtual peer id is the tunnel id big endian then twelve zero bytes, both ways."""
    vp = fileprint.virtual_peer_id(0xEB4BEDC5)
    assert bytes(vp) == bytes.fromhex("eb4bedc5") + bytes(12)
    assert fileprint.tunnel_of_virtual_peer(vp) == 0xEB4BEDC5
    assert fileprint.tunnel_of_virtual_peer(SslId(b"\x01" * 16)) is None


def _file_tunnel_payloads(turtle2, file_hash):
    """carol's GENERIC_DATA of the file's tunnel (the one answered at carol:473)."""
    ok = next(pqi.decode(raw) for n, d, _, raw in turtle2["carol"] if n == 473)
    assert isinstance(ok, TurtleTunnelOkItem)
    return [(d, pqi.decode(raw)) for n, d, _, raw in turtle2["carol"]
            if raw[3] == 0x0A and pqi.decode(raw).tunnel_id == ok.tunnel_id]


def test_captured_file_decrypts_and_reassembles(turtle2, file_hash):
    """Every GENERIC_DATA of the file's tunnel decrypts with SHA-256(real hash) into a file
    item; the data items put together make a file with the SHA-1 of nodes.json, equal to the
    README's regenerated content."""
    key = crypto.file_key(file_hash)
    payloads = _file_tunnel_payloads(turtle2, file_hash)
    assert payloads
    data: dict[int, bytes] = {}
    kinds = set()
    for direction, item in payloads:
        assert isinstance(item, TurtleGenericDataItem)
        assert item.data[:4] == b"\xae\xad\x02\x01"
        inner = pqi.decode(crypto.decrypt(key, item.data))
        kinds.add(type(inner))
        if isinstance(inner, TurtleFileDataItem):
            assert direction == "out"
            data[inner.chunk_offset] = inner.chunk_data
    assert {TurtleFileDataItem, TurtleFileRequestItem, TurtleFileMapItem,
            TurtleFileMapRequestItem, TurtleChunkCrcItem} <= kinds
    whole = bytearray()
    for offset in sorted(data):
        assert offset == len(whole)
        whole += data[offset]
    assert hashlib.sha1(whole).hexdigest() == str(file_hash)
    assert bytes(whole) == regenerate(b"rs-capture2-random-2MiB", len(whole))


def test_reencryption_with_captured_nonces_gives_captured_bytes(turtle2, file_hash):
    """Our encryption of each decrypted item, with the nonce of the capture, is byte for byte
    what carol and alice sent; a flipped bit fails authentication."""
    key = crypto.file_key(file_hash)
    for _, item in _file_tunnel_payloads(turtle2, file_hash):
        clear = crypto.decrypt(key, item.data)
        nonce = item.data[4:4 + crypto.NONCE_SIZE]
        assert crypto.encrypt(key, clear, nonce=nonce) == item.data
    sample = bytearray(_file_tunnel_payloads(turtle2, file_hash)[0][1].data)
    sample[-1] ^= 1
    with pytest.raises(crypto.TunnelCryptoError):
        crypto.decrypt(key, bytes(sample))


def test_relay_forwarded_tunnel_data_unchanged(turtle2):
    """bob forwarded every GENERIC_DATA item byte-identical (what our router does too)."""
    relayed = {pqi.decode(raw).tunnel_id for _, d, _, raw in turtle2["bob"]
               if d == "in" and raw[3] == 0x04}
    data = [(d, raw) for _, d, _, raw in turtle2["bob"]
            if raw[3] == 0x0A and pqi.decode(raw).tunnel_id in relayed]
    ins = {raw for d, raw in data if d == "in"}
    outs = [raw for d, raw in data if d == "out"]
    assert len(outs) == len(ins) > 32 and all(raw in ins for raw in outs)


def test_one_route_one_id_as_the_real_nodes_did(turtle2):
    """The real nodes' prints depend only on (hash, node, incoming id): alice's two digs for
    one hash (alice:492, alice:671) carry the same partial id, and bob turned the same
    incoming id into the same outgoing one both times (bob:941/942, bob:1292/1295).  Our
    router does the same: two digs, one partial id; one relay input, one output."""
    alice = {n: pqi.decode(raw) for n, d, _, raw in turtle2["alice"] if n in (492, 671)}
    assert alice[492].file_hash == alice[671].file_hash
    assert alice[492].request_id != alice[671].request_id
    assert alice[492].partial_tunnel_id == alice[671].partial_tunnel_id
    bob = {n: pqi.decode(raw) for n, d, _, raw in turtle2["bob"] if n in (941, 942, 1292, 1295)}
    assert bob[941].partial_tunnel_id == bob[1292].partial_tunnel_id
    assert bob[942].partial_tunnel_id == bob[1295].partial_tunnel_id

    import random

    from services.turtle.router import TurtleRouter
    r = TurtleRouter(ALICE, rng=random.Random(3))
    r.peer_connected(BOB, 0)
    r.monitor_tunnels(alice[492].file_hash, object(), 0)
    first = r.dig(alice[492].file_hash, 0)
    second = r.dig(alice[492].file_hash, 1)
    sent = [o.item for o in r.drain(1)]
    assert first != second and len(sent) == 2
    assert sent[0].partial_tunnel_id == sent[1].partial_tunnel_id
    assert sent[0].partial_tunnel_id == fileprint.relay_partial_id(
        alice[492].file_hash, ALICE, r.bias, fileprint.first_partial_id(
            alice[492].file_hash, ALICE, r.bias))
