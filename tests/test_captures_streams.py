# -*- test-case-name: tests.test_captures_streams -*-
"""Real RetroShare streams through our Deframer, and our Enframer against RetroShare's slicing.

The captures (``captures/README.md``) hold every byte one real node wrote to another and the
items the receiver decoded.  Our deframer must find exactly those items, in that order, from the
stream cut anywhere; our enframer must slice RetroShare's file-data items exactly as RetroShare
did and group frames into writes by the same rule.
"""

from __future__ import annotations

import functools
import json
import pathlib
import random
import struct
from typing import Any

import pytest

from pqi.wire.framing import (
    GROUP_SIZE,
    PROBE,
    SLICE_PROTOCOL_ID,
    Deframer,
    Enframer,
    ItemReceived,
    ProbeReceived,
)
from pqi.wire.item import UnknownItem, decode, encode
from tests.conftest import CAPTURES

STREAMS = sorted(p.name.removesuffix(".stream.bin") for p in CAPTURES.glob("*.stream.bin"))

#: The README's table: probes, whole items, slices, sliced items per stream.
README_TABLE = {
    "alice-to-bob.conn1": (7, 347, 15, 2),
    "bob-to-alice.conn1": (7, 305, 2264, 38),
    "alice-to-bob.conn2": (2, 93, 0, 0),
    "bob-to-alice.conn2": (2, 102, 0, 0),
    "alice-to-bob.conn3": (1, 49, 0, 0),
    "bob-to-alice.conn3": (1, 42, 0, 0),
    "bob-to-carol.conn1": (3, 148, 0, 0),
    "carol-to-bob.conn1": (3, 139, 0, 0),
}


@functools.cache
def items_jsonl(captures: pathlib.Path, node: str) -> tuple[dict[str, Any], ...]:
    with (captures / f"{node}.items.jsonl").open() as f:
        return tuple(json.loads(line) for line in f)


@functools.cache
def ssl_ids(captures: pathlib.Path) -> dict[str, str]:
    nodes = json.loads((captures / "nodes.json").read_text())
    return {name: node["ssl_id"] for name, node in nodes.items()}


def stream_parts(name: str) -> tuple[str, str, int]:
    """``alice-to-bob.conn1`` -> ("alice", "bob", 1)."""
    pair, conn = name.split(".")
    sender, receiver = pair.split("-to-")
    return sender, receiver, int(conn.removeprefix("conn"))


def receiver_in_items(captures: pathlib.Path, name: str) -> list[bytes]:
    sender, receiver, conn = stream_parts(name)
    peer = ssl_ids(captures)[sender]
    return [bytes.fromhex(line["hex"]) for line in items_jsonl(captures, receiver)
            if line["dir"] == "in" and line["peer"] == peer and line["conn"] == conn]


def frames(stream: bytes) -> list[tuple[int, bytes]]:
    """(offset, 8-byte header) of every frame, split by the README's rule."""
    out = []
    pos = 0
    while pos < len(stream):
        header = stream[pos:pos + 8]
        out.append((pos, header))
        if header == PROBE:
            pos += 8
        elif header[0] == SLICE_PROTOCOL_ID and header[1] in (0, 1, 2):
            pos += 8 + struct.unpack_from(">H", header, 6)[0]
        else:
            pos += struct.unpack_from(">I", header, 4)[0]
    assert pos == len(stream)
    return out


def test_every_capture_stream_is_here() -> None:
    """All eight streams of the README are present (so the parametrised tests cover them)."""
    assert STREAMS == sorted(README_TABLE)


