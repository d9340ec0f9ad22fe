"""Identities, reputations and chat lobbies through the JSON API, on two live nodes.

alice makes a profile-signed identity and bob a pseudonymous one through
``/rsIdentity/createIdentity``; once the identity service has synced them, each node describes
both as RetroShare does (flags, PGP link, reputation, summaries).  Then alice opens a lobby
with ``createChatLobby`` inviting bob, bob accepts through ``acceptLobbyInvite``, alice's
``sendChat`` to the lobby reaches bob's event stream and his lobby history, and bob leaves.
Last, alice bans bob's identity with ``setOwnOpinion`` and the reputation calls show it.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from pqi.wire.fields import GxsId
from tests.jsonapi_helpers import start_pair
from tests.service_fakes import on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NULL = "0" * 32


async def _scenario(reactor: Any, tmp_path: Any) -> dict[str, Any]:
    pair = await start_pair(reactor, tmp_path, share=False, gxs_sync_period=1.0)
    alice, bob = pair.alice, pair.bob
    a_api, b_api = pair.client("alice"), pair.client("bob")
    got: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}
    streams = {name: pair.client(name).events(0) for name in got}

    async def pump(name: str) -> None:
        try:
            async for event in streams[name]:
                got[name].append(event)
        except Exception:  # noqa: BLE001 - the stream ends when the nodes stop
            return

    pumps = [defer.ensureDeferred(pump(n)) for n in streams]
    out: dict[str, Any] = {"alice_ssl": alice.ssl_id.to_hex(), "bob_ssl": bob.ssl_id.to_hex(),
                           "alice_pgp": alice.pgp_id.to_hex(), "got": got}
    try:
        for s in streams.values():
            await s.ready
        created_a = await a_api.call("/rsIdentity/createIdentity", {
            "name": "Alice GXS", "pseudonimous": False, "pgpPassword": "unused"})
        created_b = await b_api.call("/rsIdentity/createIdentity", {
            "name": "Bob GXS", "pseudonimous": True})
        out["created"] = (created_a, created_b)
        out["nameless"] = await a_api.call("/rsIdentity/createIdentity", {"name": ""})
        aid, bid = created_a["id"], created_b["id"]
        out["aid"], out["bid"] = aid, bid
        await wait_for(reactor, lambda: all(
            n.identities.info(GxsId.from_hex(g)) is not None for n in (alice, bob)
            for g in (aid, bid)), 60)
        for who, api in (("alice", a_api), ("bob", b_api)):
            out[who] = {
                "signed": await api.call("/rsIdentity/getOwnSignedIds"),
                "pseudo": await api.call("/rsIdentity/getOwnPseudonimousIds"),
                "summaries": await api.call("/rsIdentity/getIdentitiesSummaries"),
                "details_a": await api.call("/rsIdentity/getIdDetails", {"id": aid}),
                "details_b": await api.call("/rsIdentity/getIdDetails", {"id": bid}),
                "unknown": await api.call("/rsIdentity/getIdDetails", {"id": "ab" * 16}),
                "own_a": await api.call("/rsIdentity/isOwnId", {"id": aid}),
                "known_b": await api.call("/rsIdentity/isKnownId", {"id": bid}),
                "contact_a": await api.call("/rsIdentity/isARegularContact", {"id": aid}),
                "contact_b": await api.call("/rsIdentity/isARegularContact", {"id": bid}),
            }
        # --- a lobby: alice creates it inviting bob, bob accepts, alice speaks, bob leaves.
        made = await a_api.call("/rsChats/createChatLobby", {
            "lobby_name": "api-lobby", "lobby_identity": aid, "lobby_topic": "tested",
            "invited_friends": [bob.ssl_id.to_hex()], "lobby_privacy_type": 4})
        lobby = made["retval"]
        out["lobby"] = lobby
        await wait_for(reactor, lambda: lobby["xint64"] in bob.chat.lobby.core.invites, 30)
        out["invites"] = await b_api.call("/rsMsgs/getPendingChatLobbyInvites")
        out["accept"] = await b_api.call("/rsChats/acceptLobbyInvite",
                                         {"id": lobby, "identity": bid})
        await wait_for(reactor, lambda: bob.ssl_id in alice.chat.lobby.core.lobbies[
            lobby["xint64"]].participating, 30)
        out["b_list"] = await b_api.call("/rsMsgs/getChatLobbyList")
        cid = {"broadcast_status_peer_id": NULL, "type": 3, "peer_id": NULL,
               "distant_chat_id": NULL, "lobby_id": {"xstr64": lobby["xstr64"]}}
        out["said"] = await a_api.call("/rsChats/sendChat", {"id": cid, "msg": "hello lobby"})
        out["not_in"] = await b_api.call("/rsChats/sendChat", {
            "id": {**cid, "lobby_id": 12345}, "msg": "nowhere"})
        await wait_for(reactor, lambda: any(
            e.get("mChatMessage", {}).get("msg") == "hello lobby" for e in got["bob"]), 30)
        out["history"] = await b_api.call("/rsChats/getChatLobbyHistory",
                                          {"lobbyId": lobby, "count": 10})
        out["info"] = await a_api.call("/rsChats/getChatLobbyInfo", {"id": lobby})
        out["b_identity"] = await b_api.call("/rsChats/getIdentityForChatLobby",
                                             {"lobby_id": lobby})
        await b_api.call("/rsChats/unsubscribeChatLobby", {"lobby_id": lobby})
        out["b_list_after"] = await b_api.call("/rsChats/getChatLobbyList")
        # --- reputation: alice bans bob's identity.
        out["ban"] = await a_api.call("/rsReputations/setOwnOpinion", {"id": bid, "op": 0})
        out["opinion"] = await a_api.call("/rsReputations/getOwnOpinion", {"id": bid})
        out["rep_b"] = await a_api.call("/rsReputations/getReputationInfo",
                                        {"id": bid, "ownerNode": "0" * 16})
        out["level_b"] = await a_api.call("/rsReputations/overallReputationLevel",
                                          {"id": bid})
        out["bad_op"] = await a_api.call("/rsReputations/setOwnOpinion", {"id": bid, "op": 7})
        out["hidden"] = alice.reputation.hides(GxsId.from_hex(bid))
    finally:
        for s in streams.values():
            s.close()
        await pair.stop()
        await defer.DeferredList(pumps)
    return out


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: Any) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("identity")
    return on_fresh_reactor(lambda reactor: _scenario(reactor, tmp), 280)


def test_created_identities_are_listed_as_signed_or_pseudonymous(scenario) -> None:
    """createIdentity answers the new id; alice's (pseudonimous false) is listed by
    getOwnSignedIds, bob's by getOwnPseudonimousIds; an empty name is refused."""
    created_a, created_b = scenario["created"]
    assert created_a["retval"] is True and created_b["retval"] is True
    aid, bid = scenario["aid"], scenario["bid"]
    assert scenario["alice"]["signed"] == {"ids": [aid], "retval": True}
    assert scenario["alice"]["pseudo"] == {"ids": [], "retval": True}
    assert scenario["bob"]["signed"] == {"ids": [], "retval": True}
    assert scenario["bob"]["pseudo"] == {"ids": [bid], "retval": True}
    assert scenario["nameless"] == {"id": NULL, "retval": False}


