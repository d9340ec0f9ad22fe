# -*- test-case-name: tests.test_tou_stream -*-
"""The receive side of a TOU stream: reassembly, in-order delivery, the reader's flow
window and where the peer's FIN falls.

RetroShare's receiver only takes the segment that starts at its next expected number, so
its peers never re-segment; we accept overlaps anyway (a trimmed retransmission from
another implementation) and keep out-of-order segments by their start.  Everything held
(out-of-order bytes plus bytes the paused reader has not taken) counts against
``receive_buffer``: the advertised window is the buffer less what the reader has not taken (the
out-of-order bytes lie inside it), at most `MAX_WINDOW`, or more where the peer agreed to scale
windows; nothing beyond its right edge is kept.  Where both ends agreed the wider scale, the
window also grows by the bytes held beyond a hole, up to ``allowance`` (see `ReceiveBuffer.window`).
"""

from __future__ import annotations

import enum

from .config import MAX_WINDOW
from .sequence import SEQ_MOD, seq_diff

__all__ = ["Arrival", "ReceiveBuffer"]


class Arrival(enum.Enum):
    """What became of an arriving segment's payload."""

    #: Everything in it was already received (a retransmission or a duplicate).
    DUPLICATE = "duplicate"
    #: No payload (a bare FIN).
    EMPTY = "empty"
    #: It does not fit in what we can hold: dropped, our ACK shows the window.
    BEYOND_WINDOW = "beyond window"
    #: It starts after a hole: kept for later.
    OUT_OF_ORDER = "out of order"
    #: It filled the next bytes (and maybe joined kept segments).
    IN_ORDER = "in order"