@pytest.mark.parametrize("name", STREAMS)
def test_stream_yields_the_receivers_items(captures: pathlib.Path, name: str) -> None:
    """Fed whole and cut at seeded random points, each stream yields exactly the receiver's
    ``in`` items for that peer and connection, in order, and the README's probe and slice
    counts."""
    stream = (captures / f"{name}.stream.bin").read_bytes()
    expected = receiver_in_items(captures, name)
    probes, whole, slices, sliced = README_TABLE[name]
    rng = random.Random(name)
    cut_sets = [[], sorted(rng.randrange(len(stream) + 1) for _ in range(200)),
                sorted(rng.randrange(len(stream) + 1) for _ in range(len(stream) // 50))]
    for cuts in cut_sets:
        deframer = Deframer()
        events = []
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            events.extend(deframer.feed(stream[a:b]))
        received = [e for e in events if isinstance(e, ItemReceived)]
        assert [e.data for e in received] == expected
        assert sum(isinstance(e, ProbeReceived) for e in events) == probes
        assert sum(e.packet_id is None for e in received) == whole
        assert sum(e.packet_id is not None for e in received) == sliced
        assert deframer.slices_received == slices
        assert deframer.buffered == 0 and deframer.partial_packets == 0


@pytest.mark.parametrize("node", ["alice", "bob", "carol"])
def test_every_captured_item_decodes(captures: pathlib.Path, node: str) -> None:
    """Every item a real node sent or received decodes without error (to its class, or to an
    `UnknownItem` for kinds not built yet, which keeps the bytes whole)."""
    kinds: set[tuple[int, int]] = set()
    for line in items_jsonl(captures, node):
        data = bytes.fromhex(line["hex"])
        item = decode(data)
        if isinstance(item, UnknownItem):
            assert encode(item) == data
        kinds.add((item.SERVICE, item.SUBTYPE))
    assert (0x0016, 0x01) in kinds


def slice_structure(stream: bytes) -> dict[bytes, list[tuple[int, int]]]:
    """For each sliced item of a stream: its slices' (flags, payload length)."""
    by_id: dict[int, list[tuple[int, int]]] = {}
    for _, header in frames(stream):
        if header[0] == SLICE_PROTOCOL_ID and header[1] in (0, 1, 2):
            _, flags, packet_id, length = struct.unpack(">BBIH", header)
            by_id.setdefault(packet_id, []).append((flags, length))
    deframer = Deframer()
    return {e.data: by_id[e.packet_id] for e in deframer.feed(stream)
            if isinstance(e, ItemReceived) and e.packet_id is not None}


def test_enframer_slices_file_data_like_retroshare(captures: pathlib.Path) -> None:
    """Bob's 39 file-data items to alice, given to our Enframer with slicing on, come out with
    the same slices (flags and 1400-byte payloads) as in bob's real stream; the one that went
    whole (693 bytes) goes whole; packet ids differ but each item keeps one id."""
    stream = (captures / "bob-to-alice.conn1.stream.bin").read_bytes()
    captured = slice_structure(stream)
    data_items = [item for item in receiver_in_items(captures, "bob-to-alice.conn1")
                  if item[1:4] == b"\x00\x17\x02"]
    assert len(data_items) == 39
    for item in data_items:
        enframer = Enframer()
        enframer.enable_slicing()
        enframer.next_write(0.0)  # the probe
        packet_id = enframer.push(item, 3)
        ours = b"".join(enframer.writes(0.0))
        if len(item) <= 1400:
            assert ours == item and item not in captured
            continue
        assert slice_structure(ours)[item] == captured[item]
        assert {struct.unpack_from(">I", h, 2)[0] for _, h in frames(ours)} == {packet_id}
    assert sum(len(item) > 1400 for item in data_items) == 38


@pytest.mark.slow
@pytest.mark.parametrize("name", STREAMS)
def test_writes_group_by_retroshares_rule(captures: pathlib.Path, name: str) -> None:
    """In every real write: whole frames only, a probe only at the start, and fewer than 1400
    bytes before the write's last frame (RetroShare stops gathering at 1400); our Enframer's
    writes obey the same rule."""
    sender, receiver, conn = stream_parts(name)
    stream = (captures / f"{name}.stream.bin").read_bytes()
    starts = {offset: header for offset, header in frames(stream)}
    peer = ssl_ids(captures)[receiver]
    with (captures / f"{sender}.writes.jsonl").open() as f:
        writes = [w for w in map(json.loads, f) if w["peer"] == peer and w["conn"] == conn]
    assert sum(w["len"] for w in writes) == len(stream)
    for w in writes:
        begin, end = w["offset"], w["offset"] + w["len"]
        inside = [offset for offset in starts if begin <= offset < end]
        assert begin in starts and (end in starts or end == len(stream))
        assert all(starts[offset] != PROBE for offset in inside[1:])
        assert max(inside) - begin < GROUP_SIZE
    enframer = Enframer()
    enframer.enable_slicing()
    for item in receiver_in_items(captures, name):
        enframer.push(item, 3)
    ours = list(enframer.writes(0.0))
    pos = 0
    ours_starts = {offset for offset, _ in frames(b"".join(ours))}
    for write in ours:
        inside = [offset for offset in ours_starts if pos <= offset < pos + len(write)]
        assert pos in ours_starts and max(inside) - pos < GROUP_SIZE
        pos += len(write)
