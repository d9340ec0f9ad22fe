"""Byte-exact tests of the file-transfer (0x0017) and file-list (0x0019) items.

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``retroshare-wire-facts.md``.
"""

from __future__ import annotations

import struct

import pytest

import pqi
from pqi.items.filelists import (
    FileListsBannedHashesItem,
    FileListsFlags,
    FileListsSyncRequestItem,
    FileListsSyncResponseItem,
)
from pqi.items.ft import (
    FtChunkCrcItem,
    FtChunkCrcRequestItem,
    FtChunkMapItem,
    FtChunkMapRequestItem,
    FtDataItem,
    FtDataRequestItem,
)
from pqi.wire.fields import Sha1Hash
from pqi.wire.tlvvalues import FileData, FileItem

#: sha1 of random-3MiB.bin, the file alice downloaded from bob.
RANDOM_3MIB = Sha1Hash.from_hex("296d87a4a8e805015977af16ffa749af8ba1bd0e")
EMPTY_SHA1 = Sha1Hash.from_hex("da39a3ee5e6b4b0d3255bfef95601890afd80709")


def _same(item: pqi.PQItem, hexstr: str) -> None:
    raw = bytes.fromhex(hexstr)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


def test_data_request() -> None:
    """alice:431: offset 0, 0x7800 bytes, FileItem TLV with size and hash only."""
    _same(FtDataRequestItem(offset=0, chunk_size=0x7800,
                            file=FileItem(size=3145728, hash=RANDOM_3MIB)),
          "020017010000003600000000000000000000780010000000002200000000003000002"
          "96d87a4a8e805015977af16ffa749af8ba1bd0e")


def test_data_item() -> None:
    """A FILEDATA TLV: FileItem, UINT64_OFFSET, BIN_FILEDATA."""
    _same(FtDataItem(data=FileData(FileItem(size=3145728, hash=RANDOM_3MIB), 16, b"ab")),
          "0200170200000046" "10020000003e" "100000000022" "0000000000300000"
          "296d87a4a8e805015977af16ffa749af8ba1bd0e" "00410000000e0000000000000010"
          "0140000000086162")


def test_chunk_map_request_and_map() -> None:
    """alice:425 (not client, hash) and bob:428 (client, hash, one word all ones)."""
    _same(FtChunkMapRequestItem(is_client=False, hash=RANDOM_3MIB),
          "020017040000001d00296d87a4a8e805015977af16ffa749af8ba1bd0e")
    _same(FtChunkMapItem(is_client=True, hash=RANDOM_3MIB, chunk_map=(0xFFFFFFFF,)),
          "020017050000002501296d87a4a8e805015977af16ffa749af8ba1bd0e00000001ffffffff")


@pytest.mark.slow
def test_chunk_map_count_beyond_the_body_is_truncated() -> None:
    """A chunk-map count the body cannot hold is refused before any loop."""
    body = b"\x01" + bytes(RANDOM_3MIB) + struct.pack(">I", 1000) + bytes(8)
    raw = struct.pack(">BHBI", 2, 0x0017, 0x05, 8 + len(body)) + body
    with pytest.raises(pqi.TruncatedError) as e:
        pqi.decode(raw)
    assert e.value.offset == 8 + 21


def test_chunk_crc_request_and_answer() -> None:
    """alice:519 and bob:524: hash, chunk number, and the chunk's SHA-1."""
    _same(FtChunkCrcRequestItem(hash=RANDOM_3MIB, chunk_number=0),
          "0200170800000020296d87a4a8e805015977af16ffa749af8ba1bd0e00000000")
    _same(FtChunkCrcItem(hash=RANDOM_3MIB, chunk_number=0,
                         check_sum=Sha1Hash.from_hex("228caccee947dda5cb51e23b7f89466be4cb2a18")),
          "0200170900000034296d87a4a8e805015977af16ffa749af8ba1bd0e00000000"
          "228caccee947dda5cb51e23b7f89466be4cb2a18")


def test_file_list_sync_request() -> None:
    """alice:22: root (zero hash), flags REQUEST, last known TS, request id."""
    _same(FileListsSyncRequestItem(entry_hash=Sha1Hash.null(),
                                   flags=FileListsFlags.SYNC_REQUEST,
                                   last_known_recurs_modf_ts=0x6B06D880,
                                   request_id=0x1D48B6FBB1F6C500),
          "020019010000002c" + "00" * 20 + "000000016b06d8801d48b6fbb1f6c500")


def test_file_list_sync_response_up_to_date() -> None:
    """alice:80: RESPONSE|UP_TO_DATE, checksum of nothing, empty binary TLV of type 0."""
    _same(FileListsSyncResponseItem(
        entry_hash=Sha1Hash.null(), checksum=EMPTY_SHA1,
        flags=FileListsFlags.SYNC_RESPONSE | FileListsFlags.ENTRY_UP_TO_DATE,
        last_known_recurs_modf_ts=0x6B06D866, request_id=0xA538FC3895D04A69, content=b""),
        "0200190200000046" + "00" * 20 + "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        "0000000a6b06d866a538fc3895d04a69000000000006")


def test_file_list_sync_response_with_directory_content() -> None:
    """bob:234: the directory content is kept as opaque bytes at this layer."""
    raw = bytes.fromhex(
        "020019020000007a0000000000000000000000000000000000000000aae18f34d8a898f157087272"
        "1197d73e687f7d57000000066b06de421d48b6fbb1f6c50000000000003a51040000000031046b06"
        "de423004000000006204000000016204000000004014098cf250582abe6148306a4685933f670956"
        "fa67")
    item = pqi.decode(raw)
    assert isinstance(item, FileListsSyncResponseItem)
    assert item.flags == FileListsFlags.SYNC_RESPONSE | FileListsFlags.SYNC_DIR_CONTENT
    assert item.content == raw[-0x34:]
    assert item.content.endswith(bytes.fromhex("098cf250582abe6148306a4685933f670956fa67"))
    assert pqi.encode(item) == raw


def test_banned_hashes() -> None:
    """alice:30 (session id, empty set) and a set written in sorted order."""
    _same(FileListsBannedHashesItem(session_id=0xD228F3DD, encrypted_hashes=frozenset()),
          "0200190400000010d228f3dd00000000")
    hi, lo = Sha1Hash(b"\x02" * 20), Sha1Hash(b"\x01" * 20)
    _same(FileListsBannedHashesItem(session_id=1, encrypted_hashes=frozenset({hi, lo})),
          "02001904000000380000000100000002" + "01" * 20 + "02" * 20)


def test_file_data_decodes_to_a_view_of_the_item() -> None:
    """A data item's payload decodes to a read-only view of the received bytes, not a copy,
    and still equals, hashes and re-encodes as the bytes it holds."""
    item = FtDataItem(data=FileData(FileItem(1 << 20, Sha1Hash(b"\x07" * 20)), 4096,
                                    bytes(range(256)) * 64))
    raw = pqi.encode(item)
    got = pqi.decode(raw)
    view = got.data.data
    assert isinstance(view, memoryview) and view.readonly and view.obj is raw
    assert got == item and hash(got.data) == hash(item.data)
    assert pqi.encode(got) == raw
