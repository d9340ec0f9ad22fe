"""Bounds of the identity and lobby endpoints: one ``getIdentitiesSummaries`` lists at most
`MAX_LISTED_IDENTITIES`, one ``createChatLobby`` invites at most `MAX_INVITED` friends, and
lobby ids given as bare JSON numbers beyond 2**63 (what RetroShare's web interface sends)
are read exactly."""

from __future__ import annotations

import types
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from pqi.items.gxs import GrpMeta
from pqi.wire.fields import GxsId
from services.jsonapi import rs_chats, rs_identity
from services.jsonapi.api import ApiContext
from services.jsonapi.encoding import Params


class _Lobbies:
    """The lobby service as the endpoints use it: records what they ask."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str, GxsId, bool]] = []
        self.invited: list[Any] = []
        self.core = types.SimpleNamespace(lobbies={}, invites={}, visible={})

    def create(self, name: str, topic: str, gxs_id: GxsId, public: bool) -> int:
        self.created.append((name, topic, gxs_id, public))
        return (1 << 64) - 5

    def invite(self, lobby_id: int, peer: Any) -> None:
        self.invited.append((lobby_id, peer))


def _ctx(own: list[GxsId], lobbies: Any = None, groups: list[GxsId] = ()) -> ApiContext:
    store = types.SimpleNamespace(
        groups=lambda: iter([(g, 0, GxsId.null()) for g in groups]),
        group_meta=lambda g: GrpMeta(group_id=g, name=f"id-{g.to_hex()[:4]}"))
    node = types.SimpleNamespace(
        identities=types.SimpleNamespace(own_ids=lambda: list(own), store=store),
        chat=types.SimpleNamespace(lobby=lobbies),
        friends_list=types.SimpleNamespace(location=lambda ssl: ssl))
    return ApiContext(node, MemoryReactorClock())


def test_identity_summaries_are_bounded(monkeypatch) -> None:
    """A store holding more identities than MAX_LISTED_IDENTITIES lists only that many."""
    monkeypatch.setattr(rs_identity, "MAX_LISTED_IDENTITIES", 5)
    groups = [GxsId(bytes([i]) * 16) for i in range(1, 9)]
    answer = rs_identity.get_identities_summaries(_ctx([groups[0]], groups=groups), Params({}))
    assert [m["mGroupId"] for m in answer["ids"]] == [g.to_hex() for g in groups[:5]]
    assert answer["ids"][0]["mSubscribeFlags"] == 7 and answer["ids"][1]["mSubscribeFlags"] == 4


def test_create_chat_lobby_invites_at_most_max_invited_friends() -> None:
    """createChatLobby with more friends than MAX_INVITED invites the first MAX_INVITED; the
    new lobby's id comes back as a 64-bit value (both forms)."""
    own = GxsId(b"\x07" * 16)
    lobbies = _Lobbies()
    friends = [f"{i + 1:032x}" for i in range(rs_chats.MAX_INVITED + 40)]
    answer = rs_chats.create_chat_lobby(_ctx([own], lobbies), Params({
        "lobby_name": "big", "lobby_identity": own.to_hex(), "lobby_topic": "t",
        "invited_friends": friends, "lobby_privacy_type": 4}))
    lobby_id = (1 << 64) - 5
    assert answer == {"retval": {"xint64": lobby_id, "xstr64": str(lobby_id)}}
    assert lobbies.created == [("big", "t", own, True)]
    assert len(lobbies.invited) == rs_chats.MAX_INVITED
    assert {lid for lid, _ in lobbies.invited} == {lobby_id}


def test_lobby_ids_beyond_two_to_the_63_are_read_exactly() -> None:
    """The web interface writes lobby ids as bare JSON numbers (up to 2**64-1): a lobby with
    such an id is found, and the null identity means our default (first) identity."""
    own = GxsId(b"\x07" * 16)
    lobbies = _Lobbies()
    lobby_id = (1 << 64) - 5
    lobbies.core.lobbies[lobby_id] = types.SimpleNamespace(gxs_id=own)
    ctx = _ctx([own], lobbies)
    assert rs_chats.get_identity_for_chat_lobby(ctx, Params({"lobby_id": lobby_id})) == {
        "nick": own.to_hex(), "retval": True}
    assert rs_chats.get_default_identity_for_chat_lobby(ctx, Params({})) == {
        "id": own.to_hex()}
    assert rs_chats.get_lobby_auto_subscribe(ctx, Params({"lobby_id": lobby_id})) == {
        "retval": True}
