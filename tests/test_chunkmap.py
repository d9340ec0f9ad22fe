"""Chunk maps: chunk geometry, the compressed wire map, and the three strategies."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.transfer.chunkmap import (
    CHUNK_SIZE,
    PROGRESSIVE_JUMP,
    ChunkMap,
    ChunkState,
    Strategy,
    compress,
    decompress,
    full_map,
)


def test_geometry_and_done_bytes() -> None:
    """The last chunk is short; done bytes count it at its real length."""
    m = ChunkMap(3 * CHUNK_SIZE + 10, done=[3])
    assert m.count == 4 and m.chunk_range(3) == (3 * CHUNK_SIZE, 10)
    assert m.done_bytes == 10
    m.set_state(0, ChunkState.DONE)
    assert m.done_bytes == CHUNK_SIZE + 10 and not m.complete


def test_compressed_map_bit_order_matches_the_wire() -> None:
    """Chunk i is bit i & 31 of word i >> 5, LSB first; a complete source's all-ones word
    decodes to exactly the file's chunks."""
    assert compress([0, 1, 33], 40) == (0x3, 0x2)
    assert decompress(full_map(3), 3) == {0, 1, 2}
    assert full_map(33) == (0xFFFFFFFF, 0xFFFFFFFF)


@pytest.mark.slow
@given(st.integers(1, 300).flatmap(
    lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_compress_round_trip(case) -> None:
    """compress then decompress gives back the same chunk set."""
    n, present = case
    assert decompress(compress(present, n), n) == present


def test_strategies_pick_where_they_should() -> None:
    """Streaming takes the first available chunk, progressive stays within the jump of it,
    random may go anywhere; none picks a chunk the source lacks or one not outstanding."""
    m = ChunkMap(200 * CHUNK_SIZE, done=[0, 1])
    rng = random.Random(3)
    has = lambda i: i % 2 == 0  # noqa: E731
    assert m.pick(has, Strategy.STREAMING, rng) == 2
    for _ in range(50):
        p = m.pick(has, Strategy.PROGRESSIVE, rng)
        assert p is not None and has(p) and 2 <= p <= 2 + PROGRESSIVE_JUMP
    picks = {m.pick(has, Strategy.RANDOM, rng) for _ in range(200)}
    assert max(picks) > 2 + PROGRESSIVE_JUMP and all(has(p) for p in picks)
    assert m.pick(lambda i: i < 2, Strategy.PROGRESSIVE, rng) is None


def test_pick_skips_the_finished_start_once_and_sees_chunks_reopened() -> None:
    """Picking through a file in order does not look at the finished start again (the
    ``available`` test is asked only from the first outstanding chunk on), and a chunk set back
    to OUTSTANDING below that point (a failed check) is picked again."""
    m = ChunkMap(300 * CHUNK_SIZE)
    asked: list[int] = []

    def has(i: int) -> bool:
        asked.append(i)
        return True

    rng = random.Random(1)
    for i in range(250):
        assert m.pick(has, Strategy.STREAMING, rng) == i
        m.set_state(i, ChunkState.DONE)
    assert len(asked) == 250  # one look per pick, none at the chunks already done
    m.set_state(7, ChunkState.OUTSTANDING)
    assert m.pick(has, Strategy.STREAMING, rng) == 7
    m.set_state(7, ChunkState.DONE)
    assert m.pick(has, Strategy.STREAMING, rng) == 250
