"""The 0x0019 directory content format: real captured bytes, pinned bytes, round trips and
the errors a malformed content gives."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given

import pqi
from pqi.wire.errors import (
    DecodeError,
    EncodeError,
    InvalidValueError,
    LimitExceededError,
    TrailingBytesError,
    TruncatedError,
)
from pqi.wire.fields import Sha1Hash
from services.sharing.dirlist import (
    MAX_DIR_CONTENT_SIZE,
    DirContent,
    RemoteFile,
    decode_dir,
    decode_size,
    encode_dir,
    encode_size,
)
from tests.strategies_sharing import dir_contents, section_sizes

H1 = Sha1Hash(bytes(range(20)))

#: bob.items.jsonl line -> the directory the captures README records for it.
BOB_RESPONSES = (234, 257, 278)


def _bob_item(captures, line: int):
    with open(captures / "bob.items.jsonl") as f:
        for n, text in enumerate(f, 1):
            if n == line:
                return pqi.decode(bytes.fromhex(json.loads(text)["hex"]))
    raise AssertionError(f"bob.items.jsonl has no line {line}")


def test_bob_captured_file_list_decodes_to_recorded_tree(captures) -> None:
    """Bob's three captured directory responses decode to the shared tree that
    shared-files.json records (names, sizes, SHA-1s), linked by their directory hashes, and
    each content re-encodes to the very bytes bob sent."""
    items = [_bob_item(captures, n) for n in BOB_RESPONSES]
    dirs = {it.entry_hash: decode_dir(it.content) for it in items}
    for it in items:
        assert encode_dir(dirs[it.entry_hash]) == it.content

    root = dirs[Sha1Hash.null()]
    assert root.name == "" and root.files == () and len(root.subdirs) == 1
    top = dirs[root.subdirs[0]]
    assert top.name == "bob-shared" and len(top.subdirs) == 1
    data = dirs[top.subdirs[0]]
    assert data.name == "data" and data.subdirs == ()

    tree = {}
    for prefix, d in (("bob-shared", top), ("bob-shared/data", data)):
        for f in d.files:
            tree[f"{prefix}/{f.name}"] = (f.size, f.hash.to_hex())
    recorded = json.loads((captures / "shared-files.json").read_text())
    assert tree == {f["path_in_share"]: (f["size"], f["sha1"]) for f in recorded["files"]}


def test_captured_root_bytes() -> None:
    """The root bob sent (bob:234) pinned byte by byte: empty name, times, counts 1 and 0,
    one ENTRY_INDEX."""
    sub = Sha1Hash.from_hex("098cf250582abe6148306a4685933f670956fa67")
    content = DirContent("", 0x6B06DE42, 0, (sub,), ())
    assert encode_dir(content) == bytes.fromhex(
        "5104000000003104" "6b06de42" "300400000000" "620400000001" "620400000000"
        "4014098cf250582abe6148306a4685933f670956fa67")


def test_file_entry_bytes() -> None:
    """A file is a REMOTE_FILE_ENTRY section wrapping name, size, hash and time sections."""
    content = DirContent("d", 1, 2, (), (RemoteFile("a", 5, H1, 3),))
    inner = ("2105" "0000000161" "2208" "0000000000000005" "2014" + H1.hex()
             + "3004" "00000003")
    assert encode_dir(content).hex() == (
        "5105" "0000000164" "310400000001" "300400000002" "620400000000" "620400000001"
        "13" + f"{len(bytes.fromhex(inner)):02x}" + inner)


@pytest.mark.parametrize(("size", "encoded"), [
    (0, "00"), (191, "bf"), (192, "c000"), (193, "c001"), (448, "c100"), (8383, "dfff"),
    (8384, "ff000020c0"), (0xFFFFFFFF, "ffffffffff")])
def test_size_forms(size: int, encoded: str) -> None:
    """Sizes take RetroShare's shortest 1/2/5-byte form at each boundary."""
    assert encode_size(size).hex() == encoded
    assert decode_size(io.BytesIO(bytes.fromhex(encoded)), "s") == size


@pytest.mark.slow
@given(section_sizes)
def test_size_round_trip(size: int) -> None:
    """Every size decodes back from its encoding, consuming all of it."""
    raw = encode_size(size)
    stream = io.BytesIO(raw)
    assert decode_size(stream, "s") == size and stream.tell() == len(raw)


@pytest.mark.parametrize("encoded", ["ff00000001", "ff000020bf", "e0", "fe00"])
def test_non_shortest_or_unknown_size_form_rejected(encoded: str) -> None:
    """A 5-byte form for a small size, or a first byte 224..254, is invalid."""
    with pytest.raises(InvalidValueError):
        decode_size(io.BytesIO(bytes.fromhex(encoded + "00" * 8)), "s")


