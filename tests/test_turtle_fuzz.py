"""The turtle router and the tunnel file client survive every captured turtle item with
seeded random mutations: garbage fails to decode (the streamer drops it, as for every
service) and whatever decodes is handled without an exception escaping."""

from __future__ import annotations

import json
import random

import pytest

import pqi
from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem
from pqi.wire.errors import DecodeError
from pqi.wire.fields import Sha1Hash
from services.turtle import crypto
from services.turtle.files import FileTunnels, TunnelPeer
from services.turtle.router import TurtleRouter
from tools.fuzz.fuzz_turtle import one_input, records

from .turtle_sim import ssl

MUTATIONS_PER_ITEM = 6


def mutate(raw: bytes, rng: random.Random) -> bytes:
    """One random change: flipped bits, a cut, inserted bytes, or a rewritten length/count."""
    data = bytearray(raw)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[rng.randrange(len(data)):]
    elif kind == 2:
        i = rng.randrange(len(data) + 1)
        data[i:i] = rng.randbytes(rng.randint(1, 16))
    else:
        i = rng.randrange(max(1, len(data) - 4))
        data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                    b"\x7f\xff\xff\xff", b"\x00\x00\x10\x00"])
    return bytes(data)


@pytest.fixture(scope="module")
def captured(captures2):
    out = []
    for node in ("alice", "bob", "carol"):
        with open(captures2 / f"{node}.items.jsonl") as f:
            for line in f:
                d = json.loads(line)
                if d["service"] == "0x0014":
                    out.append(bytes.fromhex(d["hex"]))
    return out


class Recorder:
    """A stand-in for the transfer service that only records what reaches it."""

    def __init__(self) -> None:
        self.items: list = []

    def receive(self, peer, item) -> None:
        self.items.append(item)

    def peer_connected(self, peer) -> None:
        pass

    def peer_disconnected(self, peer, reason) -> None:
        pass


def test_router_survives_mutated_captured_items(captured):
    """Every captured turtle item, as is and mutated six ways (seeded), either fails to decode
    with a DecodeError or is handled by a router with two friends; the router keeps its
    bounds and still routes a fresh search afterwards."""
    rng = random.Random(1234)
    router = TurtleRouter(ssl(0), rng=random.Random(5), file_search=lambda i, p: [])
    router.peer_connected(ssl(1), 0)
    router.peer_connected(ssl(2), 0)
    decoded = refused = 0
    now = 0.0
    for raw in captured:
        for data in [raw] + [mutate(raw, rng) for _ in range(MUTATIONS_PER_ITEM)]:
            try:
                item = pqi.decode(data)
            except DecodeError:
                refused += 1
                continue
            decoded += 1
            router.item_received(ssl(1 + rng.randrange(2)), item, now)
            now += 0.01
            router.handle_timer(now)
            router.drain(now)
    assert refused > 0 and decoded > len(captured)
    rid = router.search("after the storm", now)
    sent = router.drain(now)
    assert {o.peer for o in sent} == {ssl(1), ssl(2)} and all(
        o.item.request_id == rid for o in sent)


def test_file_client_refuses_mutated_tunnel_payloads(captured, captures2):
    """Mutated GENERIC_DATA payloads of the captured file tunnel never reach the transfer
    service: they fail authentication (or decoding) and are counted; the intact ones do."""
    nodes = json.loads((captures2 / "nodes.json").read_text())
    real = Sha1Hash.from_hex(nodes["carol"]["created"]["shared_file"]["sha1"])
    recorder = Recorder()
    files = FileTunnels(recorder, lambda: [], lambda vp, item: True)
    vp = ssl(9)
    files.peers[vp] = TunnelPeer(real, crypto.hash_of_hash(real), 2097152, False)
    key = crypto.file_key(real)
    rng = random.Random(99)
    good = 0
    for raw in captured:
        item = pqi.decode(raw)
        if not isinstance(item, TurtleGenericDataItem):
            continue
        try:
            crypto.decrypt(key, item.data)
        except crypto.TunnelCryptoError:
            continue
        before = len(recorder.items)
        files.receive_turtle_data(item, real, vp, TurtleDirection.CLIENT)
        good += len(recorder.items) > before
        for _ in range(3):
            bad = TurtleGenericDataItem(tunnel_id=item.tunnel_id,
                                        data=mutate(item.data, rng))
            before = len(recorder.items)
            files.receive_turtle_data(bad, real, vp, TurtleDirection.CLIENT)
            assert len(recorder.items) == before
    assert good > 30
    assert sum(files.refused.values()) > 0


def test_fuzz_harness_takes_mutated_sequences(captured):
    """The atheris harness's entry point handles record sequences built from mutated
    captured items (what its corpus seeds look like)."""
    rng = random.Random(7)
    small = [raw for raw in captured if len(raw) < 4096]
    for _ in range(50):
        parts = []
        for _ in range(rng.randint(1, 8)):
            raw = mutate(rng.choice(small), rng) if rng.random() < 0.5 else rng.choice(small)
            parts.append(bytes([rng.randrange(3)]) + len(raw).to_bytes(2, "big") + raw)
        data = b"".join(parts)
        assert len(records(data)) == len(parts)
        one_input(data)
