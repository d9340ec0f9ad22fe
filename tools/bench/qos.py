# -*- test-case-name: tests.test_bench_qos -*-
"""A link's queue discipline: strict priority (ours) against RetroShare's weighted QoS.

Run ``python3 -m tools.bench.qos``.  Sans IO and deterministic: one `Enframer` (large slices,
grouped writes, as a node's links use them) drained by a simulated link of ``--bandwidth``
bytes/s; time advances by each write's size over the bandwidth, so the figures are the queue
discipline's alone.  Two cases on one link, as a node's upload and chat to the same friend:

- *transfer and chat*: file data (`FtDataItem` size and priority 5) kept queued by a producer,
  one chat message (priority 7) every 10 ms: the chat message's wait and the transfer's rate;
- *chat flood and transfer*: the chat queue never empty (a friend's flood of messages we
  forward, or a bot), file data as above: the share of the link left to the transfer.

Chat to *another* friend goes over another link with its own queue: no queue discipline
delays it (that case is the reactor's turns, measured by `tools.bench.chat`).

RetroShare's weighted choice (``pqiQoS::out_rsItem``, alpha 2, ten levels): for each frame,
every non-empty level's counter grows (by 1 when level 9 is non-empty, else by alpha) and a
level whose counter reaches its threshold (alpha to the power of its distance from level 9)
may send, the lowest such level first; when none does, the highest non-empty level sends.
"""

from __future__ import annotations

import argparse
import collections
import struct
import sys
from collections.abc import Callable
from typing import Final

from pqi.wire.framing import (
    FAST_GROUP_SIZE,
    FAST_SLICE_SIZE,
    FAST_WHOLE_SIZE,
    QOS_LEVELS,
    Enframer,
)

__all__ = ["WeightedEnframer", "main", "run"]

#: RetroShare's ``PQI_QOS_STREAMER_ALPHA``.
ALPHA: Final = 2.0
#: Payload of a file-data item (RetroShare's chunk map asks for up to 240 KiB per request).
FILE_ITEM: Final = 240 * 1024
#: Priorities of file data and of chat items (`FtDataItem`, `ChatMsgItem`).
FILE_PRIORITY: Final = 5
CHAT_PRIORITY: Final = 7
#: Seconds between chat messages in the transfer-and-chat case.
CHAT_INTERVAL: Final = 0.01
#: Chat messages kept queued during a flood: more bytes than one grouped write holds.
FLOOD_QUEUED: Final = 2000


class WeightedEnframer(Enframer):
    """An `Enframer` whose frames come by RetroShare's weighted choice (see the module)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        top = QOS_LEVELS - 1
        self._threshold = [ALPHA ** (top - n) for n in range(QOS_LEVELS)]
        self._counter = [0.0] * QOS_LEVELS

    def _next_level(self) -> collections.deque | None:  # type: ignore[type-arg]
        levels = self._levels
        top = QOS_LEVELS - 1
        while top >= 0 and not levels[top]:
            top -= 1
        if top < 0:
            return None
        inc = 1.0 if top == QOS_LEVELS - 1 else ALPHA
        chosen = top
        for n in range(top, -1, -1):
            if levels[n]:
                self._counter[n] += inc
                if self._counter[n] >= self._threshold[n]:
                    self._counter[n] -= self._threshold[n]
                    chosen = n
        return levels[chosen]


def _item(payload: int, service: int) -> bytes:
    """A well-formed item of ``payload`` body bytes (version 2, ``service``, subtype 1)."""
    return struct.pack(">BHBI", 2, service, 1, 8 + payload) + bytes(payload)


def _simulate(make: Callable[[], Enframer], bandwidth: float, seconds: float,
              flood: bool) -> dict[str, float]:
    e = make()
    e.enable_slicing()
    e.next_write(0.0)  # the first probe
    chat = _item(60, 0x0012)
    file_data = _item(FILE_ITEM, 0x0017)
    now, next_chat = 0.0, 0.0
    pushed: dict[int, float] = {}
    waits: list[float] = []
    file_ids: set[int] = set()
    file_bytes = chat_bytes = 0
    while now < seconds:
        while e.queued_bytes < 2 * FILE_ITEM * 4 and len(file_ids) < 4:  # the producer
            file_ids.add(e.push(file_data, FILE_PRIORITY))
        if flood:  # more chat queued than one write carries: the link is the limit
            while len(pushed) < FLOOD_QUEUED:
                pushed[e.push(chat, CHAT_PRIORITY)] = now
        else:
            while now >= next_chat:  # the messages due during the last write
                pushed[e.push(chat, CHAT_PRIORITY)] = next_chat
                next_chat += CHAT_INTERVAL
        data = e.next_write(now)
        if data is None:
            now = next_chat
            continue
        now += len(data) / bandwidth
        for packet_id in e.take_completed():
            if packet_id in file_ids:
                file_ids.discard(packet_id)
                file_bytes += len(file_data)
            elif packet_id in pushed:
                waits.append(now - pushed.pop(packet_id))
                chat_bytes += len(chat)
    waits.sort()
    return {"chat_p50_ms": waits[len(waits) // 2] * 1000 if waits else float("nan"),
            "chat_p99_ms": waits[int(len(waits) * 0.99)] * 1000 if waits else float("nan"),
            "chat_per_s": len(waits) / now,
            "file_mb_s": file_bytes / now / 1e6,
            "file_share": file_bytes / max(1, file_bytes + chat_bytes)}


def run(bandwidth: float = 20e6, seconds: float = 5.0,
        whole_size: int = FAST_WHOLE_SIZE) -> dict[str, dict[str, float]]:
    """Both disciplines in both cases; keys ``<discipline>/<case>``.  ``whole_size`` is the
    largest item sent whole (a node's: every item; `FAST_SLICE_SIZE` cuts file data items
    into 64 KiB slices, as a node did before)."""
    sizes = {"slice_size": FAST_SLICE_SIZE, "group_size": FAST_GROUP_SIZE,
             "whole_size": whole_size}
    disciplines = {
        "strict": lambda: Enframer(**sizes),
        "weighted": lambda: WeightedEnframer(**sizes),
    }
    return {f"{name}/{case}": _simulate(make, bandwidth, seconds, flood)
            for name, make in disciplines.items()
            for case, flood in (("transfer+chat", False), ("chatflood+transfer", True))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bandwidth", type=float, default=20e6, help="link bytes/s (20e6)")
    ap.add_argument("--seconds", type=float, default=5.0, help="simulated seconds (5)")
    ap.add_argument("--sliced", action="store_true",
                    help="cut file data into 64 KiB slices (a node's links before whole items)")
    args = ap.parse_args(argv)
    whole = FAST_SLICE_SIZE if args.sliced else FAST_WHOLE_SIZE
    for key, r in run(args.bandwidth, args.seconds, whole).items():
        print(f"{key:30} chat wait p50 {r['chat_p50_ms']:7.2f} ms p99 {r['chat_p99_ms']:7.2f} ms"
              f"  chat {r['chat_per_s']:9.0f}/s  file {r['file_mb_s']:6.2f} MB/s"
              f"  file share of bytes {r['file_share']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