def test_size_out_of_range_not_encoded() -> None:
    """Sizes beyond u32 cannot be written."""
    with pytest.raises(EncodeError):
        encode_size(1 << 32)


@pytest.mark.slow
@given(dir_contents())
def test_round_trip(content: DirContent) -> None:
    """Any directory content encodes and decodes back to itself, and re-encodes identically."""
    raw = encode_dir(content)
    again = decode_dir(raw)
    assert again == content
    assert encode_dir(again) == raw


def test_long_name_uses_two_and_five_byte_sizes() -> None:
    """Names long enough for the 2-byte and the 5-byte size forms round-trip."""
    for n in (300, 9000):
        content = DirContent("x" * n, 0, 0)
        raw = encode_dir(content)
        assert raw[1] == (0xFF if n + 4 >= 8384 else 0xC0 + ((n + 4 - 192) >> 8))
        assert decode_dir(raw) == content


def test_wrong_tag_rejected() -> None:
    """A section with another tag than the one expected there is invalid, with its offset."""
    raw = bytearray(encode_dir(DirContent("", 0, 0)))
    raw[6] = 0x30  # RECURS_MODIF_TS replaced by MODIF_TS
    with pytest.raises(InvalidValueError) as e:
        decode_dir(bytes(raw))
    assert e.value.offset == 6


def test_section_larger_than_content_rejected() -> None:
    """A section announcing more bytes than remain is refused before reading."""
    with pytest.raises(LimitExceededError):
        decode_dir(bytes.fromhex("51ff7fffffff00000000"))


def test_value_not_filling_section_rejected() -> None:
    """A u32 section of 5 bytes leaves a byte: refused (sections are exact)."""
    raw = bytes.fromhex("510400000000" "3105000000010030040000000062040000000062040000000000")
    with pytest.raises(DecodeError):
        decode_dir(raw)


def test_counts_beyond_content_rejected() -> None:
    """A file count the remaining bytes cannot hold is refused before any entry is read."""
    head = encode_dir(DirContent("", 0, 0))[:-6]
    raw = head + bytes.fromhex("6204ffffffff")
    with pytest.raises(LimitExceededError):
        decode_dir(raw)
    raw = head + bytes.fromhex("620400001000")
    with pytest.raises(LimitExceededError):
        decode_dir(raw)


def test_truncated_and_trailing() -> None:
    """Every strict prefix fails with a DecodeError; a byte appended is trailing."""
    raw = encode_dir(DirContent("n", 1, 2, (H1,), (RemoteFile("f", 1, H1, 1),)))
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_dir(raw[:cut])
    with pytest.raises(TrailingBytesError):
        decode_dir(raw + b"\x00")
    with pytest.raises(TruncatedError):
        decode_dir(b"")


def test_oversized_content_rejected() -> None:
    """Content over MAX_DIR_CONTENT_SIZE is refused without parsing."""
    with pytest.raises(LimitExceededError) as e:
        decode_dir(bytes(MAX_DIR_CONTENT_SIZE + 1))
    assert e.value.limit == "MAX_DIR_CONTENT_SIZE"


def test_values_out_of_range_not_encoded() -> None:
    """A file size beyond u64 or a hash of the wrong length is an EncodeError."""
    with pytest.raises(EncodeError):
        encode_dir(DirContent("", 0, 0, (), (RemoteFile("f", 1 << 64, H1, 0),)))
    with pytest.raises(EncodeError):
        encode_dir(DirContent("", 0, 0, (b"short",), ()))  # type: ignore[arg-type]


def _one_file_dir(entry: bytes) -> bytes:
    head = encode_dir(DirContent("", 0, 0))[:-6] + bytes.fromhex("620400000001")
    return head + b"\x13" + encode_size(len(entry)) + entry


def test_file_entry_must_be_exact() -> None:
    """Inside a file entry a name length that does not fill its section, a size section of
    the wrong width, a missing section or bytes after the last one are refused."""
    name = bytes.fromhex("2105" "0000000161")
    rest = bytes.fromhex("2208" "0000000000000005" "2014") + H1 + bytes.fromhex("3004"
                                                                                 "00000003")
    assert decode_dir(_one_file_dir(name + rest)).files == (RemoteFile("a", 5, H1, 3),)
    bad_name = bytes.fromhex("2106" "000000016100")
    with pytest.raises(InvalidValueError):
        decode_dir(_one_file_dir(bad_name + rest))
    wide = bytes.fromhex("2209" "000000000000000500") + rest[10:]
    with pytest.raises(InvalidValueError):
        decode_dir(_one_file_dir(name + wide))
    with pytest.raises(DecodeError):
        decode_dir(_one_file_dir(name + rest[:-6]))
    with pytest.raises(TrailingBytesError):
        decode_dir(_one_file_dir(name + rest + b"\x00"))
