"""The captured RetroShare transfer (bob -> alice, 3 MiB): its data items reassemble into
the recorded file, its chunk SHA-1 answers match the regenerated chunks, and fed to our
engine and partials as a download they produce the verified file."""

from __future__ import annotations

import hashlib
import json

import pytest

from pqi.items.ft import FtChunkCrcItem, FtChunkMapItem, FtDataItem, FtDataRequestItem
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.item import decode, encode
from services.transfer.chunkmap import CHUNK_SIZE, decompress
from services.transfer.engine import (
    CommitChunks,
    Completed,
    Download,
    RequestData,
    VerifyFile,
    WriteData,
)
from services.transfer.partials import PartialFile
from services.transfer.server import MAX_FT_CHUNK

SIZE = 3145728
SHA1 = "296d87a4a8e805015977af16ffa749af8ba1bd0e"
BOB = "4ea22c330cebe3bec367aef3aaf496b6"


def regenerate(label: bytes, size: int) -> bytes:
    """The README's rule: SHA-256(label + i as 8 bytes BE) for i = 0, 1, ..., cut to size."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(label + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:size])


@pytest.fixture(scope="module")
def items(captures):
    out = []
    with open(captures / "alice.items.jsonl") as f:
        for line in f:
            d = json.loads(line)
            if d["service"] == "0x0017":
                out.append((d["dir"], bytes.fromhex(d["hex"])))
    return out


@pytest.fixture(scope="module")
def content() -> bytes:
    data = regenerate(b"rs-capture-random-3MiB", SIZE)
    assert hashlib.sha1(data).hexdigest() == SHA1
    return data


def test_data_items_reassemble_the_recorded_file(items, content) -> None:
    """The 39 captured data items decode, re-encode byte-identically, each carries at most
    240 KiB, and together they cover the file exactly once with the recorded SHA-1."""
    data = [(raw, decode(raw)) for d, raw in items if d == "in" and raw[3] == 0x02]
    assert len(data) == 39
    buf = bytearray(SIZE)
    covered = 0
    for raw, item in data:
        assert isinstance(item, FtDataItem) and encode(item) == raw
        fd = item.data
        assert fd.file.size == SIZE and fd.file.hash.to_hex() == SHA1
        assert len(fd.data) <= MAX_FT_CHUNK
        buf[fd.offset:fd.offset + len(fd.data)] = fd.data
        covered += len(fd.data)
    assert covered == SIZE
    assert hashlib.sha1(buf).hexdigest() == SHA1 and bytes(buf) == content


def test_chunk_crc_answers_match_regenerated_chunks(items, content) -> None:
    """Bob's three ChunkCrc answers are the SHA-1s of those 1 MiB chunks of the file."""
    crcs = [decode(raw) for d, raw in items if raw[3] == 0x09]
    assert len(crcs) == 3
    for item in crcs:
        assert isinstance(item, FtChunkCrcItem)
        lo = item.chunk_number * CHUNK_SIZE
        assert item.check_sum == hashlib.sha1(content[lo:lo + CHUNK_SIZE]).digest()


def test_complete_source_map_is_all_ones(items) -> None:
    """A complete source answers with every bit of its word set; it decodes to all chunks."""
    (m, *_rest) = [decode(raw) for d, raw in items if raw[3] == 0x05]
    assert isinstance(m, FtChunkMapItem) and m.is_client and m.chunk_map == (0xFFFFFFFF,)
    assert decompress(m.chunk_map, 3) == {0, 1, 2}


def test_requests_carry_only_size_and_hash(items) -> None:
    """Alice's data requests name the file by size and hash only, as ours do."""
    reqs = [decode(raw) for d, raw in items if raw[3] == 0x01]
    assert len(reqs) == 39
    for r in reqs:
        assert isinstance(r, FtDataRequestItem)
        assert r.file.size == SIZE and r.file.hash.to_hex() == SHA1 and not r.file.name
    ours = FtDataRequestItem(offset=reqs[0].offset, chunk_size=reqs[0].chunk_size,
                             file=reqs[0].file)
    assert encode(ours) == next(raw for d, raw in items if raw[3] == 0x01)


@pytest.mark.slow
def test_captured_items_feed_our_engine_and_partials(items, content, tmp_path) -> None:
    """The captured data, delivered to our engine as answers from bob, is written through a
    PartialFile, committed chunk by chunk, verified, and moved to the incoming folder."""
    bob = SslId.from_hex(BOB)
    h = Sha1Hash.from_hex(SHA1)
    partial = PartialFile.create(tmp_path / "partials", h, SIZE, "random-3MiB.bin")
    eng = Download(h, SIZE, now=0)
    eng.add_source(bob, 0)
    requested = []
    pieces = {}
    for _d, raw in items:
        if raw[3] == 0x02:
            fd = decode(raw).data
            pieces[fd.offset] = fd.data
    completed = []

    def run(_: None) -> None:
        """Carry out what the engine queued for the input just given (inputs return None)."""
        for a in eng.drain(0):
            if isinstance(a, RequestData):
                requested.append(a)
            elif isinstance(a, WriteData):
                partial.write(a.offset, a.data)
            elif isinstance(a, CommitChunks):
                partial.commit(a.chunks)
            elif isinstance(a, VerifyFile):
                run(eng.file_hashed(partial.file_sha1(), 1))
            elif isinstance(a, Completed):
                completed.append(a)

    (m, *_rest) = [decode(raw) for d, raw in items if raw[3] == 0x05]
    run(eng.chunk_map(bob, m.chunk_map, 0))
    for _ in range(200):
        if completed or not requested:
            break
        r = requested.pop(0)
        for off in range(r.offset, r.offset + r.length):
            if off in pieces and off + len(pieces[off]) <= r.offset + r.length:
                run(eng.data(bob, off, pieces[off], 0))
            elif off in pieces:
                cut = r.offset + r.length - off
                run(eng.data(bob, off, pieces[off][:cut], 0))
                pieces[off + cut] = pieces[off][cut:]
    assert completed
    partial.mark_verified()
    final = partial.finish(tmp_path / "incoming")
    assert final.name == "random-3MiB.bin" and final.read_bytes() == content
