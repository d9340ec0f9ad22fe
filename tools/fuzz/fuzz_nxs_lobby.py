# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the NXS sync core and the lobby core with a stream of items from one friend.

The input is items back to back (each with its 8-byte header).  Each is decoded; NXS items go
to an identity-service `NxsCore`, chat items to a `LobbyCore` (in a lobby the friend is in),
with the clock moving one second per item and a timer turn every ten.  Nothing but a decode
error may escape, and the cores' bounds must hold.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.items.chat import ChatLobbyFlags
    from pqi.items.nxs import NxsItem
    from pqi.wire.errors import DecodeError
    from pqi.wire.fields import GxsId, SslId
    from pqi.wire.item import UnknownItem
    from services.chat.lobby import MAX_LOBBIES, Lobby, LobbyCore
    from services.gxs.nxs_core import MAX_PENDING_PER_PEER, NxsCore
    from services.gxs.store import GxsStore

__all__ = ["one_input"]

PEER = SslId(b"\x01" * 16)
T0 = 1_796_531_000
#: The captured lobby's id, so captured lobby items reach the lobby core's checks.
LOBBY = 0x919EFBBE4227D70F
#: Most items one input may hold (bounds the work of one run).
MAX_ITEMS = 64


def one_input(data: bytes) -> None:
    nxs = NxsCore(0x0211, GxsStore(None, 0x0211), auto_subscribe=True)
    lobby = LobbyCore(lambda g: None)
    nxs.peer_connected(PEER, T0)
    lobby.peer_connected(PEER, T0)
    lobby.lobbies[LOBBY] = Lobby(LOBBY, "l", "", ChatLobbyFlags.PUBLIC, GxsId(b"\x02" * 16))
    pos, now = 0, float(T0)
    for n in range(MAX_ITEMS):
        if len(data) - pos < 8:
            break
        size = int.from_bytes(data[pos + 4:pos + 8], "big")
        chunk = data[pos:pos + max(size, 8)]
        pos += max(size, 8)
        try:
            item = pqi.decode(chunk)
        except DecodeError:
            continue
        if isinstance(item, UnknownItem):
            continue
        now += 1
        if isinstance(item, NxsItem):
            nxs.item_received(PEER, item, now)
        elif item.SERVICE == 0x0012:
            lobby.item_received(PEER, item, now)
        if n % 10 == 9:
            nxs.handle_timer(now + 3000)
            lobby.handle_timer(now)
        nxs.drain(now)
        lobby.drain(now)
        state = nxs.peers.get(PEER)
        if state is not None and state.open_count() > MAX_PENDING_PER_PEER:
            raise AssertionError("open transactions above MAX_PENDING_PER_PEER")
        if len(lobby.lobbies) > MAX_LOBBIES:
            raise AssertionError("lobbies above MAX_LOBBIES")
    nxs.store.close()


if __name__ == "__main__":
    fuzz(one_input)