class ReceiveBuffer:
    """Reassembles the peer's bytes from ``rcv_nxt`` on; bounded by ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        #: Bytes held at most (out-of-order plus unread): the bound on this buffer.
        self.capacity = capacity
        #: The largest window we may advertise: `MAX_WINDOW`, or more where the peer agreed
        #: to scale windows.
        self.max_window = MAX_WINDOW
        #: Out-of-order bytes held on top of ``capacity``, and added to the window (0: none;
        #: `tcponudp.config.OUT_OF_ORDER_ALLOWANCE` where the peer agreed the wider scale).
        #: Everything held stays within ``capacity + allowance``.
        self.allowance = 0
        self.rcv_nxt = 0
        self._ooo: dict[int, bytes] = {}
        self._ooo_bytes = 0
        self._held = bytearray()
        self.reading_paused = False
        self._peer_fin_at: int | None = None
        #: The peer's FIN was reached in order: it sends no more.
        self.peer_finished = False
        #: The most out-of-order bytes held at once, and the segments refused as beyond the
        #: window (for benches: whether the buffer is what holds a lossy transfer back).
        self.peak_out_of_order = 0
        self.refused = 0

    # -- flow window -------------------------------------------------------------------------

    def window(self) -> int:
        """The window to advertise, in bytes (at most `max_window`): what fits after
        ``rcv_nxt`` less what the reader has not taken.  Out-of-order bytes lie inside it,
        so they do not shrink it: a window that shrank as they arrived would refuse the
        segments the sender sent into the edge advertised before.

        With an ``allowance`` the window also grows by the bytes held beyond a hole (up to the
        allowance): the sender may then have as many bytes not yet received outstanding as
        with no hole, instead of stopping a buffer's length past the hole while it is
        repaired.  The right edge still never moves left: a filled hole moves ``rcv_nxt`` on
        by more than the held bytes it takes out of the growth."""
        room = self.capacity - len(self._held)
        if self.allowance:
            room += min(self._ooo_bytes, self.allowance)
        return max(0, min(self.max_window, room))

    @property
    def has_hole(self) -> bool:
        """Out-of-order data is waiting for a missing segment."""
        return bool(self._ooo)

    @property
    def held(self) -> int:
        """Bytes received in order that the paused reader has not taken."""
        return len(self._held)

    def sack_blocks(self, limit: int) -> list[tuple[int, int]]:
        """The out-of-order ranges held (start, end), nearest ``rcv_nxt`` first, at most
        ``limit``: what a SACK reports (the nearest holes are the ones to repair first)."""
        blocks: list[tuple[int, int]] = []
        nxt = self.rcv_nxt
        for seq in sorted(self._ooo, key=lambda s: seq_diff(s, nxt)):
            end = (seq + len(self._ooo[seq])) % SEQ_MOD
            if blocks and seq_diff(seq, blocks[-1][1]) <= 0:
                if seq_diff(end, blocks[-1][1]) > 0:
                    blocks[-1] = (blocks[-1][0], end)
                continue
            if len(blocks) == limit:
                break
            blocks.append((seq, end))
        return blocks

    # -- arrivals ----------------------------------------------------------------------------

    def note_fin(self, seq: int, length: int) -> None:
        """A segment of ``length`` payload bytes at ``seq`` carries FIN: the peer's stream ends
        where it ends (a FIN consumes no sequence number)."""
        if self.peer_finished:
            return
        fin_at = (seq + length) % SEQ_MOD
        if self._peer_fin_at is None and seq_diff(fin_at, self.rcv_nxt) >= 0:
            self._peer_fin_at = fin_at

    def receive(self, seq: int, data: bytes) -> tuple[Arrival, bytes]:
        """Take a segment's payload; returns what became of it and, when it arrived in order,
        the bytes now in order (with any kept segments it joined)."""
        offset = seq_diff(seq, self.rcv_nxt)
        if offset < 0:
            if -offset >= len(data):
                return Arrival.DUPLICATE, b""
            data = data[-offset:]
            offset = 0
        if not data:
            return Arrival.EMPTY, b""
        room = self.capacity - len(self._held) + self.allowance
        if offset + len(data) > room or self._ooo_bytes + len(data) > room:
            # Beyond the window's right edge; or, from a peer that sends overlapping
            # segments at many offsets, more than the buffer holds in all.
            self.refused += 1
            return Arrival.BEYOND_WINDOW, b""
        if offset > 0:
            if seq not in self._ooo:
                self._ooo[seq] = data
                self._ooo_bytes += len(data)
                self.peak_out_of_order = max(self.peak_out_of_order, self._ooo_bytes)
            return Arrival.OUT_OF_ORDER, b""
        return Arrival.IN_ORDER, self._advance(data)

    def _advance(self, data: bytes) -> bytes:
        delivered = bytearray(data)
        self.rcv_nxt = (self.rcv_nxt + len(data)) % SEQ_MOD
        while self._ooo:
            nxt = self._ooo.pop(self.rcv_nxt, None)
            if nxt is None:
                self._drop_stale()
                if self.rcv_nxt not in self._ooo:
                    break
                continue
            self._ooo_bytes -= len(nxt)
            delivered += nxt
            self.rcv_nxt = (self.rcv_nxt + len(nxt)) % SEQ_MOD
        return bytes(delivered)

    def _drop_stale(self) -> None:
        """Forget out-of-order segments that now start before ``rcv_nxt``, keeping any tail."""
        for seq in [s for s in self._ooo if seq_diff(s, self.rcv_nxt) < 0]:
            data = self._ooo.pop(seq)
            self._ooo_bytes -= len(data)
            cut = -seq_diff(seq, self.rcv_nxt)
            if cut < len(data) and self.rcv_nxt not in self._ooo:
                self._ooo[self.rcv_nxt] = data[cut:]
                self._ooo_bytes += len(data) - cut

    def fin_reached(self) -> bool:
        """True once, when everything up to the peer's FIN has arrived."""
        if self.peer_finished or self._peer_fin_at != self.rcv_nxt:
            return False
        self.peer_finished = True
        return True

    # -- the reader --------------------------------------------------------------------------

    def deliverable(self, data: bytes) -> bytes | None:
        """In-order ``data`` for the reader: returned when it reads now, held (None) while it
        is paused or earlier bytes are still held."""
        if self.reading_paused or self._held:
            self._held += data
            return None
        return data

    def resume(self) -> bytes:
        """The reader reads again: everything held, at once."""
        self.reading_paused = False
        data = bytes(self._held)
        self._held.clear()
        return data

    def clear(self) -> bytes:
        """The stream ended: drop what is kept, return what the reader never took."""
        self._ooo.clear()
        self._ooo_bytes = 0
        data = bytes(self._held)
        self._held.clear()
        return data
