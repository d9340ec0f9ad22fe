"""tools/bench/qos.py: RetroShare's weighted choice as the bench models it, and the two
disciplines' behaviour in simulated time (deterministic: no clock is read)."""

from __future__ import annotations

from pqi.wire.framing import FAST_SLICE_SIZE, Enframer
from tools.bench import qos


def test_weighted_choice_serves_a_level_two_below_once_in_eight_frames() -> None:
    """With levels 7 and 5 non-empty (level 9 empty, so counters grow by alpha = 2), level 5's
    threshold of 16 is reached every eighth frame; strict priority never serves it."""
    chat, data = qos._item(10, 0x12), qos._item(10, 0x17)
    for make, expected in ((qos.WeightedEnframer, [7] * 7 + [5]), (Enframer, [7] * 8)):
        e = make()
        ids = {e.push(data, 5): 5 for _ in range(20)}
        ids.update({e.push(chat, 7): 7 for _ in range(20)})
        order = []
        for _ in range(8):
            e._next_chunk([])
            order.extend(ids[i] for i in e.take_completed())
        assert order == expected


def test_strict_keeps_chat_faster_and_weighted_never_starves_the_transfer() -> None:
    """Transfer and chat on one link: strict priority's chat wait (p99) is at most the
    weighted one's; under a chat flood that fills the link, strict priority leaves the
    transfer nothing while the weighted choice keeps it going."""
    r = qos.run(bandwidth=2e6, seconds=1.0)
    assert r["strict/transfer+chat"]["chat_p99_ms"] <= r["weighted/transfer+chat"]["chat_p99_ms"]
    assert r["strict/chatflood+transfer"]["file_mb_s"] == 0
    assert r["weighted/chatflood+transfer"]["file_mb_s"] > 0
    assert r["weighted/chatflood+transfer"]["chat_per_s"] > 0


def test_whole_items_make_chat_wait_for_one_item_more_than_slices() -> None:
    """Behind a transfer on one link, a chat message waits longer when file data goes whole
    (a node's links now) than in 64 KiB slices: the cost of whole items, bounded by a whole
    data item's time on the link on top of the sliced wait (the model counts a write done when
    its last byte is)."""
    sliced = qos.run(bandwidth=2e6, seconds=1.0, whole_size=FAST_SLICE_SIZE)
    whole = qos.run(bandwidth=2e6, seconds=1.0)
    item_time_ms = len(qos._item(qos.FILE_ITEM, 0x17)) / 2e6 * 1000
    slow, fast = (r["strict/transfer+chat"]["chat_p99_ms"] for r in (whole, sliced))
    assert fast < slow <= fast + 2 * item_time_ms
