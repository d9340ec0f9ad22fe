"""The running SHA-1 of a partial's finished prefix: the final check gives the file's real
SHA-1 whatever order chunks arrive, commit and are rewritten in, and a rewrite below the
hashed mark is never missed."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from pqi.wire.fields import Sha1Hash
from services.transfer.chunkmap import CHUNK_SIZE
from services.transfer.partials import PartialFile
from services.transfer.prefixhash import HASH_BLOCK, PrefixHash

H = Sha1Hash(b"\x22" * 20)


def chunk_bytes(index: int, version: int, length: int) -> bytes:
    """Distinct content for each chunk and each rewrite of it."""
    return bytes([(index * 7 + version * 31) % 251]) * length


def test_prefix_grows_with_the_contiguous_done_run(tmp_path) -> None:
    """Commits fold in the DONE chunks from the start up to the first gap (a piece written
    right at the mark is folded at once); the final digest reads the rest and equals the
    file's SHA-1."""
    size = 4 * CHUNK_SIZE + 1000
    p = PartialFile.create(tmp_path, H, size, "x.bin")
    data = bytearray()
    for i in range(5):
        data += chunk_bytes(i, 0, min(CHUNK_SIZE, size - i * CHUNK_SIZE))
    for i in (1, 0, 3):
        p.write(i * CHUNK_SIZE, data[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE])
    assert p._prefix.hashed == CHUNK_SIZE  # chunk 0 was written at the mark
    p.commit([1])
    assert p._prefix.hashed == CHUNK_SIZE  # chunk 1 waits for chunk 0 to be DONE
    p.commit([0, 3])
    assert p._prefix.hashed == 2 * CHUNK_SIZE  # 0 and 1; 2 is missing
    p.write(2 * CHUNK_SIZE, data[2 * CHUNK_SIZE:3 * CHUNK_SIZE])
    assert p._prefix.hashed == 3 * CHUNK_SIZE  # written at the mark
    p.write(4 * CHUNK_SIZE, data[4 * CHUNK_SIZE:])
    p.commit([2, 4])
    assert p._prefix.hashed == size
    assert p.file_sha1() == hashlib.sha1(data).digest()
    assert p._prefix.restarts == 0


def test_writes_in_order_are_hashed_without_reading_back(tmp_path) -> None:
    """Pieces written in file order are folded into the hash as they are written: the digest
    then reads nothing back, and a piece rewritten later still makes it start over."""
    size = 2 * CHUNK_SIZE + 5
    p = PartialFile.create(tmp_path, H, size, "x.bin")
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for offset in range(0, size, 100_000):
        p.write(offset, data[offset:offset + 100_000])
    assert p._prefix.hashed == size

    def no_read(offset: int, length: int) -> bytes:
        raise AssertionError("the digest read the file back")

    assert p._prefix.digest(no_read) == hashlib.sha1(data).digest()
    p.write(10, b"xyz")
    changed = data[:10] + b"xyz" + data[13:]
    assert p.file_sha1() == hashlib.sha1(changed).digest()
    assert p._prefix.restarts == 1


def test_rewrite_below_the_mark_restarts_the_hash(tmp_path) -> None:
    """A chunk rewritten after it was hashed (a repair after a failed check) makes the next
    digest hash the file again from byte 0, so it reflects the new bytes."""
    size = 3 * CHUNK_SIZE
    p = PartialFile.create(tmp_path, H, size, "x.bin")
    for i in range(3):
        p.write(i * CHUNK_SIZE, chunk_bytes(i, 0, CHUNK_SIZE))
    p.commit([0, 1, 2])
    first = p.file_sha1()
    p.uncommit([1])
    p.write(CHUNK_SIZE, chunk_bytes(1, 1, CHUNK_SIZE))
    p.commit([1])
    expected = hashlib.sha1(chunk_bytes(0, 0, CHUNK_SIZE) + chunk_bytes(1, 1, CHUNK_SIZE)
                            + chunk_bytes(2, 0, CHUNK_SIZE)).digest()
    assert p.file_sha1() == expected != first
    assert p._prefix.restarts == 1


@settings(max_examples=30, deadline=None)
@given(order=st.permutations(range(4)), data=st.data())
def test_any_order_of_writes_commits_and_rewrites(tmp_path_factory, order: list[int],
                                                  data: st.DataObject) -> None:
    """Chunks written and committed in any order, some rewritten with new bytes at any point
    (committed or not): the digest always equals hashlib over the file's current bytes."""
    size = 3 * CHUNK_SIZE + 17
    p = PartialFile.create(tmp_path_factory.mktemp("p"), H, size, "x.bin")
    current: dict[int, bytes] = {}
    version = 0
    for i in order:
        length = min(CHUNK_SIZE, size - i * CHUNK_SIZE)
        version += 1
        current[i] = chunk_bytes(i, version, length)
        p.write(i * CHUNK_SIZE, current[i])
        p.commit([i])
        if current and data.draw(st.booleans()):
            j = data.draw(st.sampled_from(sorted(current)))
            version += 1
            current[j] = chunk_bytes(j, version, len(current[j]))
            p.write(j * CHUNK_SIZE, current[j])
    whole = b"".join(current[i] for i in range(4))
    assert p.file_sha1() == hashlib.sha1(whole).digest()


def test_write_during_a_read_is_seen_as_dirty() -> None:
    """The mark moves before a range is read: a write landing in the range while it is read
    (reported after its bytes are in place) makes the next digest start over."""
    size = 2 * HASH_BLOCK
    content = bytearray(b"a" * size)
    prefix = PrefixHash(size)

    def read(offset: int, length: int) -> bytes:
        if offset == 0:  # a writer slips in while the first block is being read
            content[HASH_BLOCK:HASH_BLOCK + 3] = b"new"
            prefix.written(HASH_BLOCK)
        return bytes(content[offset:offset + length])

    prefix.advance(read, size)
    assert prefix.hashed == size
    assert prefix.digest(lambda o, n: bytes(content[o:o + n])) == hashlib.sha1(
        content).digest()
    assert prefix.restarts == 1


def test_short_file_hashes_what_is_there() -> None:
    """A data file shorter than its size (never fully written) gives the hash of its bytes,
    which cannot match the expected one; nothing raises."""
    prefix = PrefixHash(100)
    assert prefix.digest(lambda o, n: b"x" * max(0, min(n, 60 - o))) == hashlib.sha1(
        b"x" * 60).digest()