def test_id_details_say_own_linked_and_known_as_retroshare_does(scenario) -> None:
    """alice's own signed id has flags 14 (linked, known, own) and her PGP id; bob sees it
    with flags 6, its own opinion positive and LOCALLY_POSITIVE (a friend's identity is a
    contact, and contacts count as positive), as the recorded node answered; bob's
    pseudonymous id has flags 8 on bob and 0 on alice; an unknown id answers false."""
    aid, bid = scenario["aid"], scenario["bid"]
    mine = scenario["alice"]["details_a"]
    assert mine["retval"] is True
    assert (mine["details"]["mId"], mine["details"]["mNickname"], mine["details"]["mFlags"],
            mine["details"]["mPgpId"]) == (aid, "Alice GXS", 14, scenario["alice_pgp"])
    seen = scenario["bob"]["details_a"]["details"]
    assert (seen["mFlags"], seen["mPgpId"]) == (6, scenario["alice_pgp"])
    assert (seen["mReputation"]["mOwnOpinion"],
            seen["mReputation"]["mOverallReputationLevel"]) == (2, 4)
    assert scenario["bob"]["details_b"]["details"]["mFlags"] == 8
    on_alice = scenario["alice"]["details_b"]["details"]
    assert (on_alice["mId"], on_alice["mFlags"], on_alice["mPgpId"]) == (bid, 0, "0" * 16)
    assert on_alice["mReputation"]["mOverallReputationLevel"] == 2
    assert scenario["alice"]["unknown"]["retval"] is False
    assert scenario["alice"]["unknown"]["details"]["mId"] == NULL


