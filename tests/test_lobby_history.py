"""The lobby history file (``lobbies.sqlite``): a friend's message whose nick and text are not
UTF-8 is stored, listed and kept across a restart, identical; our own such message too."""

from __future__ import annotations

import types

from twisted.internet.testing import MemoryReactorClock

from pqi.items.chat import ChatLobbyMsgItem
from pqi.wire.item import decode, encode
from pqi.wire.tlvvalues import KeySignature
from services.chat.lobby_service import LobbyService
from services.chat.lobby_signing import sign_lobby_item
from tests.gxs_fixtures import key_pairs
from tests.service_fakes import peer

#: What a wire decoder makes of "café" in Latin-1 followed by a stray byte.
JUNK = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
T0 = 1_800_000_000


class _Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[object, object]] = []

    def send(self, ssl_id: object, item: object) -> bool:
        self.sent.append((ssl_id, item))
        return True


def _service(tmp_path, clock: MemoryReactorClock) -> LobbyService:
    """A lobby service with our identity (the first key pair) and the second one known."""
    ours, theirs = key_pairs()[:2]
    keys = {ours.key_id: ours.public, theirs.key_id: theirs.public}
    identities = types.SimpleNamespace(
        own_ids=lambda: [ours.key_id], private_key=lambda g: ours.private,
        info=lambda g: types.SimpleNamespace(name="me"), public_key=keys.get,
        is_pgp_linked=lambda g: False, request=lambda g, p: None)
    return LobbyService(_Sender(), clock, tmp_path, identities,  # type: ignore[arg-type]
                        hides=lambda g: False)


def test_a_message_not_utf8_is_stored_listed_and_kept(tmp_path) -> None:
    """A friend relays a signed lobby message with a nick and text that are not UTF-8: it is
    shown, kept in the history (it used to make the write fail), read back identical after a
    restart, and our own message with such text is kept too."""
    clock = MemoryReactorClock()
    clock.advance(T0)
    ours, theirs = key_pairs()[:2]
    svc = _service(tmp_path, clock)
    lobby = svc.create("lobby", "topic", ours.key_id)
    friend = peer(2)
    svc.peer_connected(friend)
    item = sign_lobby_item(ChatLobbyMsgItem(
        flags=0x201, send_time=T0, message=JUNK, parent_msg_id=0, lobby_id=lobby,
        msg_id=777, nick=JUNK, signature=KeySignature(theirs.key_id, b"")), theirs.private)
    svc.receive(friend, decode(encode(item)))
    svc.say(lobby, "re: " + JUNK)
    assert [(m.nick, m.text) for m in svc.history(lobby)] == [(JUNK, JUNK), ("me", "re: " + JUNK)]
    svc.stop()
    svc.close()
    again = _service(tmp_path, clock)
    kept = again.history(lobby)
    assert [(m.msg_id, m.nick, m.text) for m in kept][0] == (777, JUNK, JUNK)
    assert kept[1].text.encode("utf-8", "surrogateescape") == b"re: caf\xe9 \xff"
    again.stop()
    again.close()


def test_json_api_shows_lobby_history_not_utf8_as_valid_utf8(tmp_path) -> None:
    """``getChatLobbyHistory`` answers valid UTF-8 JSON for a stored message that is not
    UTF-8, each bad byte a U+FFFD (RetroShare would copy the raw bytes)."""
    import json

    from services.jsonapi import rs_chats
    from services.jsonapi.api import ApiContext
    from services.jsonapi.encoding import Params, pretty
    clock = MemoryReactorClock()
    clock.advance(T0)
    ours = key_pairs()[0]
    svc = _service(tmp_path, clock)
    lobby = svc.create("lobby", "topic", ours.key_id)
    svc.say(lobby, JUNK)
    ctx = ApiContext(types.SimpleNamespace(chat=types.SimpleNamespace(lobby=svc)), clock)
    body = pretty(rs_chats.get_chat_lobby_history(ctx, Params({"lobbyId": lobby})))
    (shown,) = json.loads(body.decode("utf-8"))["msgs"]
    assert shown["msg"] == "caf\ufffd \ufffd"
    svc.stop()
    svc.close()