def test_summaries_contacts_and_ownership(scenario) -> None:
    """getIdentitiesSummaries lists both identities on both nodes (ours admin+publish+
    subscribed, 7; others subscribed, 4); isOwnId, isKnownId and isARegularContact
    answer per node (a friend's signed identity is a contact, a pseudonymous one is not)."""
    aid, bid = scenario["aid"], scenario["bid"]
    for who, own in (("alice", aid), ("bob", bid)):
        listed = {m["mGroupId"]: m for m in scenario[who]["summaries"]["ids"]}
        assert set(listed) == {aid, bid}
        assert listed[own]["mSubscribeFlags"] == 7
        other = bid if own == aid else aid
        assert listed[other]["mSubscribeFlags"] == 4
        assert listed[aid]["mGroupFlags"] == 0x101 and listed[bid]["mGroupFlags"] == 0x4
        assert listed[aid]["mGroupName"] == "Alice GXS"
    assert scenario["alice"]["own_a"]["retval"] is True
    assert scenario["bob"]["own_a"]["retval"] is False
    assert scenario["alice"]["known_b"]["retval"] is True
    assert scenario["bob"]["contact_a"]["retval"] is True
    assert scenario["alice"]["contact_b"]["retval"] is False


def test_lobby_invite_join_send_history_and_leave(scenario) -> None:
    """bob sees alice's invitation, accepts it with his identity, gets alice's lobby message
    in his event stream (CHAT_SERVICE, lobby ChatId, the signer in lobby_peer_gxs_id) and in
    the lobby history, and leaves; sending to a lobby we are not in answers false."""
    lobby = scenario["lobby"]
    assert lobby["xint64"] > 0 and lobby["xstr64"] == str(lobby["xint64"])
    invite = scenario["invites"]["invites"]
    assert [(i["lobby_id"], i["peer_id"], i["lobby_name"], i["lobby_topic"])
            for i in invite] == [(lobby, scenario["alice_ssl"], "api-lobby", "tested")]
    assert scenario["accept"] == {"retval": True}
    assert scenario["b_list"] == {"cl_list": [lobby]}
    assert scenario["said"] == {"retval": True} and scenario["not_in"] == {"retval": False}
    message = next(e["mChatMessage"] for e in scenario["got"]["bob"]
                   if e.get("mChatMessage", {}).get("msg") == "hello lobby")
    assert message["chat_id"]["type"] == 3 and message["chat_id"]["lobby_id"] == lobby
    assert (message["lobby_peer_gxs_id"], message["peer_alternate_nickname"],
            message["incoming"]) == (scenario["aid"], "Alice GXS", True)
    assert [m["msg"] for m in scenario["history"]["msgs"]] == ["hello lobby"]
    info = scenario["info"]["info"]
    assert scenario["info"]["retval"] is True
    assert (info["lobby_name"], info["gxs_id"], info["participating_friends"]) == (
        "api-lobby", scenario["aid"], [scenario["bob_ssl"]])
    assert scenario["b_identity"] == {"nick": scenario["bid"], "retval": True}
    assert scenario["b_list_after"] == {"cl_list": []}


def test_lobby_and_identity_events_reach_the_streams(scenario) -> None:
    """Streams get RetroShare's records: GXS_IDENTITY (12) for our new identity (code 3, as
    recorded) and a friend's (code 1); CHAT_SERVICE lobby events: the list changed (3),
    the invitation (4) and bob joining (7, seen by alice, with bob's identity)."""
    bob_events, alice_events = scenario["got"]["bob"], scenario["got"]["alice"]
    ids = {(e["mIdentityEventCode"], e["mIdentityId"]) for e in bob_events if e["mType"] == 12}
    assert (3, scenario["bid"]) in ids and (1, scenario["aid"]) in ids
    lobby_codes = {e["mEventCode"] for e in bob_events
                   if e["mType"] == 15 and "mLobbyId" in e}
    assert {3, 4} <= lobby_codes
    joined = [e for e in alice_events if e["mType"] == 15 and e.get("mEventCode") == 7
              and "mLobbyId" in e]
    assert joined and joined[0]["mGxsId"] == scenario["bid"]
    assert joined[0]["mLobbyId"] == scenario["lobby"]


def test_own_opinion_bans_an_identity(scenario) -> None:
    """setOwnOpinion NEGATIVE (0): getOwnOpinion says so, the level is LOCALLY_NEGATIVE (0)
    and the node hides the identity; an opinion out of range is refused."""
    assert scenario["ban"] == {"retval": True}
    assert scenario["opinion"] == {"op": 0, "retval": True}
    assert scenario["rep_b"]["info"]["mOwnOpinion"] == 0
    assert scenario["rep_b"]["info"]["mOverallReputationLevel"] == 0
    assert scenario["level_b"] == {"retval": 0}
    assert scenario["bad_op"] == {"retval": False}
    assert scenario["hidden"] is True
